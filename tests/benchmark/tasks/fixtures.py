"""Miniature data sets in each source's exact official file layout (tiny images, written on the fly).

Each task module writes its own (``Task.miniature``, next to the reader it feeds); the names here are
the writers under the names the reader tests use.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.core import registry
from benchmark.tasks.chexpert import write_miniature as write_chexpert
from benchmark.tasks.drive import write_miniature as write_drive
from benchmark.tasks.lits import miniature_volume as lits_volume
from benchmark.tasks.lits import write_miniature as write_lits
from benchmark.tasks.medmnist import write_miniature as write_medmnist
from benchmark.tasks.montgomery import write_miniature as write_montgomery
from benchmark.tasks.shenzhen import write_miniature as write_shenzhen

__all__ = ["build", "lits_volume", "write_chexpert", "write_drive", "write_lits", "write_medmnist", "write_montgomery",
           "write_shenzhen"]


def build(name: str, tmp: Path) -> dict:
    """Write the miniature data of registered task ``name`` under ``tmp``; returns the task's kwargs."""
    return registry.task_class(name).miniature(tmp)
