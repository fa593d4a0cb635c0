"""DRIVE retinal vessel segmentation (Staal et al., 2004) in its official folder layout.

Splits: the official 20 test images are the test split; the 20 training images are cut into 16 train
and 4 validation images with a fixed seed (``common.SPLIT_SEED``, independent of the run seed), so
early stopping never looks at test images. Targets are the first observer's vessel masks (0/1), ``valid``
is the field-of-view mask: Dice is computed inside the FOV only.

Two input strategies, chosen by the size a budget asks for (``registry.make_task``):
- full images resized to ``image_size`` squared (bilinear with antialiasing; masks nearest): the paper's
  512 px, the default;
- below ``min_size`` the 1-2 px vessels would vanish (in-FOV green contrast falls from 90 vs 98 grey levels
  at native size to 94 vs 98 at 128 px, and nothing learns them), so training and validation use fixed
  random ``image_size``-px patches at native resolution instead, and the test split stays the 20 full
  565x584 images, scored inside the FOV.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.tasks.base import Split
from benchmark.tasks.common import SPLIT_SEED, find_root, fixed_split, layout_error, parallel_map, read_image, to_nchw
from benchmark.tasks.patches import PatchedTask

VAL_FRACTION = 0.2  # 4 of the 20 training images


class Drive(PatchedTask):
    name = "drive"
    kind = "segmentation"
    modality = "fundus"
    metric = "dice"
    in_chans = 3
    num_classes = 2
    image_size = 512
    description = "DRIVE retinal vessel segmentation (20 train / 20 test), Dice inside the FOV"
    source = "https://drive.grand-challenge.org/"
    layout = (
        "  training/images/NN_training.tif        (20 RGB fundus images, 565x584)\n"
        "  training/1st_manual/NN_manual1.gif     (vessel masks, 0/255)\n"
        "  training/mask/NN_training_mask.gif     (field-of-view masks, 0/255)\n"
        "  test/images/NN_test.tif\n"
        "  test/1st_manual/NN_manual1.gif\n"
        "  test/mask/NN_test_mask.gif"
    )

    min_size = 512  # the paper's input; smaller full images lose the vessels: patches instead

    @classmethod
    def miniature(cls, root: Path) -> dict:
        return {"data_root": write_miniature(root / "DRIVE"), "image_size": 32}

    def __init__(self, data_root=None, image_size=None, seed=0, patches: bool = False):
        super().__init__(data_root, image_size, seed, patches)
        self._full: dict[str, Split] = {}

    @property
    def input_note(self) -> str:
        return self.patch_note("the 20 full 565x584 test images") if self.patches else super().input_note

    def _files(self, part: str) -> list[tuple[str, Path, Path, Path]]:
        """(id, image, vessel mask, FOV mask) for every image of ``part``; ids must match across folders."""
        root = find_root(self.require_root(), "training", ("DRIVE",))
        base = root / part
        folders = {"images": base / "images", "1st_manual": base / "1st_manual", "mask": base / "mask"}
        for path in folders.values():
            if not path.is_dir():
                raise layout_error(path, "missing folder", self)
        patterns = {"images": rf"^(\d+)_{part}\.tiff?$", "1st_manual": r"^(\d+)_manual1\.gif$",
                    "mask": rf"^(\d+)_{part}_mask\.gif$"}
        found: dict[str, dict[str, Path]] = {}
        for key, folder in folders.items():
            found[key] = {m.group(1): p for p in sorted(folder.iterdir())
                          if (m := re.match(patterns[key], p.name))}
            if not found[key]:
                raise layout_error(folder, f"no files matching {patterns[key]!r}", self)
        ids = sorted(found["images"])
        for key in ("1st_manual", "mask"):
            if sorted(found[key]) != ids:
                missing = sorted(set(ids) - set(found[key]))
                extra = sorted(set(found[key]) - set(ids))
                raise layout_error(
                    folders[key],
                    f"{len(found[key])} files do not match the {len(ids)} images in {folders['images']}"
                    f" (missing ids {missing}, extra ids {extra})", self)
        return [(i, found["images"][i], found["1st_manual"][i], found["mask"][i]) for i in ids]

    def _load_part(self, part: str) -> Split:
        import torch

        if part in self._full:
            return self._full[part]
        files = self._files(part)
        size = self.read_size
        images = parallel_map(lambda f: read_image(f[1], self, "RGB", size), files)
        vessels = parallel_map(lambda f: read_image(f[2], self, "L", size, Image.NEAREST), files)
        fovs = parallel_map(lambda f: read_image(f[3], self, "L", size, Image.NEAREST), files)
        for f, img, ves, fov in zip(files, images, vessels, fovs):
            if ves.shape != img.shape[:2] or fov.shape != img.shape[:2]:
                raise layout_error(f[2], f"mask shape {ves.shape}/{fov.shape} differs from image {img.shape[:2]}", self)
        split = Split(
            images=to_nchw(images),
            targets=torch.from_numpy((np.stack(vessels) > 127).astype(np.uint8)),
            valid=torch.from_numpy(np.stack(fovs) > 127),
            ids=[f"{part}/{f[0]}" for f in files],
        )
        self._full[part] = split
        return split

    def _load_full(self, split: str) -> Split:
        import torch

        if split == "test":
            return self._load_part("test")
        full = self._load_part("training")
        train_idx, val_idx = fixed_split(len(full), (1 - VAL_FRACTION, VAL_FRACTION), SPLIT_SEED)
        return full.subset(torch.from_numpy(train_idx if split == "train" else val_idx))


# ----------------------------------------------------------------------------- miniature data (contract tests)

def write_miniature(root: Path, n_train: int = 5, n_test: int = 3, size=(26, 24)) -> Path:
    """DRIVE: NN_training.tif / NN_manual1.gif / NN_training_mask.gif (training ids 21.., test ids 01..)."""
    rng = np.random.default_rng(1)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    fov = (((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 <= 0.9).astype(np.uint8) * 255
    for part, first, n in (("training", 21, n_train), ("test", 1, n_test)):
        for sub in ("images", "1st_manual", "mask"):
            (root / part / sub).mkdir(parents=True, exist_ok=True)
        for i in range(first, first + n):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(
                root / part / "images" / f"{i:02d}_{part}.tif")
            Image.fromarray((rng.random((h, w)) < 0.15).astype(np.uint8) * 255, "L").save(
                root / part / "1st_manual" / f"{i:02d}_manual1.gif")
            Image.fromarray(fov, "L").save(root / part / "mask" / f"{i:02d}_{part}_mask.gif")
    return root
