"""MedMNIST npz loading: exact file names and keys, dtypes, label kinds, and bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.tasks.base import DataError
from benchmark.tasks.medmnist import BreastMNIST, DermaMNIST, OrganAMNIST, PathMNIST, RetinaMNIST

from .fixtures import write_medmnist


def test_attributes_come_from_medmnist_info():
    assert (RetinaMNIST.kind, RetinaMNIST.num_classes, RetinaMNIST.in_chans, RetinaMNIST.modality) == ("multiclass", 5, 3, "fundus")
    assert (PathMNIST.kind, PathMNIST.num_classes, PathMNIST.in_chans) == ("multiclass", 9, 3)
    assert (DermaMNIST.num_classes, DermaMNIST.modality) == (7, "dermatoscopy")
    assert (BreastMNIST.kind, BreastMNIST.num_classes, BreastMNIST.in_chans, BreastMNIST.modality) == ("binary", 2, 1, "ultrasound")
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
    with pytest.raises(DataError, match=r"breastmnist\.npz"):
        BreastMNIST(tmp_path, image_size=28).load("train")


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
