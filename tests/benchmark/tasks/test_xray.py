"""Montgomery, Shenzhen and CheXpert on miniature copies of their official layouts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmark.tasks.base import DataError
from benchmark.tasks.chexpert import FINDINGS, CheXpert
from benchmark.tasks.montgomery import Montgomery
from benchmark.tasks.shenzhen import Shenzhen

from .fixtures import write_chexpert, write_montgomery, write_shenzhen


# ------------------------------------------------------------------------------------------ Montgomery
def test_montgomery_mask_is_union_and_split_fixed(tmp_path):
    root = write_montgomery(tmp_path / "MontgomerySet", n=20)
    task = Montgomery(tmp_path, image_size=48)  # the zip's parent folder is accepted too
    sizes = [len(task.load(s)) for s in ("train", "val", "test")]
    assert sizes == [14, 2, 4]
    test = task.load("test")
    name = test.ids[0] + ".png"
    left = np.asarray(Image.open(root / "ManualMask/leftMask" / name).resize((48, 48), Image.NEAREST)) > 0
    right = np.asarray(Image.open(root / "ManualMask/rightMask" / name).resize((48, 48), Image.NEAREST)) > 0
    assert torch.equal(test.targets[0].bool(), torch.from_numpy(left | right))
    assert left.any() and right.any() and not (left & right).any()
    assert Montgomery(root, 48, seed=3).load("test").ids == test.ids


def test_montgomery_16bit_png_scaled_not_clipped(tmp_path):
    root = write_montgomery(tmp_path / "m", n=10)
    x = Montgomery(root, image_size=40).load("train").images
    assert x.dtype == torch.uint8 and x.float().std() > 30  # 12-bit noise spread over 0..255, not clipped to 255
    assert (x == 255).float().mean() < 0.05


def test_montgomery_missing_right_mask(tmp_path):
    root = write_montgomery(tmp_path / "m", n=6)
    (root / "ManualMask/rightMask/MCUCXR_0003_0.png").unlink()
    with pytest.raises(DataError, match=r"(?s)rightMask: 5 masks do not match the 6 images.*MCUCXR_0003_0\.png"):
        Montgomery(root, 32).load("train")


def test_montgomery_missing_folder(tmp_path):
    (tmp_path / "CXR_png").mkdir()
    with pytest.raises(DataError, match=r"leftMask: missing folder"):
        Montgomery(tmp_path, 32).load("train")


# ------------------------------------------------------------------------------------------ Shenzhen
def test_shenzhen_labels_from_file_names_and_stratified(tmp_path):
    root = write_shenzhen(tmp_path / "s", n=30)
    task = Shenzhen(root, image_size=24)
    splits = {s: task.load(s) for s in ("train", "val", "test")}
    for s in splits.values():
        for sid, y in zip(s.ids, s.targets.tolist()):
            assert int(sid[-1]) == y
        assert 0 < s.targets.float().mean() < 1  # both classes in every split
    assert sum(len(s) for s in splits.values()) == 30
    assert splits["train"].images.shape == (len(splits["train"]), 1, 24, 24)


def test_shenzhen_bad_file_name(tmp_path):
    root = write_shenzhen(tmp_path / "s", n=6)
    Image.new("L", (8, 8)).save(root / "CXR_png" / "CHNCXR_0099.png")
    with pytest.raises(DataError, match=r"CHNCXR_0099\.png: file name does not match"):
        Shenzhen(root, 16).load("test")


def test_shenzhen_truncated_png(tmp_path):
    root = write_shenzhen(tmp_path / "s", n=10, size=(200, 200))
    files = sorted((root / "CXR_png").glob("*.png"))
    for f in files:
        f.write_bytes(f.read_bytes()[:400])
    with pytest.raises(DataError, match=r"\.png: unreadable or truncated image"):
        Shenzhen(root, 16).load("train")


# ------------------------------------------------------------------------------------------ CheXpert
def test_chexpert_uncertainty_policy():
    df = pd.DataFrame({f: [-1.0, 1.0, 0.0, np.nan] for f in FINDINGS})
    y = CheXpert.labels(df)
    assert y.dtype == np.float32
    ones = [FINDINGS.index("Atelectasis"), FINDINGS.index("Edema")]
    zeros = [i for i in range(5) if i not in ones]
    assert (y[0, ones] == 1).all() and (y[0, zeros] == 0).all()  # U-Ones / U-Zeros
    assert (y[1] == 1).all() and (y[2] == 0).all() and (y[3] == 0).all()  # blank = 0


def test_chexpert_frontal_only_patient_disjoint_and_valid_is_test(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small")
    task = CheXpert(root, image_size=32)
    train, val, test = (task.load(s) for s in ("train", "val", "test"))
    for s in (train, val, test):
        assert all("frontal" in i for i in s.ids)
    csv = pd.read_csv(root / "valid.csv")
    assert test.ids == list(csv[csv["Frontal/Lateral"] == "Frontal"]["Path"])
    patients = lambda s: {i.split("/")[2] for i in s.ids}  # noqa: E731
    assert patients(train) and patients(val) and not patients(train) & patients(val)
    assert all(i.split("/")[1] == "train" for i in train.ids + val.ids)
    train_csv = pd.read_csv(root / "train.csv")
    frontal = train_csv[train_csv["Frontal/Lateral"] == "Frontal"]
    assert len(train) + len(val) == len(frontal)
    row = frontal.set_index("Path").loc[train.ids[0]]
    expect = [1.0 if row[f] == 1 or (row[f] == -1 and f in ("Atelectasis", "Edema")) else 0.0 for f in FINDINGS]
    assert train.targets[0].tolist() == expect


def test_chexpert_max_images_takes_whole_patients(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", n_patients=30)
    task = CheXpert(root, image_size=16, max_images=10)
    n = len(task.load("train")) + len(task.load("val"))
    assert 2 <= n <= 10
    full = CheXpert(root, image_size=16)
    assert len(full.load("train")) + len(full.load("val")) > n


def test_chexpert_renamed_root_still_resolves(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", n_patients=6, n_valid=2)
    moved = root.rename(tmp_path / "chexpert_small")
    csv = pd.read_csv(moved / "valid.csv")
    assert len(CheXpert(moved, image_size=16).load("test")) == (csv["Frontal/Lateral"] == "Frontal").sum()


def test_chexpert_missing_column_and_image(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", n_patients=6, n_valid=2)
    df = pd.read_csv(root / "valid.csv").drop(columns=["Edema"])
    df.to_csv(root / "valid.csv", index=False)
    with pytest.raises(DataError, match=r"valid\.csv: csv lacks columns \['Edema'\]"):
        CheXpert(root, 16).load("test")
    first = pd.read_csv(root / "train.csv")["Path"][0]
    (tmp_path / first).unlink()
    with pytest.raises(DataError, match=r"view1_frontal\.jpg: file not found"):
        task = CheXpert(root, 16)
        for split in ("train", "val"):
            task.load(split)
