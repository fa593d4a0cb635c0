"""LiTS liver segmentation (Bilic et al., 2019) as 2D axial slices of the 131 training CT volumes.

Pairs ``volume-N.nii[.gz]`` / ``segmentation-N.nii[.gz]`` are found anywhere under ``--data-root`` (the
official release spreads them over "Training Batch 1/2"). Target: liver = segmentation >= 1 (liver and
tumour). CT intensities are windowed to [-200, 250] HU and mapped linearly to 0..255. Slices are taken
along the volume's superior-inferior axis (read from the affine) and oriented consistently (anterior at
the top, patient's right on the left). Splits are by VOLUME, 70/10/20 % with a fixed seed
(``common.SPLIT_SEED``): no volume contributes slices to two splits. Kept slices: every slice with liver,
plus ``other_fraction`` (default 10 %) of the slices without liver, drawn with a fixed seed per volume,
so the model also sees negatives. Volumes are read one at a time and only the kept slices are decoded.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from benchmark.tasks.base import DataError, Split, Task
from benchmark.tasks.common import SPLIT_SEED, fixed_split, layout_error, resize_images, resize_masks

FRACTIONS = (0.7, 0.1, 0.2)
HU_WINDOW = (-200.0, 250.0)
PATTERN = re.compile(r"^(volume|segmentation)-(\d+)\.nii(\.gz)?$")


class LiTS(Task):
    name = "lits"
    kind = "segmentation"
    modality = "ct"
    metric = "dice"
    in_chans = 1
    num_classes = 2
    image_size = 512
    description = "LiTS liver segmentation on 2D axial CT slices (131 volumes, split by volume), Dice"
    source = "https://competitions.codalab.org/competitions/17094 (LiTS training batches 1 and 2)"
    layout = ("  volume-N.nii[.gz] and segmentation-N.nii[.gz] pairs (N = 0..130), in any sub-folders\n"
              "  (segmentation labels: 0 background, 1 liver, 2 tumour)")

    @classmethod
    def miniature(cls, root: Path) -> dict:
        return {"data_root": write_miniature(root / "LiTS"), "image_size": 16}

    def __init__(self, data_root=None, image_size=None, seed=0, other_fraction: float = 0.1,
                 max_volumes: int | None = None):
        super().__init__(data_root, image_size, seed)
        self.other_fraction = other_fraction
        self.max_volumes = max_volumes

    def pairs(self) -> list[tuple[int, Path, Path]]:
        root = self.require_root()
        found: dict[str, dict[int, Path]] = {"volume": {}, "segmentation": {}}
        for p in sorted(root.rglob("*.nii*")):
            if m := PATTERN.match(p.name):
                found[m.group(1)][int(m.group(2))] = p
        vols, segs = found["volume"], found["segmentation"]
        if not vols:
            raise layout_error(root, "no volume-N.nii[.gz] files found", self)
        if sorted(vols) != sorted(segs):
            missing = sorted(set(vols) ^ set(segs))[:5]
            raise layout_error(root, f"{len(vols)} volumes but {len(segs)} segmentations; unpaired ids {missing}", self)
        ids = sorted(vols)
        if self.max_volumes is not None:
            ids = [ids[i] for i in np.sort(np.random.default_rng(SPLIT_SEED).permutation(len(ids))[: self.max_volumes])]
        return [(i, vols[i], segs[i]) for i in ids]

    def _load(self, split: str) -> Split:
        import torch

        pairs = self.pairs()
        idx = fixed_split(len(pairs), FRACTIONS)[("train", "val", "test").index(split)]
        images, masks, ids = [], [], []
        for i in idx:
            vid, vol_path, seg_path = pairs[i]
            x, y, kept = self._slices(vid, vol_path, seg_path)
            images.append(resize_images(x, self.image_size))
            masks.append(resize_masks(y, self.image_size))
            ids += [f"volume-{vid}/slice-{k}" for k in kept]
        if not images:
            raise DataError(f"{self.name}: split {split!r} got no volumes ({len(pairs)} volumes in total)")
        targets = torch.cat(masks)
        return Split(torch.cat(images), targets, valid=torch.ones_like(targets, dtype=torch.bool), ids=ids)

    def _slices(self, vid: int, vol_path: Path, seg_path: Path) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Kept axial slices of one volume: (S, 1, H, W) uint8 windowed CT, (S, H, W) uint8 liver mask."""
        import torch

        try:
            import nibabel as nib
        except ImportError:
            raise DataError(f"{self.name}: reading {vol_path.name} needs nibabel: pip install 'tower-bench[nifti]'") \
                from None

        try:
            vol, seg = nib.load(vol_path), nib.load(seg_path)
            if vol.shape != seg.shape or len(vol.shape) != 3:
                raise layout_error(seg_path, f"shape {seg.shape} differs from {vol_path.name} {vol.shape} "
                                             "(expected the same 3-D shape)", self)
            ornt = nib.io_orientation(vol.affine)
            axial = int(np.flatnonzero(ornt[:, 0] == 2)[0])
            labels = np.asanyarray(seg.dataobj)
            if labels.min() < 0 or labels.max() > 2:
                raise layout_error(seg_path, f"labels span [{labels.min()}, {labels.max()}]; expected 0 background, "
                                             "1 liver, 2 tumour", self)
            liver = labels >= 0.5  # labels 1 (liver) and 2 (tumour)
            liver = np.moveaxis(liver, axial, 0)  # (slices, a, b)
            has = liver.any(axis=(1, 2))
            rng = np.random.default_rng([SPLIT_SEED, vid])
            kept = np.flatnonzero(has | (rng.random(len(has)) < self.other_fraction))
            index = [slice(None)] * 3
            ct = []
            for k in kept:
                index[axial] = int(k)
                ct.append(np.asarray(vol.dataobj[tuple(index)], dtype=np.float32))
        except DataError:
            raise
        except Exception as err:  # nibabel raises many kinds on truncated/gzip-corrupt files
            raise layout_error(vol_path, f"unreadable NIfTI pair ({type(err).__name__}: {err})", self) from None
        if len(kept) == 0:
            raise layout_error(seg_path, "no slices kept (no liver and other_fraction gave none)", self)
        ct = np.stack(ct)
        if not np.isfinite(ct).all():
            raise layout_error(vol_path, "NaN or infinite voxels; expected finite CT values in HU", self)
        lo, hi = HU_WINDOW
        x = np.rint((np.clip(ct, lo, hi) - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        y = liver[kept].astype(np.uint8)
        x, y = _orient(x, ornt, axial), _orient(y, ornt, axial)
        return torch.from_numpy(x)[:, None].contiguous(), torch.from_numpy(y).contiguous(), [int(k) for k in kept]


def _orient(a: np.ndarray, ornt: np.ndarray, axial: int) -> np.ndarray:
    """(S, p, q) in-plane axes as stored -> (S, rows anterior->posterior, cols patient right->left)."""
    inplane = [i for i in range(3) if i != axial]  # stored order of the two remaining axes
    out_axes = [int(ornt[i, 0]) for i in inplane]  # 0 = x (R/L), 1 = y (A/P) in RAS
    if out_axes == [0, 1]:  # stored (x, y): rows must be y
        a = a.transpose(0, 2, 1)
        flips = (ornt[inplane[1], 1], ornt[inplane[0], 1])
    else:
        flips = (ornt[inplane[0], 1], ornt[inplane[1], 1])
    # RAS+: +y = anterior, +x = right. Rows go anterior->posterior: flip if stored +1 (toward anterior).
    if flips[0] > 0:
        a = a[:, ::-1]
    # Columns go patient right->left: flip if stored direction points toward right (+1).
    if flips[1] > 0:
        a = a[:, :, ::-1]
    return np.ascontiguousarray(a)


# ----------------------------------------------------------------------------- miniature data (contract tests)

def miniature_volume(i: int, shape=(20, 18, 12)) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like int16 volume (air/soft tissue) with a liver block in the middle slices (labels 1, 2)."""
    rng = np.random.default_rng(100 + i)
    ct = rng.integers(-1000, 400, shape).astype(np.int16)
    seg = np.zeros(shape, np.uint8)
    seg[4:14, 3:12, 4:8] = 1
    seg[6:8, 5:7, 5:6] = 2  # tumour counts as liver
    return ct, seg


def write_miniature(root: Path, n: int = 6, gz_every: int = 2) -> Path:
    """LiTS: volume-N.nii[.gz] / segmentation-N.nii[.gz], spread over two 'Training Batch' folders."""
    import nibabel as nib

    affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # LPS-stored like many LiTS volumes
    for i in range(n):
        folder = root / ("Training Batch 1" if i < n // 2 else "Training Batch 2")
        folder.mkdir(parents=True, exist_ok=True)
        ext = ".nii.gz" if i % gz_every == 0 else ".nii"
        ct, seg = miniature_volume(i)
        nib.save(nib.Nifti1Image(ct, affine), folder / f"volume-{i}{ext}")
        nib.save(nib.Nifti1Image(seg, affine), folder / f"segmentation-{i}{ext}")
    return root
