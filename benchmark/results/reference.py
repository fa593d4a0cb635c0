"""The paper's reported numbers (TOWER, Chen et al.), as data, to print beside our own results.

Every row and std of Tables 1, 2, 4 and 5 as transcribed in ``shared/PAPER.md`` (a test compares each
cell with that file). Values are (mean, std) in % (AUC for classification, Dice for segmentation);
a cell the paper leaves out ("/") is absent, so ``paper_value`` returns None for it. Row keys use the
paper's names; ``paper_name`` maps our init names.

MoCo: our ``moco`` is MoCo-v2 with classic (SimCLR-style) augmentations, which is the paper's "MoCo"
row of the ablations (Tables 2 and 5). Tables 1 and 4 call the same method "MoCo-v2", so a table
without a "MoCo" row answers with its "MoCo-v2" row (``FALLBACK``).

Stars are the paper's own significance marks, kept apart from the values (``paper_stars``) so that
``str(Reported)`` stays the plain "mean±std" a leaderboard prints.
"""
from __future__ import annotations

from typing import NamedTuple

from benchmark.core.names import SHOWN


class Reported(NamedTuple):
    mean: float
    std: float | None = None

    def __str__(self) -> str:
        return f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f}±{self.std:.2f}"


R = Reported
Rows = dict[str, tuple[Reported | None, ...]]


def _by_task(tasks: tuple[str, ...], rows: Rows) -> dict[str, dict[str, Reported]]:
    """Row-major transcription -> {task: {init: value}}, leaving out the cells the paper does not report."""
    return {task: {init: row[i] for init, row in rows.items() if row[i] is not None} for i, task in enumerate(tasks)}


# Table 1: DRIVE vessel segmentation, Dice (%), 19 initialisations.
TABLE1_DRIVE = {
    "Random": R(78.27, 0.40), "ImageNet": R(79.20, 0.34), "InsDis": R(79.03, 0.34),
    "Model Genesis": R(79.22, 0.30), "CMC": R(79.50, 0.45), "MoCo-v1": R(78.98, 0.45), "PIRL": R(79.24, 0.42),
    "SimCLR-v1": R(79.00, 0.18), "MoCo-v2": R(79.23, 0.19), "SimCLR-v2": R(78.72, 0.37), "SeLa-v2": R(79.65, 0.19),
    "InfoMin": R(79.63, 0.30), "BYOL": R(79.39, 0.22), "DeepCluster-v2": R(79.66, 0.21), "SwAV": R(79.65, 0.14),
    "PCL-v1": R(78.99, 0.21), "PCL-v2": R(79.06, 0.19), "Barlow Twins": R(79.48, 0.16), "TOWER": R(80.38, 0.41),
}

# Table 2: ablation, AUC (%) on the MedMNIST tasks and Dice (%) on DRIVE ("TOWER (all)" in the paper).
# TOWER's DRIVE std is 0.30 here and 0.41 in Table 1, as printed.
TABLE2_ABLATION = _by_task(("retinamnist", "pathmnist", "dermamnist", "drive"), {
    "Random": (R(69.46, 1.90), R(94.61, 0.40), R(87.23, 1.62), R(78.27, 0.40)),
    "ImageNet": (R(71.96, 1.07), R(97.85, 0.45), R(90.55, 0.62), R(79.20, 0.34)),
    "MoCo": (R(69.98, 1.89), R(96.93, 0.66), R(90.04, 0.42), R(79.23, 0.19)),
    "Gen, translation only": (R(71.52, 1.22), R(97.46, 0.57), R(90.49, 0.93), R(79.82, 0.39)),
    "Gen, mask only": (R(71.20, 1.34), R(97.79, 0.54), R(90.13, 0.68), R(79.60, 0.54)),
    "Gen, both": (R(71.91, 1.30), R(97.83, 0.38), R(90.90, 0.47), R(79.94, 1.16)),
    "Con, both": (R(72.61, 0.58), R(98.03, 0.27), R(91.72, 0.95), R(80.31, 0.45)),
    "TOWER": (R(73.01, 0.94), R(98.49, 0.24), R(91.78, 0.30), R(80.38, 0.30)),
})

