"""DRIVE: the real copy (skipped when absent) and bad layouts on miniature fixtures."""
from __future__ import annotations

import pytest
import torch

from benchmark.tasks.base import DataError
from benchmark.tasks.drive import Drive

from .fixtures import write_drive


def test_real_drive_counts_shapes_masks(drive_root):
    task = Drive(drive_root, image_size=64)
    train, val, test = (task.load(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (16, 4, 20)
    assert {i.split("/")[1] for i in train.ids + val.ids} == {str(i) for i in range(21, 41)}
    assert test.ids == [f"test/{i:02d}" for i in range(1, 21)]
    for s in (train, val, test):
        assert s.images.shape[1:] == (3, 64, 64) and s.images.dtype == torch.uint8
        assert set(s.targets.unique().tolist()) == {0, 1}
        fov = s.valid.float().mean().item()
        assert 0.6 < fov < 0.8  # DRIVE's circular FOV covers ~69 % of the frame
        vessels = s.targets.float().mean().item()
        assert 0.05 < vessels < 0.15  # ~12 % vessel pixels at native size
        assert not (s.targets.bool() & ~s.valid).float().mean() > 0.01  # vessels lie inside the FOV
        # fundus images are red-dominant inside the FOV
        inside = s.images.permute(1, 0, 2, 3)[:, s.valid].float().mean(1)
        assert inside[0] > inside[1] > inside[2]


def test_real_drive_validation_is_fixed_and_independent_of_run_seed(drive_root):
    a, b = Drive(drive_root, 32, seed=0), Drive(drive_root, 32, seed=7)
    assert a.load("val").ids == b.load("val").ids
    assert torch.equal(a.load("val").images, b.load("val").images)


def test_fixture_loads_and_resizes_masks_nearest(tmp_path):
    root = write_drive(tmp_path / "DRIVE", n_train=10, n_test=2)
    task = Drive(root, image_size=20)
    train, val = task.load("train"), task.load("val")
    assert (len(train), len(val)) == (8, 2)
    assert set(train.targets.unique().tolist()) <= {0, 1}
    assert train.valid.dtype == torch.bool and 0 < train.valid.float().mean() < 1


def test_accepts_parent_folder(tmp_path):
    write_drive(tmp_path / "DRIVE")
    assert len(Drive(tmp_path, image_size=16).load("test")) == 3


def test_missing_root_names_layout(tmp_path):
    with pytest.raises(DataError, match="training/1st_manual"):
        Drive(tmp_path / "nope").load("train")


def test_missing_mask_names_id_and_folder(tmp_path):
    root = write_drive(tmp_path / "DRIVE")
    (root / "training" / "mask" / "23_training_mask.gif").unlink()
    with pytest.raises(DataError, match=r"(?s)training/mask.*missing ids \['23'\].*expected layout"):
        Drive(root, 16).load("train")


def test_mismatched_count(tmp_path):
    root = write_drive(tmp_path / "DRIVE")
    (root / "test" / "1st_manual" / "01_manual1.gif").rename(root / "test" / "1st_manual" / "09_manual1.gif")
    with pytest.raises(DataError, match=r"missing ids \['01'\], extra ids \['09'\]"):
        Drive(root, 16).load("test")


def test_missing_folder(tmp_path):
    root = write_drive(tmp_path / "DRIVE")
    for f in (root / "test" / "mask").iterdir():
        f.unlink()
    (root / "test" / "mask").rmdir()
    with pytest.raises(DataError, match=r"test/mask: missing folder"):
        Drive(root, 16).load("test")


def test_truncated_tif_names_file(tmp_path):
    root = write_drive(tmp_path / "DRIVE", size=(60, 64))
    path = root / "training" / "images" / "22_training.tif"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"22_training\.tif: unreadable or truncated image"):
        Drive(root, 16).load("train")


def test_empty_images_folder(tmp_path):
    root = write_drive(tmp_path / "DRIVE")
    for f in (root / "training" / "images").iterdir():
        f.rename(f.with_suffix(".png"))
    with pytest.raises(DataError, match="no files matching"):
        Drive(root, 16).load("val")


def test_patches_are_native_crops_centred_in_the_fov_and_test_stays_whole(drive_root):
    task = Drive(drive_root, 64, patches=True)
    train, val, test = task.load("train"), task.load("val"), task.load("test")
    k = Drive.patches_per_image
    assert train.images.shape == (16 * k, 3, 64, 64) and val.images.shape == (4 * k, 3, 64, 64)
    assert test.images.shape == (20, 3, 584, 565)  # the metric is still on the 20 full test images
    assert train.valid[:, 32, 32].all()  # every patch is centred inside the field of view
    full = task._load_full("train")
    for pid, image, target in zip(train.ids[::17], train.images[::17], train.targets[::17]):
        name, pos = pid.split("@")
        y, x = map(int, pos.split(","))
        j = full.ids.index(name)
        assert torch.equal(image, full.images[j, :, y:y + 64, x:x + 64])
        assert torch.equal(target, full.targets[j, y:y + 64, x:x + 64])
    assert {i.split("@")[0] for i in train.ids}.isdisjoint({i.split("@")[0] for i in val.ids})
    assert torch.equal(Drive(drive_root, 64, patches=True).load("train").images, train.images)  # fixed patches
    pool = task.pretrain_images()  # many more unlabelled patches of the 16 training images only
    assert pool.shape == (16 * Drive.pretrain_patches_per_image, 3, 64, 64)
