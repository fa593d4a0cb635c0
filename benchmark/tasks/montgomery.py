"""Montgomery County chest X-ray lung segmentation (Jaeger et al., 2014).

Target: the lung mask = union of the left- and right-lung manual masks (0/1). The set has no official
split: the 138 images are cut 70/10/20 % (train/val/test) with a fixed seed (``common.SPLIT_SEED``,
independent of the run seed), by sorted file name. Images (12-bit PNGs, ~4000 px) are read as grey,
resized to ``image_size`` squared (bilinear; masks nearest); every pixel counts in Dice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.tasks.base import Split, Task
from benchmark.tasks.common import find_root, fixed_split, layout_error, parallel_map, read_image, to_nchw

FRACTIONS = (0.7, 0.1, 0.2)


class Montgomery(Task):
    name = "montgomery"
    kind = "segmentation"
    modality = "xray"
    metric = "dice"
    in_chans = 1
    num_classes = 2
    image_size = 224
    description = "Montgomery County chest X-ray lung segmentation (138 images), Dice"
    source = "https://openi.nlm.nih.gov/faq (Montgomery County CXR set, MontgomerySet.zip)"
    layout = (
        "  CXR_png/MCUCXR_NNNN_{0|1}.png           (138 chest X-rays)\n"
        "  ManualMask/leftMask/MCUCXR_NNNN_{0|1}.png  (left lung, same file names)\n"
        "  ManualMask/rightMask/MCUCXR_NNNN_{0|1}.png (right lung)"
    )

    @classmethod
    def miniature(cls, root: Path) -> dict:
        return {"data_root": write_miniature(root / "MontgomerySet"), "image_size": 32}

    def __init__(self, data_root=None, image_size=None, seed=0):
        super().__init__(data_root, image_size, seed)
        self._files: list[Path] | None = None

    def _list(self) -> tuple[Path, list[Path]]:
        root = find_root(self.require_root(), "CXR_png", ("MontgomerySet",))
        folders = [root / "CXR_png", root / "ManualMask" / "leftMask", root / "ManualMask" / "rightMask"]
        for folder in folders:
            if not folder.is_dir():
                raise layout_error(folder, "missing folder", self)
        images = sorted(folders[0].glob("*.png"))
        if not images:
            raise layout_error(folders[0], "no .png images", self)
        names = [p.name for p in images]
        for folder in folders[1:]:
            masks = sorted(p.name for p in folder.glob("*.png"))
            if masks != names:
                missing = sorted(set(names) - set(masks))[:5]
                raise layout_error(folder, f"{len(masks)} masks do not match the {len(names)} images in "
                                           f"{folders[0]} (e.g. missing {missing})", self)
        return root, images

    def _load(self, split: str) -> Split:
        import torch

        root, images = self._list()
        idx = fixed_split(len(images), FRACTIONS)[("train", "val", "test").index(split)]
        files = [images[i] for i in idx]
        size = self.image_size
        x = parallel_map(lambda p: read_image(p, self, "L", size), files)

        def lung(p: Path) -> np.ndarray:
            left = read_image(root / "ManualMask" / "leftMask" / p.name, self, "L", size, Image.NEAREST)
            right = read_image(root / "ManualMask" / "rightMask" / p.name, self, "L", size, Image.NEAREST)
            return ((left > 127) | (right > 127)).astype(np.uint8)

        y = parallel_map(lung, files)
        targets = torch.from_numpy(np.stack(y))
        return Split(to_nchw(x), targets, valid=torch.ones_like(targets, dtype=torch.bool),
                     ids=[p.stem for p in files])


# ----------------------------------------------------------------------------- miniature data (contract tests)

def write_miniature(root: Path, n: int = 10, size=(40, 48)) -> Path:
    """Montgomery: CXR_png/MCUCXR_NNNN_{0|1}.png + ManualMask/{left,right}Mask/ same names."""
    rng = np.random.default_rng(3)
    w, h = size
    for sub in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = f"MCUCXR_{i + 1:04d}_{i % 2}.png"
        Image.fromarray(rng.integers(0, 4096, (h, w), dtype=np.uint16).astype(np.uint16)).save(root / "CXR_png" / name)
        left = np.zeros((h, w), np.uint8)
        left[5:h - 5, 3:w // 2 - 2] = 255
        right = np.zeros((h, w), np.uint8)
        right[5:h - 5, w // 2 + 2:w - 3] = 255
        Image.fromarray(left).save(root / "ManualMask/leftMask" / name)
        Image.fromarray(right).save(root / "ManualMask/rightMask" / name)
    return root
