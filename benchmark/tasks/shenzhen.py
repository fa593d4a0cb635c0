"""Shenzhen chest X-ray tuberculosis classification (Jaeger et al., 2014).

Label: the last digit of ``CHNCXR_NNNN_{0|1}.png`` (1 = tuberculosis). No official split: the 662
images are cut 70/10/20 % (train/val/test) within each class with a fixed seed (``common.SPLIT_SEED``,
independent of the run seed), so every split keeps the TB/normal ratio. Images are read as grey and
resized to ``image_size`` squared (bilinear).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from benchmark.tasks.base import Split, Task
from benchmark.tasks.common import find_root, layout_error, parallel_map, read_image, stratified_split, to_nchw

FRACTIONS = (0.7, 0.1, 0.2)
PATTERN = re.compile(r"^CHNCXR_(\d+)_([01])\.png$")


class Shenzhen(Task):
    name = "shenzhen"
    kind = "binary"
    modality = "xray"
    metric = "auc"
    in_chans = 1
    num_classes = 2
    image_size = 224
    description = "Shenzhen chest X-ray tuberculosis detection (662 images), binary AUC"
    source = "https://openi.nlm.nih.gov/faq (Shenzhen CXR set, ChinaSet_AllFiles.zip)"
    layout = "  CXR_png/CHNCXR_NNNN_{0|1}.png   (662 chest X-rays; the last digit is the label, 1 = TB)"

    @classmethod
    def miniature(cls, root: Path) -> dict:
        return {"data_root": write_miniature(root / "ChinaSet_AllFiles"), "image_size": 32}

    def _load(self, split: str) -> Split:
        import torch

        root = find_root(self.require_root(), "CXR_png", ("ChinaSet_AllFiles",))
        folder = root / "CXR_png"
        if not folder.is_dir():
            raise layout_error(folder, "missing folder", self)
        files = sorted(folder.glob("*.png"))
        bad = [p.name for p in files if not PATTERN.match(p.name)]
        if bad:
            raise layout_error(folder / bad[0], f"file name does not match CHNCXR_NNNN_{{0|1}}.png "
                                                f"({len(bad)} such files)", self)
        if not files:
            raise layout_error(folder, "no CHNCXR_*.png images", self)
        labels = np.array([int(PATTERN.match(p.name).group(2)) for p in files])
        idx = stratified_split(labels, FRACTIONS)[("train", "val", "test").index(split)]
        chosen = [files[i] for i in idx]
        x = parallel_map(lambda p: read_image(p, self, "L", self.image_size), chosen)
        return Split(to_nchw(x), torch.from_numpy(labels[idx].astype(np.int64)), ids=[p.stem for p in chosen])


# ----------------------------------------------------------------------------- miniature data (contract tests)

def write_miniature(root: Path, n: int = 20, size=(36, 40)) -> Path:
    """Shenzhen: CXR_png/CHNCXR_NNNN_{0|1}.png, label = last digit (some files RGB, as in the real set)."""
    from PIL import Image

    rng = np.random.default_rng(4)
    (root / "CXR_png").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        mode_rgb = i % 5 == 0
        arr = rng.integers(0, 256, (size[1], size[0], 3) if mode_rgb else (size[1], size[0]), dtype=np.uint8)
        Image.fromarray(arr).save(root / "CXR_png" / f"CHNCXR_{i + 1:04d}_{int(i % 3 == 0)}.png")
    (root / "CXR_png" / "Thumbs.db").write_bytes(b"\0" * 10)
    return root
