"""What a downstream task is: a data source, a kind of label, a modality and a metric.

Every task yields ``Split``s of uint8 tensors; models take float images in [0, 1]. Pretraining
sees only ``Task.pretrain_images()`` — the training split — never validation or test images.
Task modules import torch (and pandas) inside the functions that use it: ``tower-bench tasks`` lists
the class attributes without them (tests/benchmark/test_startup.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import torch

from benchmark.errors import UserError

Kind = Literal["segmentation", "binary", "multiclass", "multilabel"]
SPLITS = ("train", "val", "test")


class DataError(UserError):
    """Missing or malformed data; the message names the path and the expected layout."""


class EmptySplitError(DataError):
    """A split with no samples; ``Task.load`` names the task, the split and the data folder."""


@dataclass
class Split:
    """One split held in memory.

    images:  (N, C, H, W) uint8.
    targets: segmentation (N, H, W) uint8 class ids; binary / multiclass (N,) int64;
             multilabel (N, K) float32 in {0, 1}.
    valid:   segmentation only, (N, H, W) bool: pixels that count in the metric (DRIVE's FOV).
    ids:     one name per sample (file name, index), for error messages and leak checks.
    """

    images: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor | None = None
    ids: list[str] | None = None

    def __post_init__(self) -> None:
        import torch

        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"Split images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.targets) != len(self.images):
            raise DataError(f"Split has {len(self.images)} images but {len(self.targets)} targets")
        if len(self.images) == 0:
            raise EmptySplitError("Split is empty")
        if self.ids is None:
            self.ids = [str(i) for i in range(len(self.images))]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sources(self) -> list[str]:
        """The image each sample comes from: itself, or for a patch (id ``<image id>@<y>,<x>``) its image."""
        return [i.split("@", 1)[0] for i in self.ids]

    def subset(self, index: torch.Tensor) -> "Split":
        idx = index.tolist()
        return Split(self.images[index], self.targets[index],
                     None if self.valid is None else self.valid[index], [self.ids[i] for i in idx])


class Task:
    """Subclass per data source; set the class attributes and implement ``_load``."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    modality: ClassVar[str]  # fundus | xray | ct | ultrasound | pathology | dermatoscopy
    metric: ClassVar[str]  # "dice" or "auc"
    in_chans: ClassVar[int]
    num_classes: ClassVar[int]  # segmentation: classes incl. background; multilabel: labels
    image_size: ClassVar[int]  # default side length fed to the model
    description: ClassVar[str]
    source: ClassVar[str]  # where a user gets the data
    layout: ClassVar[str]  # the expected files under data_root, quoted in errors
    min_size: ClassVar[int] = 0  # the smallest side at which the targets survive (0: any size the model takes)
    supports_patches: ClassVar[bool] = False  # below min_size: native-resolution patches (``patches=True``)

    def __init__(self, data_root: str | Path | None = None, image_size: int | None = None, seed: int = 0):
        self.data_root = Path(data_root) if data_root is not None else None
        self.image_size = image_size or type(self).image_size
        self.seed = seed
        self._cache: dict[str, Split] = {}

    @classmethod
    def miniature(cls, root: Path) -> dict[str, Any]:
        """Write a tiny copy of the data under ``root``, in the source's exact layout; return the task's kwargs.

        The task contract (tests/contract) loads and fine-tunes every registered task on its miniature,
        so a new task is tested as soon as it is registered and offers one.
        """
        raise NotImplementedError(f"task {cls.name!r} offers no miniature data set: define the classmethod "
                                  f"{cls.__name__}.miniature(root) that writes one under root and returns the task's kwargs")

    def load(self, split: str) -> Split:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split not in self._cache:
            try:
                self._cache[split] = self._load(split)
            except EmptySplitError:
                raise DataError(f"{self.name}: the {split} split of {self.data_root} is empty; expected at least "
                                f"one sample in each of the {', '.join(SPLITS)} splits") from None
        return self._cache[split]

    def _load(self, split: str) -> Split:
        raise NotImplementedError

    @property
    def input_note(self) -> str:
        """How images reach the model, for records and stamps."""
        return f"full images at {self.image_size} px"

    def pretrain_images(self) -> torch.Tensor:
        """Unlabelled images for pretraining: the training split only."""
        return self.load("train").images

    def supervised_split(self) -> Split:
        """The labelled images the ``supervised`` positive control trains on: the whole training split (a task
        with an unlabelled pool whose labels come free overrides it); never validation or test images."""
        return self.load("train")

    @property
    def supervised_note(self) -> str:
        """Which labelled images ``supervised`` trained on, for its export and the board's stamp."""
        return f"the whole training split ({len(set(self.supervised_split().sources))} images)"

    def require_root(self) -> Path:
        if self.data_root is None or not self.data_root.exists():
            raise DataError(
                f"{self.name}: data folder {self.data_root} not found; pass --data-root pointing at:\n"
                f"{self.layout}\nGet the data from {self.source}"
            )
        return self.data_root
