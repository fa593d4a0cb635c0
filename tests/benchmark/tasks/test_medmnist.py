"""MedMNIST npz loading: exact file names and keys, dtypes, label kinds, and bad files."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.core import registry
from benchmark.tasks import medmnist as mm
from benchmark.tasks.base import DataError
from benchmark.tasks.medmnist import BreastMNIST, DermaMNIST, OrganAMNIST, PathMNIST, RetinaMNIST
from tower.proxy import ProxyConfig

from .fixtures import write_medmnist

REAL = Path(__file__).resolve().parents[4] / "shared" / "data" / "medmnist" / "retinamnist.npz"
REAL_MD5 = "bd4c0672f1bba3e3a89f0e4e876791e4"  # medmnist.INFO["retinamnist"]["MD5"]
MASKS = {"fundus": "rays", "xray": "stripes"}  # every other MedMNIST modality: blocks


def test_attributes_come_from_medmnist_info():
    assert (RetinaMNIST.kind, RetinaMNIST.num_classes, RetinaMNIST.in_chans, RetinaMNIST.modality) == (
        "multiclass", 5, 3, "fundus")
    assert (PathMNIST.kind, PathMNIST.num_classes, PathMNIST.in_chans) == ("multiclass", 9, 3)
    assert (DermaMNIST.num_classes, DermaMNIST.modality) == (7, "dermatoscopy")
    assert (BreastMNIST.kind, BreastMNIST.num_classes, BreastMNIST.in_chans, BreastMNIST.modality) == (
        "binary", 2, 1, "ultrasound")
    assert (OrganAMNIST.num_classes, OrganAMNIST.in_chans, OrganAMNIST.modality) == (11, 1, "ct")


def test_loads_rgb_and_grey_values_exactly(tmp_path):
    path = write_medmnist(tmp_path, "pathmnist")
    with np.load(path) as npz:
        raw, labels = npz["val_images"], npz["val_labels"]
    s = PathMNIST(tmp_path).load("val")
    assert s.images.shape == (4, 3, 28, 28)
    assert torch.equal(s.images, torch.from_numpy(raw).permute(0, 3, 1, 2))
    assert s.targets.dtype == torch.int64 and s.targets.tolist() == labels[:, 0].tolist()
    write_medmnist(tmp_path, "organamnist")
    g = OrganAMNIST(tmp_path).load("test")
    assert g.images.shape == (6, 1, 28, 28)


def test_size_64_reads_the_64_file_and_other_sizes_resize(tmp_path):
    write_medmnist(tmp_path, "breastmnist", size=64)
    s = BreastMNIST(tmp_path, image_size=64).load("train")
    assert s.images.shape == (12, 1, 64, 64)
    r = BreastMNIST(tmp_path, image_size=48).load("train")  # no 48 file: read 64, resize
    assert r.images.shape == (12, 1, 48, 48) and r.images.dtype == torch.uint8
    small = BreastMNIST(tmp_path, image_size=28)  # only the 64 file: shrink it
    assert small.load("train").images.shape == (12, 1, 28, 28)
    assert small.input_note == "breastmnist_64.npz (64 px) resized to 28 px (bilinear, antialiased)"


def test_the_28_px_file_serves_any_size_and_larger_files_win(tmp_path):
    path = write_medmnist(tmp_path, "breastmnist")
    task = BreastMNIST(tmp_path, image_size=64)
    with np.load(path) as npz:
        raw = torch.from_numpy(npz["train_images"]).float()
    x = task.load("train").images
    assert x.shape == (12, 1, 64, 64)
    assert task.input_note == "breastmnist.npz (28 px) resized to 64 px (bilinear, antialiased)"
    assert (x.float().mean() - raw.mean()).abs() < 1.0  # a resize, not a crop or a blank
    write_medmnist(tmp_path, "breastmnist", size=128)
    assert BreastMNIST(tmp_path, image_size=64).path.name == "breastmnist_128.npz"  # smallest present >= 64
    assert BreastMNIST(tmp_path, image_size=224).path.name == "breastmnist_128.npz"  # else the largest present
    write_medmnist(tmp_path, "breastmnist", size=64)
    exact = BreastMNIST(tmp_path, image_size=64)
    assert exact.path.name == "breastmnist_64.npz" and exact.input_note == "breastmnist_64.npz (64 px)"


@pytest.mark.parametrize("flag", list(mm.FLAGS))
def test_every_2d_flag_is_a_task_from_info_and_loads_its_fixture(flag, tmp_path):
    cls = registry.task_class(flag)
    info = mm.INFO[flag]
    assert (cls.name, cls.__name__, cls.in_chans, cls.num_classes) == (
        flag, info["python_class"], info["n_channels"], len(info["label"]))
    assert cls.kind == mm.KINDS[info["task"]]
    assert ProxyConfig.for_modality(cls.modality).mask == MASKS.get(cls.modality, "blocks")
    write_medmnist(tmp_path, flag, counts=None)
    split = cls(tmp_path, image_size=32).load("test")
    assert split.images.shape[1:] == (cls.in_chans, 32, 32)
    k = cls.num_classes
    assert split.targets.shape == ((len(split), k) if cls.kind == "multilabel" else (len(split),))


def test_registry_lists_every_2d_flag_of_medmnist_info():
    info = pytest.importorskip("medmnist.info").INFO
    flags = {f for f in info if not f.endswith("3d")}
    assert set(mm.FLAGS) == flags and flags <= set(registry.TASKS)
    vendored = mm.vendored_info()  # the table used where the package is absent
    for flag in flags:
        for key, value in vendored[flag].items():
            got = info[flag][key]
            assert (len(got) if key == "label" else got) == (len(value) if key == "label" else value), (flag, key)


def test_listing_and_reading_work_without_the_medmnist_package(tmp_path):
    write_medmnist(tmp_path, "octmnist")
    code = f"""
