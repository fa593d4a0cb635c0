"""What a sweep covers and where its results go, resolved once at the edge (the CLI, the Python API, a sweep file).

Planning, launching, boards and analyses take these objects whole: names are checked and the budget is sized
when a ``Sweep`` is made, so nothing after it looks a budget up by name or checks a name again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from benchmark.core import registry
from benchmark.core.config import PROTOCOLS, Budget, sized
from benchmark.core.config import budget as get_budget
from benchmark.core.names import check_choice
from benchmark.errors import ConfigError


def _names(spec: str | Sequence[str]) -> str:
    return spec if isinstance(spec, str) else ",".join(spec)


@dataclass(frozen=True)
class Sweep:
    """Inits x tasks x label fractions x seeds at one budget and protocol.

    Each pretrained method is pretrained ``pretrain_seeds`` times; pretraining run k is fine-tuned with seeds
    k*seeds .. k*seeds + seeds - 1, and inits without pretraining get all ``pretrain_seeds * seeds`` seeds, so
    rows pair by seed. With several tasks ``data_root`` is a parent folder with one sub-folder per task.
    """

    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    budget: Budget
    seeds: int = 3
    label_fractions: tuple[float, ...] = (1.0,)
    protocol: str = "finetune"
    pretrain_seeds: int = 1
    data_root: Path | None = None
    imagenet_weights: str | None = None  # a safetensors file for --init imagenet, when timm's are not at hand
    download: bool = False  # fetch missing files of tasks that can (MedMNIST)

    def __post_init__(self) -> None:
        for fraction in self.label_fractions:
            if not 0 < fraction <= 1:
                raise ConfigError(f"--label-fraction must be in (0, 1], got {fraction}")
        if self.seeds < 1 or self.pretrain_seeds < 1:
            raise ConfigError(f"--seeds and --pretrain-seeds must be >= 1, got {self.seeds} and {self.pretrain_seeds}")
        check_choice("protocol", self.protocol, PROTOCOLS)

    @classmethod
    def resolve(cls, methods: str | Sequence[str], tasks: str | Sequence[str], budget: str | Budget = "cpu", *,
                image_size: int | None = None, label_fractions: Sequence[float] = (1.0,),
                data_root: str | Path | None = None, imagenet_weights: str | Path | None = None,
                **fields) -> "Sweep":
        """Check every name (a typo raises with the closest valid one), size the budget, expand ``all``."""
        task_names = registry.check_tasks(_names(tasks))
        for name in task_names:
            registry.task_class(name)  # a manifest path that is gone raises here, naming it
        return cls(
            methods=tuple(registry.check_methods(_names(methods))),
            tasks=tuple(task_names),
            budget=sized(get_budget(budget), image_size),  # records and boards say the size: cpu-28px
            label_fractions=tuple(float(f) for f in label_fractions),
            data_root=None if data_root is None else Path(data_root),
            imagenet_weights=None if imagenet_weights is None else str(imagenet_weights),
            **fields)

    @property
    def task(self) -> str:
        """The one task of an analysis's sweep."""
        if len(self.tasks) != 1:
            raise ConfigError(f"expected one task, got {', '.join(self.tasks)}")
        return self.tasks[0]

    def replace(self, **changes) -> "Sweep":
        return dataclasses.replace(self, **changes)

    def task_root(self, task: str) -> Path | None:
        """With several tasks, ``data_root`` is a parent folder holding one sub-folder per task."""
        if self.data_root is None or len(self.tasks) == 1:
            return self.data_root
        return self.data_root / task if (self.data_root / task).exists() else self.data_root


@dataclass(frozen=True)
class Outputs:
    """Where a sweep's records and boards go and what stamps them: the results store (also the cache a rerun
    reads), the board folder (None: no board), the command line, and whether each job shows its progress."""

    store: Path = Path("runs/results")
    boards: Path | None = None
    command: str = ""
    progress: bool = False
