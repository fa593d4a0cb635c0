"""MedMNIST v2 classification tasks, read from the official npz files (one generic class, one subclass per flag).

Files: ``{flag}.npz`` (28 px) or ``{flag}_{size}.npz`` (64, 128, 224 px) under ``--data-root`` (default
``~/.medmnist``, the medmnist package's root), with keys ``{split}_images`` (uint8, (N, H, W) grey or
(N, H, W, 3) RGB) and ``{split}_labels`` ((N, 1) class ids or (N, K) multi-label 0/1). The official
train/val/test splits are used as they are. Kind, channels and classes come from ``medmnist.INFO``;
RetinaMNIST's ordinal grading is scored as multi-class AUC, as MedMNIST's own evaluator does.

An ``image_size`` with no official file (e.g. 32) reads the smallest official size at least as large
(else 224) and resizes bilinearly. ``download=True`` fetches the file through the medmnist package;
offline that fails with a DataError naming the file and URL, never silently.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from medmnist.info import INFO

from .base import DataError, Split, Task
from .common import layout_error, resize_images, to_nchw

SIZES = (28, 64, 128, 224)
KINDS = {"multi-class": "multiclass", "binary-class": "binary", "multi-label, binary-class": "multilabel",
         "ordinal-regression": "multiclass"}
MODALITIES = {"retinamnist": "fundus", "pathmnist": "pathology", "dermamnist": "dermatoscopy",
              "breastmnist": "ultrasound", "organamnist": "ct"}


def default_root() -> Path:
    return Path.home() / ".medmnist"


class MedMNISTTask(Task):
    """One MedMNIST flag; subclasses are made by ``_make`` below from the package's INFO."""

    flag: str
    metric = "auc"
    image_size = 28
    source = "https://zenodo.org/records/10519652 (or medmnist's download=True / --download)"

    def __init__(self, data_root=None, image_size=None, seed=0, download: bool = False):
        super().__init__(data_root if data_root is not None else default_root(), image_size, seed)
        self.download = download

    @property
    def file_size(self) -> int:
        return next((s for s in SIZES if s >= self.image_size), SIZES[-1])

    @property
    def path(self) -> Path:
        size = self.file_size
        return self.data_root / (f"{self.flag}.npz" if size == 28 else f"{self.flag}_{size}.npz")

    def _fetch(self) -> None:
        """Download through the medmnist package (it checks the MD5); turn any failure into a DataError."""
        import medmnist

        self.data_root.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, INFO[self.flag]["python_class"])
        try:
            cls(split="train", download=True, root=str(self.data_root), size=self.file_size)
        except Exception as err:  # network, MD5, disk: all mean "no file"
            self.path.unlink(missing_ok=True)
            raise DataError(f"{self.name}: download of {self.path.name} into {self.data_root} failed "
                            f"({' '.join(str(err).split())[:300]})\nexpected file: {self.path}\n"
                            f"get it from {self._url()}") from None

    def _url(self) -> str:
        size = self.file_size
        return INFO[self.flag]["url" if size == 28 else f"url_{size}"]

    def _load(self, split: str) -> Split:
        path = self.path
        if not path.is_file():
            if self.download:
                self._fetch()
            else:
                raise DataError(f"{self.name}: {path}: file not found\nexpected layout under --data-root:\n"
                                f"{self.layout_for(path)}\nget it from {self._url()} or pass --download")
        keys = (f"{split}_images", f"{split}_labels")
        try:
            with np.load(path, allow_pickle=False) as npz:
                if not set(keys) <= set(npz.files):
                    raise layout_error(path, f"npz has keys {sorted(npz.files)}, expected {list(keys)} "
                                             "(and the same for the other splits)", self)
                images, labels = npz[keys[0]], npz[keys[1]]
        except DataError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
            raise layout_error(path, f"unreadable or truncated npz ({err})", self) from None
        return self._to_split(path, split, images, labels)

    def _to_split(self, path: Path, split: str, images: np.ndarray, labels: np.ndarray) -> Split:
        if len(images) == 0:
            raise layout_error(path, f"{split}_images is empty (shape {images.shape}); expected at least one "
                                     "sample in each split", self)
        want_3d = self.in_chans == 1
        if images.dtype != np.uint8 or images.ndim != (3 if want_3d else 4) or (not want_3d and images.shape[-1] != 3):
            shape = "(N, H, W)" if want_3d else "(N, H, W, 3)"
            raise layout_error(path, f"{split}_images is {images.dtype} {images.shape}, expected uint8 {shape}", self)
        if len(labels) != len(images) or labels.ndim != 2:
            raise layout_error(path, f"{split}_labels has shape {labels.shape}, expected ({len(images)}, 1 or K)", self)
        if not np.issubdtype(labels.dtype, np.integer):
            raise layout_error(path, f"{split}_labels is {labels.dtype}, expected integer class ids", self)
        if self.kind == "multilabel":
            if labels.shape[1] != self.num_classes:
                raise layout_error(path, f"{split}_labels has {labels.shape[1]} columns, expected {self.num_classes}", self)
            targets = torch.from_numpy(labels.astype(np.float32))
        else:
            if labels.shape[1] != 1 or labels.min() < 0 or labels.max() >= self.num_classes:
                raise layout_error(path, f"{split}_labels must be (N, 1) ids in [0, {self.num_classes}), got "
                                         f"shape {labels.shape} range [{labels.min()}, {labels.max()}]", self)
            targets = torch.from_numpy(labels[:, 0].astype(np.int64))
        x = resize_images(to_nchw(images), self.image_size)
        return Split(x, targets, ids=[f"{self.flag}/{split}/{i}" for i in range(len(x))])

    def layout_for(self, path: Path) -> str:
        return f"  {path.name}  (keys train_images, train_labels, val_images, val_labels, test_images, test_labels)"


def _make(flag: str) -> type[MedMNISTTask]:
    info = INFO[flag]
    counts = info["n_samples"]
    attrs = dict(
        flag=flag,
        name=flag,
        kind=KINDS[info["task"]],
        modality=MODALITIES.get(flag, "other"),
        in_chans=info["n_channels"],
        num_classes=len(info["label"]),
        description=f"MedMNIST {info['python_class']}: {info['task']}, {len(info['label'])} classes "
                    f"({counts['train']}/{counts['val']}/{counts['test']}), AUC",
        layout=(f"  {flag}.npz or {flag}_{{64,128,224}}.npz  (keys train_images, train_labels, val_images, "
                "val_labels, test_images, test_labels; images uint8 (N,H,W) grey or (N,H,W,3) RGB, labels (N,1))"),
        __doc__=f"MedMNIST {info['python_class']} ({info['description'][:120]}...)",
    )
    return type(info["python_class"], (MedMNISTTask,), attrs)


RetinaMNIST = _make("retinamnist")
PathMNIST = _make("pathmnist")
DermaMNIST = _make("dermamnist")
BreastMNIST = _make("breastmnist")
OrganAMNIST = _make("organamnist")
