"""``tower-bench methods`` and ``tasks``: what is registered, laid out so that nothing is cut at 80 columns.

Cells wrap (a word longer than its column folds) and never end in an ellipsis. A task's data source
gets a line of its own, so its link stays whole and clickable in a narrow terminal. Neither command
imports torch: tasks are listed from their classes' attributes (task modules import torch inside their
functions), methods from their classes' source (``method_summary``).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from benchmark.core import registry

console = Console()


def method_summary(target: str) -> tuple[bool, dict[str, Any]]:
    """(trains_decoder, default hyper-parameters) of a registry target ``module:Class``, read from its source.

    What ``cls.trains_decoder`` and ``cls.hparams()`` give, without importing the module when its source says it
    plainly (method modules import torch and timm: seconds of start-up for a listing): the class's
    ``trains_decoder`` and the literal defaults of its nested ``Hparams``. Anything else (a base class's
    attribute, a computed default) is read from the imported class itself; a test checks every registered
    method against its imported class.
    """
    try:
        return _summary_from_source(target)
    except (ValueError, TypeError, SyntaxError, KeyError, AttributeError):  # not plain literals in the class
        module, name = target.split(":")
        cls = getattr(importlib.import_module(module), name)
        return bool(cls.trains_decoder), cls.hparams()


def _summary_from_source(target: str) -> tuple[bool, dict[str, Any]]:
    module, name = target.split(":")
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # finds the package without running its __init__
    path = Path(spec.submodule_search_locations[0], *rest).with_suffix(".py") if rest else Path(spec.origin)
    cls = next(n for n in ast.parse(path.read_text(), str(path)).body if isinstance(n, ast.ClassDef) and n.name == name)
    assigned = {t.id: stmt.value for stmt in cls.body if isinstance(stmt, ast.Assign)
                for t in stmt.targets if isinstance(t, ast.Name)}
    hparams = next(n for n in cls.body if isinstance(n, ast.ClassDef) and n.name == "Hparams")
    defaults = {stmt.target.id: ast.literal_eval(stmt.value) for stmt in hparams.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)}
    if any(isinstance(stmt, ast.AnnAssign) and stmt.value is None for stmt in hparams.body):
        raise ValueError(f"{target}: a hyper-parameter without a default")
    return bool(ast.literal_eval(assigned["trains_decoder"])), defaults


def methods_command() -> None:
    """List pretraining methods, what they train, and their default hyper-parameters."""
    table = Table(title="pretraining methods")
    for column in ("method", "trains", "defaults"):
        table.add_column(column, overflow="fold")
    for name in registry.METHODS:
        trains_decoder, hparams = method_summary(registry.METHODS[name])
        trains = "encoder + decoder" if trains_decoder else "encoder"
        table.add_row(name, trains, ", ".join(f"{k}={v}" for k, v in hparams.items()))
    for name, (base, hparams) in registry.VARIANTS.items():
        trains = "encoder + decoder" if hparams.get("generative_weight", 1.0) > 0 else "encoder"
        settings = ", ".join(f"{k}={v}" for k, v in hparams.items())
        table.add_row(name, trains, f"ablation variant: {base} with {settings}")
    table.add_row("random", "-", "initialisation only (fine-tuning --init random)")
    table.add_row("imagenet", "-", "initialisation only (timm's ImageNet weights, --init imagenet)")
    console.print(table)


def tasks_command() -> None:
    """List downstream tasks with kind, modality, input size, metric and where to get the data."""
    console.print(Text("downstream tasks: name  kind · modality · input size · metric", style="italic"))
    for name in registry.TASKS:
        t = registry.task_class(name)
        console.print(Text.assemble((name, "bold"), f"  {t.kind} · {t.modality} · {t.image_size} px · {t.metric}"))
        for line in (t.description, f"data: {t.source}"):
            console.print(Padding(Text(line, overflow="fold"), (0, 0, 0, 4), expand=False))