# Table 4: other tasks; AUC (%) for Shenzhen and CheXpert, Dice (%) for LiTS and Montgomery.
TABLE4_OTHER = _by_task(("shenzhen", "chexpert", "lits", "montgomery"), {
    "Random": (R(89.03, 1.82), R(86.62, 0.46), R(92.75, 0.57), R(97.55, 0.36)),
    "ImageNet": (R(95.62, 0.63), R(87.10, 0.36), R(94.19, 0.18), R(98.19, 0.13)),
    "InsDis": (R(94.81, 0.73), R(87.21, 0.36), R(94.37, 0.13), R(98.25, 0.03)),
    "Model Genesis": (R(95.91, 0.63), R(87.79, 0.47), R(94.24, 0.22), R(98.43, 0.12)),
    "CMC": (R(94.93, 1.18), R(87.46, 0.46), R(94.27, 0.26), R(98.49, 0.11)),
    "MoCo-v1": (R(94.54, 0.42), R(86.98, 0.11), R(93.87, 0.72), R(98.08, 0.14)),
    "PIRL": (R(93.34, 2.72), R(86.79, 0.35), R(94.05, 0.21), R(98.02, 0.11)),
    "SimCLR-v1": (R(94.45, 0.76), R(87.66, 0.14), R(93.54, 0.18), R(98.19, 0.10)),
    "MoCo-v2": (R(95.57, 0.90), R(86.94, 0.20), R(93.88, 0.21), R(97.79, 0.50)),
    "SimCLR-v2": (R(95.29, 0.93), R(86.86, 0.37), R(93.85, 0.17), R(98.16, 0.20)),
    "SeLa-v2": (R(96.23, 0.81), R(87.24, 0.29), R(93.98, 0.21), R(98.28, 0.04)),
    "InfoMin": (R(95.02, 1.40), R(86.67, 0.10), R(94.26, 0.17), R(97.94, 0.16)),
    "BYOL": (R(94.69, 0.78), R(87.09, 0.40), R(93.76, 0.25), R(98.20, 0.08)),
    "DeepCluster-v2": (R(96.09, 0.68), R(87.01, 0.19), R(93.84, 0.25), R(98.24, 0.05)),
    "SwAV": (R(95.72, 0.50), R(87.06, 0.50), R(93.63, 0.31), R(98.28, 0.05)),
    "PCL-v1": (R(95.15, 0.53), R(86.90, 0.25), R(94.55, 0.09), R(98.25, 0.05)),
    "PCL-v2": (R(95.45, 0.62), R(87.27, 0.19), R(93.95, 0.20), R(98.26, 0.06)),
    "Barlow Twins": (R(94.50, 0.88), R(87.25, 0.27), R(93.86, 0.07), R(98.23, 0.05)),
    "CAiD": (None, R(87.44, 0.33), None, R(98.19, 0.08)),
    "DiRA": (None, R(87.59, 0.28), None, R(98.24, 0.09)),
    "TOWER": (R(96.53, 0.50), R(88.89, 0.33), R(94.66, 0.05), R(98.95, 0.08)),
})

# Table 5: ablation on ultrasound and CT, AUC (%).
TABLE5_ABLATION = _by_task(("breastmnist", "organamnist"), {
    "Random": (R(83.42, 2.77), R(98.92, 0.17)),
    "ImageNet": (R(86.48, 2.73), R(99.52, 0.11)),
    "MoCo": (R(87.80, 2.49), R(99.51, 0.06)),
    "Gen, translation only": (R(86.23, 3.65), R(99.49, 0.06)),
    "Gen, mask only": (R(85.58, 2.99), R(99.49, 0.07)),
    "Gen, both": (R(87.25, 1.77), R(99.51, 0.06)),
    "Con, both": (R(88.21, 2.90), R(99.57, 0.06)),
    "TOWER": (R(88.40, 1.04), R(99.60, 0.04)),
})

# Every table by number, as {task: {init: value}}; DRIVE's main table (1) is searched before the ablation (2).
TABLES = {1: {"drive": TABLE1_DRIVE}, 2: TABLE2_ABLATION, 4: TABLE4_OTHER, 5: TABLE5_ABLATION}

# The paper's stars. Table 1: each row vs TOWER (* p<0.005, ** p<0.001, *** p<0.0001). Table 4: on the
# second-best row of a column, i.e. TOWER beats it significantly. Tables 2 and 5 print none.
STARS = {
    1: {"drive": {"Random": "***", "ImageNet": "***", "InsDis": "***", "Model Genesis": "***", "CMC": "**",
                  "MoCo-v1": "***", "PIRL": "***", "SimCLR-v1": "***", "MoCo-v2": "***", "SimCLR-v2": "***",
                  "SeLa-v2": "**", "InfoMin": "**", "BYOL": "***", "DeepCluster-v2": "**", "SwAV": "**",
                  "PCL-v1": "***", "PCL-v2": "***", "Barlow Twins": "***"}},
    4: {"chexpert": {"Model Genesis": "***"}, "montgomery": {"CMC": "***"}, "lits": {"PCL-v1": "*"}},
}

# Fig. 11: % fewer labels TOWER init needs to match random init trained on 100% of the labels.
LABEL_SAVING = {"pathmnist": 99, "breastmnist": 54, "dermamnist": 71, "retinamnist": 70, "organamnist": 92}

# Our init names -> the paper's row names (other paper names are accepted case-insensitively).
INIT_NAMES = {name: shown.paper for name, shown in SHOWN.items() if shown.paper}
# A row name -> the row that stands for it in a table that lacks it (see the module docstring).
FALLBACK = {"MoCo": "MoCo-v2"}


def _tables_for(task: str) -> list[tuple[int, dict[str, Reported]]]:
    """(table number, column) holding ``task``'s numbers, in table order (DRIVE: Table 1 before the ablation)."""
    task = task.lower()
    return [(number, columns[task]) for number, columns in TABLES.items() if task in columns]


def _find(task: str, init: str) -> tuple[int, str, Reported] | None:
    """(table, paper row name, value) of the first table with a row for ``init`` on ``task``."""
    name = paper_name(init)
    names = [n.lower() for n in (name, FALLBACK.get(name)) if n]
    for number, column in _tables_for(task):
        rows = {row.lower(): row for row in column}
        for n in names:
            if n in rows:
                return number, rows[n], column[rows[n]]
    return None


def paper_name(init: str) -> str:
    return INIT_NAMES.get(init.lower(), init)


def paper_value(task: str, init: str) -> Reported | None:
    """(mean, std or None) the paper reports for ``init`` on ``task``, or None if it reports none."""
    found = _find(task, init)
    return None if found is None else found[2]


def paper_stars(task: str, init: str) -> str:
    """The paper's stars on the cell ``paper_value`` returns ("" where it prints none); see ``STARS``."""
    found = _find(task, init)
    if found is None:
        return ""
    number, row, _ = found
    return STARS.get(number, {}).get(task.lower(), {}).get(row, "")
