"""CheXpert (Irvin et al., 2019): five thorax findings, multi-label AUC, frontal views only.

Labels: Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion (the competition five).
Uncertain labels (-1) follow the CheXpert paper's better per-finding policy among the simple ones:
U-Ones (uncertain = 1) for Atelectasis and Edema, U-Zeros (uncertain = 0) for the other three.
Blank = 0. Splits: the official ``valid.csv`` (radiologist consensus, no uncertain labels) is the test
split; validation is 5 % of the training *patients* (fixed seed ``common.SPLIT_SEED``), so no patient
appears in two splits. ``max_images`` caps the training pool (train + val) by taking whole patients in
a fixed random order: the full set is 191k frontal images (~9.6 GB at 224 px in memory). Images are
decoded lazily per split, at reduced JPEG scale, resized to ``image_size`` squared.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from benchmark.tasks.base import Split, Task
from benchmark.tasks.common import SPLIT_SEED, find_root, group_split, layout_error, parallel_map, read_image, to_nchw

FINDINGS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
U_ONES = ("Atelectasis", "Edema")  # the others: U-Zeros
VAL_FRACTION = 0.05
REQUIRED = ("Path", "Frontal/Lateral") + FINDINGS
LABEL_VALUES = (1, 0, -1)  # and blank


class CheXpert(Task):
    name = "chexpert"
    kind = "multilabel"
    modality = "xray"
    metric = "auc"
    in_chans = 1
    num_classes = len(FINDINGS)
    image_size = 224
    description = "CheXpert: 5 thorax findings (frontal views), multi-label AUC"
    source = "https://stanfordmlgroup.github.io/competitions/chexpert/ (CheXpert-v1.0-small)"
    layout = (
        "  train.csv, valid.csv  (columns Path, Sex, Age, Frontal/Lateral, AP/PA, and the 14 findings)\n"
        "  train/patientNNNNN/studyN/viewN_frontal.jpg, valid/...  (Path values are relative to the\n"
        "  folder above --data-root, e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg)"
    )

    @classmethod
    def miniature(cls, root: Path) -> dict:
        # enough patients that the 5% validation carve holds both classes of every finding
        return {"data_root": write_miniature(root / "CheXpert-v1.0-small", n_patients=200), "image_size": 32}

    def __init__(self, data_root=None, image_size=None, seed=0, max_images: int | None = None):
        super().__init__(data_root, image_size, seed)
        self.max_images = max_images

    def _table(self, csv_name: str) -> tuple[Path, pd.DataFrame]:
        import pandas as pd

        root = find_root(self.require_root(), "train.csv", ("CheXpert-v1.0-small", "CheXpert-v1.0"))
        path = root / csv_name
        if not path.is_file():
            raise layout_error(path, "missing file", self)
        try:
            df = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise layout_error(path, f"unreadable csv ({err})", self) from None
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise layout_error(path, f"csv lacks columns {missing}", self)
        for f in FINDINGS:
            values = pd.to_numeric(df[f], errors="coerce")
            bad = (~values.isin(LABEL_VALUES) & df[f].notna()).to_numpy().nonzero()[0]
            if len(bad):
                raise layout_error(path, f"line {bad[0] + 2}, column {f!r}: {df[f].iloc[bad[0]]!r}; expected 1, 0, "
                                         f"-1 (uncertain) or blank ({len(bad)} such rows)", self)
        df = df[df["Frontal/Lateral"] == "Frontal"].reset_index(drop=True)
        if df.empty:
            raise layout_error(path, "no frontal images listed", self)
        return root, df

    @staticmethod
    def labels(df: pd.DataFrame) -> np.ndarray:
        """(N, 5) float32 in {0, 1} after the uncertainty policy; blank = 0."""
        import pandas as pd

        out = np.zeros((len(df), len(FINDINGS)), np.float32)
        for k, f in enumerate(FINDINGS):
            v = pd.to_numeric(df[f], errors="coerce").fillna(0).to_numpy()
            out[:, k] = (v == 1) | ((v == -1) & (f in U_ONES))
        return out

    def _resolve(self, root: Path, rel: str) -> Path:
        """CSV paths start with the original folder name; accept a renamed root too."""
        p = root.parent / rel
        if p.is_file():
            return p
        parts = Path(rel).parts
        alt = root.joinpath(*parts[1:]) if len(parts) > 1 else root / rel
        return alt if alt.is_file() else p

    def _load(self, split: str) -> Split:
        import pandas as pd
        import torch

        root, df = self._table("valid.csv" if split == "test" else "train.csv")
        if split != "test":
            patients = df["Path"].str.extract(r"(patient\d+)", expand=False).fillna(df["Path"]).to_numpy()
            if self.max_images is not None and self.max_images < len(df):
                order = np.random.default_rng(SPLIT_SEED).permutation(np.unique(patients))
                counts = pd.Series(patients).value_counts()
                keep = order[np.cumsum(counts[order].to_numpy()) <= self.max_images]
                if len(keep) < 2:
                    keep = order[:2]
                sel = np.isin(patients, keep)
                df, patients = df[sel].reset_index(drop=True), patients[sel]
            train_idx, val_idx = group_split(patients, (1 - VAL_FRACTION, VAL_FRACTION))
            df = df.iloc[train_idx if split == "train" else val_idx].reset_index(drop=True)
        paths = [self._resolve(root, p) for p in df["Path"]]
        x = parallel_map(lambda p: read_image(p, self, "L", self.image_size), paths)
        return Split(to_nchw(x), torch.from_numpy(self.labels(df)), ids=list(df["Path"]))


# ----------------------------------------------------------------------------- miniature data (contract tests)

CSV_COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
                    "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia",
                    "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]


def write_miniature(root: Path, n_patients: int = 24, n_valid: int = 6, size=(30, 36)) -> Path:
    """CheXpert-v1.0-small: train.csv / valid.csv with Path relative to the root's parent, JPEG views."""
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(5)
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
                    row = {c: "" for c in CSV_COLUMNS}
                    row.update({"Path": rel, "Sex": "Female", "Age": 50, "Frontal/Lateral": fl,
                                "AP/PA": "AP" if fl == "Frontal" else ""})
                    for k, c in enumerate(CSV_COLUMNS[5:]):
                        v = rng.choice([1.0, 0.0, -1.0, np.nan] if part == "train" else [1.0, 0.0])
                        row[c] = v
                    rows[part].append(row)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows["train"], columns=CSV_COLUMNS).to_csv(root / "train.csv", index=False)
    pd.DataFrame(rows["valid"], columns=CSV_COLUMNS).to_csv(root / "valid.csv", index=False)
    return root
