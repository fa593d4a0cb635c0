"""MedMNIST v2 classification tasks, read from the official npz files (one generic class, one subclass per flag).

Files: ``{flag}.npz`` (28 px) or ``{flag}_{size}.npz`` (64, 128, 224 px) under ``--data-root`` (default
``~/.medmnist``, the medmnist package's root), with keys ``{split}_images`` (uint8, (N, H, W) grey or
(N, H, W, 3) RGB) and ``{split}_labels`` ((N, 1) class ids or (N, K) multi-label 0/1). The official
train/val/test splits are used as they are. Every 2D flag of ``medmnist.INFO`` is a task (the list is
``FLAGS`` below, which the registry reads); kind, channels and classes come from INFO; RetinaMNIST's ordinal grading is
scored as multi-class AUC, as MedMNIST's own evaluator does.

Any ``image_size`` works from whichever official file is there: the smallest present size at least as
large, else the largest present (the 28-px file serves a 64-px budget), resized bilinearly with
antialiasing; ``input_note`` says which file and which resize. ``download=True`` fetches the smallest
official size at least as large (else 224) through the medmnist package; offline that fails with a
one-line DataError naming the file and URL, never silently.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from benchmark.tasks.base import DataError, Split, Task
from benchmark.tasks.common import layout_error, resize_images, to_nchw

SIZES = (28, 64, 128, 224)
KINDS = {"multi-class": "multiclass", "binary-class": "binary", "multi-label, binary-class": "multilabel",
         "ordinal-regression": "multiclass"}
# Flag -> modality, which picks TOWER's mask (tower/proxy.py MODALITY_MASKS). Fundus photographs: rays
# from the optic disc; chest X-rays: stripes (rib and bone texture); CT and ultrasound: blocks (organ
# layout), as the paper. Pathology, dermatoscopy, blood smears and OCT have no directional structure
# that rays or stripes would imitate (cells, lesions, horizontal retinal layers at 28 px), so blocks.
MODALITIES = {
    "pathmnist": "pathology", "chestmnist": "xray", "dermamnist": "dermatoscopy", "octmnist": "oct",
    "pneumoniamnist": "xray", "retinamnist": "fundus", "breastmnist": "ultrasound", "bloodmnist": "blood",
    "tissuemnist": "pathology", "organamnist": "ct", "organcmnist": "ct", "organsmnist": "ct",
}
URL = "https://zenodo.org/records/10519652/files/{name}?download=1"
# The INFO fields used here, vendored: listing tasks and reading files need no medmnist package (importing
# even its medmnist.info imports torch, pandas and scipy); downloading does. A test checks it against medmnist.INFO.
_VENDORED = (  # flag, INFO's class name, task, channels, classes, (train, val, test)
    ("pathmnist", "PathMNIST", "multi-class", 3, 9, (89996, 10004, 7180)),
    ("chestmnist", "ChestMNIST", "multi-label, binary-class", 1, 14, (78468, 11219, 22433)),
    ("dermamnist", "DermaMNIST", "multi-class", 3, 7, (7007, 1003, 2005)),
    ("octmnist", "OCTMNIST", "multi-class", 1, 4, (97477, 10832, 1000)),
    ("pneumoniamnist", "PneumoniaMNIST", "binary-class", 1, 2, (4708, 524, 624)),
    ("retinamnist", "RetinaMNIST", "ordinal-regression", 3, 5, (1080, 120, 400)),
    ("breastmnist", "BreastMNIST", "binary-class", 1, 2, (546, 78, 156)),
    ("bloodmnist", "BloodMNIST", "multi-class", 3, 8, (11959, 1712, 3421)),
    ("tissuemnist", "TissueMNIST", "multi-class", 1, 8, (165466, 23640, 47280)),
    ("organamnist", "OrganAMNIST", "multi-class", 1, 11, (34561, 6491, 17778)),
    ("organcmnist", "OrganCMNIST", "multi-class", 1, 11, (12975, 2392, 8216)),
    ("organsmnist", "OrganSMNIST", "multi-class", 1, 11, (13932, 2452, 8827)),
)


def file_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def vendored_info() -> dict[str, dict]:
    """``_VENDORED`` in medmnist.INFO's shape (only the fields this module reads)."""
    return {flag: {"python_class": name, "task": task, "n_channels": c,
                   "label": {str(i): str(i) for i in range(k)}, "n_samples": dict(zip(("train", "val", "test"), n)),
                   **{"url" if s == 28 else f"url_{s}": URL.format(name=file_name(flag, s)) for s in SIZES}}
            for flag, name, task, c, k, n in _VENDORED}


INFO = vendored_info()
FLAGS: dict[str, str] = {flag: info["python_class"] for flag, info in INFO.items()}  # flag -> class name


def default_root() -> Path:
    return Path.home() / ".medmnist"


