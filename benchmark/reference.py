"""The paper's reported numbers (TOWER, Chen et al.), as data, to print beside our own results.

Values are (mean, std) in % (AUC for classification, Dice for segmentation); std is None where
the paper gives only a mean. Keys use the paper's names; ``paper_value`` maps our init names.
"""
from __future__ import annotations

from typing import NamedTuple


class Reported(NamedTuple):
    mean: float
    std: float | None = None

    def __str__(self) -> str:
        return f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f}±{self.std:.2f}"


R = Reported

# Table 1: DRIVE vessel segmentation, Dice (%), 19 initialisations.
TABLE1_DRIVE = {
    "Random": R(78.27, 0.40), "ImageNet": R(79.20, 0.34), "InsDis": R(79.03),
    "Model Genesis": R(79.22, 0.30), "CMC": R(79.50), "MoCo-v1": R(78.98, 0.45), "PIRL": R(79.24),
    "SimCLR-v1": R(79.00, 0.18), "MoCo-v2": R(79.23, 0.19), "SimCLR-v2": R(78.72), "SeLa-v2": R(79.65),
    "InfoMin": R(79.63), "BYOL": R(79.39, 0.22), "DeepCluster-v2": R(79.66, 0.21), "SwAV": R(79.65),
    "PCL-v1": R(78.99), "PCL-v2": R(79.06), "Barlow Twins": R(79.48), "TOWER": R(80.38, 0.41),
}

# Table 2: ablation, AUC (%) on the MedMNIST tasks and Dice (%) on DRIVE.
_T2_TASKS = ("retinamnist", "pathmnist", "dermamnist", "drive")
_T2_ROWS = {
    "Random": (R(69.46, 1.90), R(94.61, 0.40), R(87.23, 1.62), R(78.27, 0.40)),
    "ImageNet": (R(71.96, 1.07), R(97.85, 0.45), R(90.55, 0.62), R(79.20, 0.34)),
    "MoCo-v2": (R(69.98, 1.89), R(96.93, 0.66), R(90.04, 0.42), R(79.23, 0.19)),
    "Gen, translation only": (R(71.52, 1.22), R(97.46, 0.57), R(90.49, 0.93), R(79.82, 0.39)),
    "Gen, mask only": (R(71.20, 1.34), R(97.79, 0.54), R(90.13, 0.68), R(79.60, 0.54)),
    "Gen, both": (R(71.91, 1.30), R(97.83, 0.38), R(90.90, 0.47), R(79.94, 1.16)),
    "Con, both": (R(72.61, 0.58), R(98.03, 0.27), R(91.72, 0.95), R(80.31, 0.45)),
    "TOWER": (R(73.01, 0.94), R(98.49, 0.24), R(91.78, 0.30), R(80.38, 0.30)),
}
TABLE2_ABLATION = {task: {init: row[i] for init, row in _T2_ROWS.items()} for i, task in enumerate(_T2_TASKS)}

# Tables 4/5: other tasks, TOWER (mean±std) and ImageNet init (mean only).
_T45_TASKS = ("shenzhen", "chexpert", "lits", "montgomery", "breastmnist", "organamnist")
_T45_TOWER = (R(96.53, 0.50), R(88.89, 0.33), R(94.66, 0.05), R(98.95, 0.08), R(88.40, 1.04), R(99.60, 0.04))
_T45_IMAGENET = (R(95.62), R(87.10), R(94.19), R(98.19), R(86.48), R(99.52))
TABLE45_OTHER = {t: {"TOWER": tw, "ImageNet": im} for t, tw, im in zip(_T45_TASKS, _T45_TOWER, _T45_IMAGENET)}

# Fig. 11: % fewer labels TOWER init needs to match random init trained on 100% of the labels.
LABEL_SAVING = {"pathmnist": 99, "breastmnist": 54, "dermamnist": 71, "retinamnist": 70, "organamnist": 92}

# Our init names -> the paper's row names (other paper names are accepted case-insensitively).
INIT_NAMES = {
    "tower": "TOWER", "random": "Random", "imagenet": "ImageNet", "simclr": "SimCLR-v1",
    "moco": "MoCo-v2", "byol": "BYOL", "genesis": "Model Genesis",
    "gen-translation": "Gen, translation only", "gen-mask": "Gen, mask only",
    "gen-both": "Gen, both", "con-both": "Con, both",
}


def _tables_for(task: str) -> list[dict[str, Reported]]:
    """Where ``task``'s numbers are, main table first (DRIVE: Table 1 before the ablation)."""
    task = task.lower()
    tables = [TABLE1_DRIVE] if task == "drive" else []
    for source in (TABLE2_ABLATION, TABLE45_OTHER):
        if task in source:
            tables.append(source[task])
    return tables


def paper_name(init: str) -> str:
    return INIT_NAMES.get(init.lower(), init)


def paper_value(task: str, init: str) -> Reported | None:
    """(mean, std or None) the paper reports for ``init`` on ``task``, or None if it reports none."""
    name = paper_name(init).lower()
    for table in _tables_for(task):
        for row, value in table.items():
            if row.lower() == name:
                return value
    return None
