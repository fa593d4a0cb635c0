"""Native-resolution patches for segmentation tasks whose targets vanish when the whole image is shrunk.

A budget's small input (64 px) would erase 1-2 px structures such as retinal vessels if the full image were
resized to it. Below a task's ``min_size`` (``registry.make_task``), a ``PatchedTask`` trains and validates on
fixed random ``image_size``-px patches of images read at full size instead, pretrains on many more patches of
its training images, and tests on the full images, so the metric is the one a user of the full images sees.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from benchmark.errors import ConfigError
from benchmark.tasks.base import SPLITS, Split, Task
from benchmark.tasks.common import SPLIT_SEED

if TYPE_CHECKING:
    import torch


class PatchedTask(Task):
    """A task that reads full-size splits (``_load_full``) and, with ``patches=True``, cuts patches of them.

    ``full_size`` is the side images are read at in patch mode (None: their native size); a subclass reads
    at ``read_size``. Patch centres lie inside ``valid`` (the field of view) where a split has one.
    """

    supports_patches: ClassVar[bool] = True
    patches_per_image: ClassVar[int] = 8  # labelled patches per training / validation image
    pretrain_patches_per_image: ClassVar[int] = 64  # unlabelled patches per training image for pretraining
    full_size: ClassVar[int | None] = None

    def __init__(self, data_root=None, image_size=None, seed: int = 0, patches: bool = False):
        super().__init__(data_root, image_size, seed)
        self.patches = patches

    @property
    def read_size(self) -> int | None:
        """Side length images are resized to when read: the full size in patch mode, else the input size."""
        return self.full_size if self.patches else self.image_size

    def _load_full(self, split: str) -> Split:
        raise NotImplementedError

    def _patching(self, full: Split) -> bool:
        """Patches only where the images are larger than a patch (a smaller image is already full-size)."""
        return self.patches and min(full.images.shape[-2:]) > self.image_size

    def _load(self, split: str) -> Split:
        full = self._load_full(split)
        if split == "test" or not self._patching(full):
            return full
        return sample_patches(full, self.image_size, self.patches_per_image, SPLIT_SEED + SPLITS.index(split))

    def pretrain_images(self) -> torch.Tensor:
        """Patch mode: many more unlabelled patches of the training images than the labelled ones."""
        full = self._load_full("train")
        if not self._patching(full):
            return super().pretrain_images()
        return sample_patches(full, self.image_size, self.pretrain_patches_per_image, SPLIT_SEED + 99).images

    def patch_note(self, full: str) -> str:
        """``input_note`` in patch mode; ``full`` says what the test images are."""
        return (f"native-resolution {self.image_size}-px patches ({self.patches_per_image} per training/validation "
                f"image), {full}")


def sample_patches(split: Split, size: int, per_image: int, seed: int) -> Split:
    """``per_image`` fixed random ``size``-px patches of every image, each centred inside the FOV (anywhere
    when the split has no FOV masks)."""
    import torch

    n, _, h, w = split.images.shape
    if size > min(h, w):
        raise ConfigError(f"patch size {size} is larger than the images ({h}x{w})")
    g = torch.Generator().manual_seed(seed)
    candidates = 16 * per_image
    ys = torch.randint(0, h - size + 1, (n, candidates), generator=g)
    xs = torch.randint(0, w - size + 1, (n, candidates), generator=g)
    valid = split.valid if split.valid is not None else torch.ones(n, h, w, dtype=torch.bool)
    inside = valid[torch.arange(n)[:, None], ys + size // 2, xs + size // 2]
    # candidates centred in the FOV first, in random order: the first ``per_image`` are kept
    order = torch.argsort((~inside).float() + 0.5 * torch.rand(n, candidates, generator=g), dim=1)[:, :per_image]
    ys, xs = ys.gather(1, order), xs.gather(1, order)
    offsets = torch.arange(size)
    rows = (ys[..., None] + offsets)[:, :, :, None]  # (n, k, size, 1)
    cols = (xs[..., None] + offsets)[:, :, None, :]  # (n, k, 1, size)
    sample = torch.arange(n)[:, None, None, None]

    def crop(t: torch.Tensor) -> torch.Tensor:  # (n, H, W, ...) -> (n * k, size, size, ...)
        return t[sample, rows, cols].flatten(0, 1)

    ids = [f"{i}@{y},{x}" for i, yy, xx in zip(split.ids, ys.tolist(), xs.tolist()) for y, x in zip(yy, xx)]
    return Split(crop(split.images.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous(), crop(split.targets),
                 None if split.valid is None else crop(split.valid), ids)
