"""``--task PATH``: a CSV manifest (``manifest.py``) or a data folder (``folders.py``) as a task class."""
from __future__ import annotations

from pathlib import Path

from benchmark.tasks.folders import read_folder
from benchmark.tasks.manifest import OwnOptions, OwnTask, read_csv


def own_task_class(path: Path, options: OwnOptions) -> type[OwnTask]:
    """The task class of a CSV manifest or a data folder."""
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_csv(path, options)
    return read_folder(path, options)
