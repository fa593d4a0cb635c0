"""LiTS: NIfTI pairs -> windowed axial slices, split by volume, consistent orientation, bad files."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from benchmark.tasks.base import DataError
from benchmark.tasks.lits import LiTS

from .fixtures import lits_volume, write_lits


def test_slices_window_and_liver_label(tmp_path):
    root = write_lits(tmp_path / "LiTS", n=6)
    task = LiTS(root, image_size=20, other_fraction=0.0)
    s = task.load("test")
    vols = {i.split("/")[0] for i in s.ids}
    assert len(vols) == 1  # 20 % of 6 volumes
    vid = int(next(iter(vols)).split("-")[1])
    # axial = the volume's last (S) axis; slices 4..7 hold liver; other_fraction=0 keeps no others
    assert sorted(int(i.split("-")[-1]) for i in s.ids) == [4, 5, 6, 7]
    assert s.images.shape == (4, 1, 20, 20) and set(s.targets.unique().tolist()) == {0, 1}
    # native slices: labels 1 and 2 both count as liver (a 10 x 9 block per slice)
    ct, seg = lits_volume(vid)
    vol = next(root.rglob(f"volume-{vid}.nii*"))
    x, y, kept = task._slices(vid, vol, next(root.rglob(f"segmentation-{vid}.nii*")))
    assert kept == [4, 5, 6, 7] and y.sum().item() == 4 * 10 * 9
    # HU window [-200, 250] -> 0..255: values below -200 map to 0, above 250 to 255, linear between
    for j, k in enumerate(kept):
        assert (x[j] == 0).sum() == (ct[:, :, k] <= -200).sum()
        assert (x[j] == 255).sum() == (ct[:, :, k] >= 250).sum()
    assert sorted(x[0].flatten().tolist()) == sorted(
        np.rint((np.clip(ct[:, :, 4].astype(float), -200, 250) + 200) * 255 / 450).astype(np.uint8).flatten().tolist())


def test_split_by_volume_and_other_fraction(tmp_path):
    root = write_lits(tmp_path / "LiTS", n=10)
    task = LiTS(root, image_size=16, other_fraction=1.0)
    per_split = {s: {i.split("/")[0] for i in task.load(s).ids} for s in ("train", "val", "test")}
    assert [len(v) for v in per_split.values()] == [7, 1, 2]
    assert not (per_split["train"] & per_split["val"]) and not (per_split["train"] & per_split["test"])
    assert len(task.load("val")) == 12  # other_fraction=1: every slice of the volume
    some = LiTS(root, image_size=16, other_fraction=0.5).load("train")
    assert 7 * 4 < len(some) < 7 * 12
    assert LiTS(root, 16, seed=5, other_fraction=1.0).load("test").ids == task.load("test").ids


def test_orientation_is_consistent_across_storage_orders(tmp_path):
    """The same anatomy stored in two axis orders/directions gives the same slices."""
    ct, seg = lits_volume(0)
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(ct, affine), a / "volume-0.nii")
    nib.save(nib.Nifti1Image(seg, affine), a / "segmentation-0.nii")
    # store as (z, y, x) with x flipped: voxel (k, j, i') -> world via a permuted affine
    ct2 = ct.transpose(2, 1, 0)[:, :, ::-1].copy()
    seg2 = seg.transpose(2, 1, 0)[:, :, ::-1].copy()
    nx = ct.shape[0]
    aff2 = np.zeros((4, 4))
    aff2[2, 0] = 2.5  # axis 0 -> S
    aff2[1, 1] = -0.8  # axis 1 -> P (as before)
    aff2[0, 2] = 0.8  # axis 2 -> R, flipped storage of x
    aff2[0, 3] = -0.8 * (nx - 1)
    aff2[3, 3] = 1
    nib.save(nib.Nifti1Image(ct2, aff2), b / "volume-0.nii.gz")
    nib.save(nib.Nifti1Image(seg2, aff2), b / "segmentation-0.nii.gz")
    xa, ya, ka = LiTS(a)._slices(0, a / "volume-0.nii", a / "segmentation-0.nii")
    xb, yb, kb = LiTS(b)._slices(0, b / "volume-0.nii.gz", b / "segmentation-0.nii.gz")
    assert ka == kb and torch.equal(xa, xb) and torch.equal(ya, yb)
    assert xa.shape[1:] == (1, 18, 20)  # rows = A/P axis (18), cols = R/L axis (20)


def test_unpaired_and_corrupt_files(tmp_path):
    root = write_lits(tmp_path / "LiTS", n=4)
    seg = next(root.rglob("segmentation-3.nii*"))
    seg.unlink()
    with pytest.raises(DataError, match=r"4 volumes but 3 segmentations; unpaired ids \[3\]"):
        LiTS(root, 16).load("train")
    root2 = write_lits(tmp_path / "L2", n=4, gz_every=1)
    for v in root2.rglob("volume-*.nii.gz"):
        v.write_bytes(v.read_bytes()[:200])
    with pytest.raises(DataError, match=r"volume-\d\.nii\.gz: unreadable NIfTI pair"):
        LiTS(root2, 16).load("train")


def test_shape_mismatch(tmp_path):
    ct, seg = lits_volume(0)
    nib.save(nib.Nifti1Image(ct, np.eye(4)), tmp_path / "volume-0.nii")
    nib.save(nib.Nifti1Image(seg[:, :, :-1], np.eye(4)), tmp_path / "segmentation-0.nii")
    with pytest.raises(DataError, match=r"segmentation-0\.nii: shape"):
        LiTS(tmp_path, 16).load("train")


def test_no_volumes(tmp_path):
    with pytest.raises(DataError, match="no volume-N.nii"):
        LiTS(tmp_path, 16).load("train")
