"""The one place that names every method and task: adding one is one line here plus its file.

tests/contract runs the method and task contracts on every entry (a method at its ``tiny_hparams``, a
task on the data its ``miniature`` writes), so a new entry is tested without touching a test file.

Entries are import strings so that listing names imports nothing heavy.
"""
from __future__ import annotations

import importlib

METHODS: dict[str, str] = {
    "tower": "tower.method:Tower",
    "simclr": "baselines.simclr:SimCLR",
    "byol": "baselines.byol:BYOL",
    "moco": "baselines.moco:MoCo",
    "genesis": "baselines.genesis:ModelGenesis",
}

# Named (method, hyper-parameters) presets: the paper's ablation (Table 2) as ordinary ``--method`` names.
# Their pretraining config hash differs by hparams, so their exports and results never collide.
VARIANTS: dict[str, tuple[str, dict]] = {
    "gen-translation": ("tower", {"contrastive_weight": 0.0, "mask": "none"}),  # generative, translation only
    "gen-mask": ("tower", {"contrastive_weight": 0.0, "translate": False}),  # generative, mask only
    "gen-both": ("tower", {"contrastive_weight": 0.0}),  # generative, translation and mask
    "con-both": ("tower", {"generative_weight": 0.0}),  # contrastive, translation and mask
}

# Every 2D flag of medmnist.INFO -> its class name; benchmark/tasks/medmnist.py makes each class from INFO.
MEDMNIST: dict[str, str] = {
    "pathmnist": "PathMNIST", "chestmnist": "ChestMNIST", "dermamnist": "DermaMNIST", "octmnist": "OCTMNIST",
    "pneumoniamnist": "PneumoniaMNIST", "retinamnist": "RetinaMNIST", "breastmnist": "BreastMNIST",
    "bloodmnist": "BloodMNIST", "tissuemnist": "TissueMNIST", "organamnist": "OrganAMNIST",
    "organcmnist": "OrganCMNIST", "organsmnist": "OrganSMNIST",
}

TASKS: dict[str, str] = {
    "synth-fundus": "benchmark.tasks.synth_fundus:SynthFundus",
    "synth-fundus-grade": "benchmark.tasks.synth_fundus:SynthFundusGrade",
    "drive": "benchmark.tasks.drive:Drive",
    **{flag: f"benchmark.tasks.medmnist:{name}" for flag, name in MEDMNIST.items()},
    "montgomery": "benchmark.tasks.montgomery:Montgomery",
    "shenzhen": "benchmark.tasks.shenzhen:Shenzhen",
    "chexpert": "benchmark.tasks.chexpert:CheXpert",
    "lits": "benchmark.tasks.lits:LiTS",
}


def _load(kind: str, table: dict[str, str], name: str):
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(table))}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)


def method_class(name: str):
    return _load("method", METHODS, name)


def method_spec(name: str) -> tuple[str, dict]:
    """(registered method, hyper-parameters) of a method or a variant name."""
    if name in VARIANTS:
        method, hparams = VARIANTS[name]
        return method, dict(hparams)
    method_class(name)  # raises with the valid names
    return name, {}


def task_class(name: str):
    return _load("task", TASKS, name)


class TaskSizeError(ValueError):
    """A budget would shrink a task below the size at which its targets survive, and it cannot patch."""


def make_task(name: str, data_root=None, image_size: int | None = None, **kwargs):
    """Task ``name`` at a budget's ``image_size`` (None: the task's own), never shrunk below its ``min_size``.

    Below it, a task that supports patches trains on native-resolution patches of that size; any other
    task is refused with the budgets that are large enough. Deterministic in (name, image_size), so a job
    rebuilt elsewhere from its config gets the same inputs.
    """
    cls = task_class(name)
    size = image_size or cls.image_size
    if size >= cls.min_size:
        return cls(data_root, size, **kwargs)
    if cls.supports_patches:
        return cls(data_root, size, patches=True, **kwargs)
    from .config import BUDGETS

    fits = [b.name for b in BUDGETS.values() if (b.image_size or cls.image_size) >= cls.min_size]
    raise TaskSizeError(f"task {name!r} needs inputs of at least {cls.min_size} px (its targets vanish when "
                        f"shrunk further), not {size}; use --budget {' or '.join(fits)}")