class MedMNISTTask(Task):
    """One MedMNIST flag; subclasses are made by ``_make`` below from INFO."""

    flag: str
    metric = "auc"
    image_size = 28
    source = "https://zenodo.org/records/10519652 (or medmnist's download=True / --download)"
    downloadable = True  # ``--download`` fetches the file (benchmark.sweep.run.make_task)

    @classmethod
    def miniature(cls, root: Path) -> dict:
        write_miniature(root / "medmnist", cls.flag, counts=None)
        return {"data_root": root / "medmnist"}

    def __init__(self, data_root=None, image_size=None, seed=0, download: bool = False):
        super().__init__(data_root if data_root is not None else default_root(), image_size, seed)
        self.download = download
        self._read: tuple[str, int] | None = None  # (file name, side in px) of the file loaded

    @property
    def file_size(self) -> int:
        """The official size to download: the smallest at least ``image_size``, else the largest."""
        return next((s for s in SIZES if s >= self.image_size), SIZES[-1])

    def _pick(self) -> int:
        """The official size to read: the smallest present >= ``image_size``, else the largest present;
        with none present, the one to download (``file_size``)."""
        present = [s for s in SIZES if (self.data_root / file_name(self.flag, s)).is_file()]
        above = [s for s in present if s >= self.image_size]
        return above[0] if above else present[-1] if present else self.file_size

    @property
    def path(self) -> Path:
        return self.data_root / file_name(self.flag, self._pick())

    @property
    def input_note(self) -> str:
        """Which file fed the task and how it was resized, e.g. "retinamnist.npz (28 px) resized to 64 px"."""
        name, side = self._read or (self.path.name, self._pick())
        resize = "" if side == self.image_size else f" resized to {self.image_size} px (bilinear, antialiased)"
        return f"{name} ({side} px){resize}"

    def _fetch(self) -> None:
        """Download through the medmnist package (it checks the MD5); turn any failure into a DataError."""
        target = self.data_root / file_name(self.flag, self.file_size)
        try:
            import medmnist
        except ImportError:
            raise DataError(f"{self.name}: --download needs the medmnist package (pip install medmnist); "
                            f"or get {target} from {self._url()}") from None
        self.data_root.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, INFO[self.flag]["python_class"])
        try:
            cls(split="train", download=True, root=str(self.data_root), size=self.file_size)
        except Exception as err:  # network, MD5, disk: all mean "no file"
            target.unlink(missing_ok=True)
            raise DataError(f"{self.name}: download of {target.name} from {self._url()} failed "
                            f"({' '.join(str(err).split())[:300]}); put the file at {target}") from None

    def _url(self) -> str:
        size = self.file_size
        return INFO[self.flag]["url" if size == 28 else f"url_{size}"]

    def _load(self, split: str) -> Split:
        path = self.path
        if not path.is_file():
            if self.download:
                self._fetch()
                path = self.path
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
        import torch

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
                raise layout_error(path, f"{split}_labels has {labels.shape[1]} columns, expected {self.num_classes}",
                                   self)
            targets = torch.from_numpy(labels.astype(np.float32))
        else:
            if labels.shape[1] != 1 or labels.min() < 0 or labels.max() >= self.num_classes:
                raise layout_error(path, f"{split}_labels must be (N, 1) ids in [0, {self.num_classes}), got "
                                         f"shape {labels.shape} range [{labels.min()}, {labels.max()}]", self)
            targets = torch.from_numpy(labels[:, 0].astype(np.int64))
        self._read = (path.name, images.shape[1])
        x = resize_images(to_nchw(images), self.image_size)
        return Split(x, targets, ids=[f"{self.flag}/{split}/{i}" for i in range(len(x))])

    def layout_for(self, path: Path) -> str:
        return f"  {path.name}  (keys train_images, train_labels, val_images, val_labels, test_images, test_labels)"


def _make(flag: str, class_name: str) -> type[MedMNISTTask]:
    info = INFO[flag]
    counts = info["n_samples"]
    attrs = dict(
        flag=flag,
        name=flag,
        kind=KINDS[info["task"]],
        modality=MODALITIES[flag],
        in_chans=info["n_channels"],
        num_classes=len(info["label"]),
        description=f"MedMNIST {class_name}: {info['task']}, {len(info['label'])} classes "
                    f"({counts['train']}/{counts['val']}/{counts['test']}), AUC",
        layout=(f"  {flag}.npz or {flag}_{{64,128,224}}.npz  (keys train_images, train_labels, val_images, "
                "val_labels, test_images, test_labels; images uint8 (N,H,W) grey or (N,H,W,3) RGB, labels (N,1))"),
        __doc__=f"MedMNIST {class_name} ({info['task']}, {MODALITIES[flag]}), made from INFO.",
        __module__=__name__,
    )
    return type(class_name, (MedMNISTTask,), attrs)


# One class per flag, under INFO's class name (``benchmark.tasks.medmnist.RetinaMNIST``...).
globals().update({name: _make(flag, name) for flag, name in FLAGS.items()})


# ----------------------------------------------------------------------------- miniature data (contract tests)

def write_miniature(root: Path, flag: str, counts=(12, 4, 6), size: int = 28, n_classes: int | None = None,
                    channels: int | None = None) -> Path:
    """MedMNIST npz: {split}_images uint8 (N,H,W) or (N,H,W,3), {split}_labels (N,1) ids or (N,K) 0/1 (multi-label).

    ``counts=None``: every class in every split, as the real sets have (AUC needs them all).
    """
    info = INFO[flag]
    k = n_classes or len(info["label"])
    counts = counts or (2 * k + 2, k, k + 1)
    c = channels or info["n_channels"]
    rng = np.random.default_rng(2)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, size, size) if c == 1 else (n, size, size, 3)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        if KINDS[info["task"]] == "multilabel":  # each label both present and absent in every split
            arrays[f"{split}_labels"] = ((np.arange(n)[:, None] + np.arange(k)) % 2).astype(np.uint8)
        else:
            arrays[f"{split}_labels"] = (np.arange(n) % k).astype(np.uint8)[:, None]
    root.mkdir(parents=True, exist_ok=True)
    path = root / file_name(flag, size)
    np.savez_compressed(path, **arrays)
    return path