import sys
sys.modules["medmnist"] = None  # as if not installed
from benchmark.core import registry
from benchmark.tasks.base import DataError
from benchmark.tasks import medmnist as mm
classes = [registry.task_class(f) for f in mm.FLAGS]
assert classes[3].name == "octmnist" and classes[3].num_classes == 4
assert registry.task_class("octmnist")({str(tmp_path)!r}).load("val").images.shape == (4, 1, 28, 28)
try:
    registry.task_class("bloodmnist")({str(tmp_path)!r}, download=True).load("train")
except DataError as err:
    print(err)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "needs the medmnist package" in out.stdout
    assert "zenodo.org/records/10519652/files/bloodmnist.npz" in out.stdout


@pytest.mark.skipif(not REAL.is_file(), reason=f"{REAL} absent")
@pytest.mark.parametrize("size", [28, 64])
def test_real_retinamnist_loads_at_28_and_64_px(size):
    assert hashlib.md5(REAL.read_bytes()).hexdigest() == REAL_MD5
    task = RetinaMNIST(REAL.parent, image_size=size)
    counts = {split: len(task.load(split)) for split in ("train", "val", "test")}
    assert counts == {"train": 1080, "val": 120, "test": 400}
    test = task.load("test")
    assert test.images.shape == (400, 3, size, size) and set(test.targets.unique().tolist()) == set(range(5))
    resized = "" if size == 28 else " resized to 64 px (bilinear, antialiased)"
    assert task.input_note == f"retinamnist.npz (28 px){resized}"


def test_missing_file_suggests_download(tmp_path):
    with pytest.raises(DataError, match=r"(?s)retinamnist\.npz.*zenodo.*--download"):
        RetinaMNIST(tmp_path).load("train")


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    import medmnist

    def offline(*args, **kwargs):
        raise RuntimeError("Automatic download failed! (no network)")

    monkeypatch.setattr(medmnist, "RetinaMNIST", offline)
    with pytest.raises(DataError, match=r"(?s)download of retinamnist\.npz.*failed.*no network"):
        RetinaMNIST(tmp_path, download=True).load("train")
    assert not (tmp_path / "retinamnist.npz").exists()


def test_truncated_npz(tmp_path):
    path = write_medmnist(tmp_path, "dermamnist")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"dermamnist\.npz: unreadable or truncated npz"):
        DermaMNIST(tmp_path).load("train")


def test_wrong_keys_name_expected_keys(tmp_path):
    np.savez_compressed(tmp_path / "dermamnist.npz", x_train=np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(DataError, match=r"expected \['train_images', 'train_labels'\]"):
        DermaMNIST(tmp_path).load("train")


def test_wrong_dtype_or_channels(tmp_path):
    write_medmnist(tmp_path, "dermamnist", channels=1)  # grey where RGB is expected
    with pytest.raises(DataError, match=r"expected uint8 \(N, H, W, 3\)"):
        DermaMNIST(tmp_path).load("train")


def test_label_out_of_range(tmp_path):
    write_medmnist(tmp_path, "breastmnist", n_classes=3)
    with pytest.raises(DataError, match=r"ids in \[0, 2\)"):
        BreastMNIST(tmp_path).load("train")


def test_not_an_npz_at_all(tmp_path):
    (tmp_path / "pathmnist.npz").write_text("hello")
    with pytest.raises(DataError, match="unreadable or truncated npz"):
        PathMNIST(tmp_path).load("test")
