"""Miniature data sets in each source's exact official file layout (tiny images, written on the fly)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CHEXPERT_COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
                    "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia",
                    "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_drive(root: Path, n_train: int = 5, n_test: int = 3, size=(26, 24)) -> Path:
    """DRIVE: NN_training.tif / NN_manual1.gif / NN_training_mask.gif (training ids 21.., test ids 01..)."""
    rng = _rng(1)
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


def write_medmnist(root: Path, flag: str, counts=(12, 4, 6), size: int = 28, n_classes: int | None = None,
                   channels: int | None = None) -> Path:
    """MedMNIST npz: {split}_images uint8 (N,H,W) or (N,H,W,3), {split}_labels (N,1) ids or (N,K) 0/1 (multi-label).

    ``counts=None``: every class in every split, as the real sets have (AUC needs them all).
    """
    from benchmark.tasks.medmnist import INFO, KINDS, file_name

    info = INFO[flag]
    k = n_classes or len(info["label"])
    counts = counts or (2 * k + 2, k, k + 1)
    c = channels or info["n_channels"]
    rng = _rng(2)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, size, size) if c == 1 else (n, size, size, 3)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        if KINDS[info["task"]] == "multilabel":  # each label both present and absent in every split
            arrays[f"{split}_labels"] = ((np.arange(n)[:, None] + np.arange(k)) % 2).astype(np.uint8)
        else:
            arrays[f"{split}_labels"] = (np.arange(n) % k).astype(np.uint8)[:, None]
    root.mkdir(parents=True, exist_ok=True)
    path = root / file_name(flag, size)
    np.savez_compressed(path, **arrays)
    return path


def write_montgomery(root: Path, n: int = 10, size=(40, 48)) -> Path:
    """Montgomery: CXR_png/MCUCXR_NNNN_{0|1}.png + ManualMask/{left,right}Mask/ same names."""
    rng = _rng(3)
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


def write_shenzhen(root: Path, n: int = 20, size=(36, 40)) -> Path:
    """Shenzhen: CXR_png/CHNCXR_NNNN_{0|1}.png, label = last digit (some files RGB, as in the real set)."""
    rng = _rng(4)
    (root / "CXR_png").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        mode_rgb = i % 5 == 0
        arr = rng.integers(0, 256, (size[1], size[0], 3) if mode_rgb else (size[1], size[0]), dtype=np.uint8)
        Image.fromarray(arr).save(root / "CXR_png" / f"CHNCXR_{i + 1:04d}_{int(i % 3 == 0)}.png")
    (root / "CXR_png" / "Thumbs.db").write_bytes(b"\0" * 10)
    return root


def write_chexpert(root: Path, n_patients: int = 24, n_valid: int = 6, size=(30, 36)) -> Path:
    """CheXpert-v1.0-small: train.csv / valid.csv with Path relative to the root's parent, JPEG views."""
    import pandas as pd

    rng = _rng(5)
    rows = {"train": [], "valid": []}
    for part, count in (("train", n_patients), ("valid", n_valid)):
        for p in range(count):
            pid = p + 1 if part == "train" else 64541 + p
            for study in (1, 2) if p % 3 == 0 else (1,):
                for view, fl in (("view1_frontal", "Frontal"), ("view2_lateral", "Lateral")):
                    if fl == "Lateral" and p % 2:
                        continue
                    rel = f"{root.name}/{part}/patient{pid:05d}/study{study}/{view}.jpg"
                    path = root.parent / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)).save(path, quality=90)
                    row = {c: "" for c in CHEXPERT_COLUMNS}
                    row.update({"Path": rel, "Sex": "Female", "Age": 50, "Frontal/Lateral": fl,
                                "AP/PA": "AP" if fl == "Frontal" else ""})
                    for k, c in enumerate(CHEXPERT_COLUMNS[5:]):
                        v = rng.choice([1.0, 0.0, -1.0, np.nan] if part == "train" else [1.0, 0.0])
                        row[c] = v
                    rows[part].append(row)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows["train"], columns=CHEXPERT_COLUMNS).to_csv(root / "train.csv", index=False)
    pd.DataFrame(rows["valid"], columns=CHEXPERT_COLUMNS).to_csv(root / "valid.csv", index=False)
    return root


def lits_volume(i: int, shape=(20, 18, 12)) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like int16 volume (air/soft tissue) with a liver block in the middle slices (labels 1, 2)."""
    rng = _rng(100 + i)
    ct = rng.integers(-1000, 400, shape).astype(np.int16)
    seg = np.zeros(shape, np.uint8)
    seg[4:14, 3:12, 4:8] = 1
    seg[6:8, 5:7, 5:6] = 2  # tumour counts as liver
    return ct, seg


def write_lits(root: Path, n: int = 6, gz_every: int = 2) -> Path:
    """LiTS: volume-N.nii[.gz] / segmentation-N.nii[.gz], spread over two 'Training Batch' folders."""
    import nibabel as nib

    affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # LPS-stored like many LiTS volumes
    for i in range(n):
        folder = root / ("Training Batch 1" if i < n // 2 else "Training Batch 2")
        folder.mkdir(parents=True, exist_ok=True)
        ext = ".nii.gz" if i % gz_every == 0 else ".nii"
        ct, seg = lits_volume(i)
        nib.save(nib.Nifti1Image(ct, affine), folder / f"volume-{i}{ext}")
        nib.save(nib.Nifti1Image(seg, affine), folder / f"segmentation-{i}{ext}")
    return root


def build(name: str, tmp: Path) -> dict:
    """Write the miniature data of registered task ``name`` under ``tmp``; returns the task's kwargs."""
    if name.startswith("synth-fundus"):
        return {}
    if name == "drive":
        return {"data_root": write_drive(tmp / "DRIVE"), "image_size": 32}
    if name.endswith("mnist"):
        write_medmnist(tmp / "medmnist", name, counts=None)
        return {"data_root": tmp / "medmnist"}
    if name == "montgomery":
        return {"data_root": write_montgomery(tmp / "MontgomerySet"), "image_size": 32}
    if name == "shenzhen":
        return {"data_root": write_shenzhen(tmp / "ChinaSet_AllFiles"), "image_size": 32}
    if name == "chexpert":
        return {"data_root": write_chexpert(tmp / "CheXpert-v1.0-small"), "image_size": 32}
    if name == "lits":
        return {"data_root": write_lits(tmp / "LiTS"), "image_size": 16}
    raise KeyError(f"no miniature fixture for task {name!r}: add one to tests/benchmark/tasks/fixtures.py")
