"""``tower-bench methods`` and ``tasks``: what is registered, laid out so that nothing is cut at 80 columns.

Cells wrap (a word longer than its column folds) and never end in an ellipsis. A task's data source
gets a line of its own, so its link stays whole and clickable in a narrow terminal.
"""
from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from benchmark import registry

console = Console()


def methods_command() -> None:
    """List pretraining methods, what they train, and their default hyper-parameters."""
    table = Table(title="pretraining methods")
    for column in ("method", "trains", "defaults"):
        table.add_column(column, overflow="fold")
    for name in registry.METHODS:
        cls = registry.method_class(name)
        trains = "encoder + decoder" if cls.trains_decoder else "encoder"
        table.add_row(name, trains, ", ".join(f"{k}={v}" for k, v in cls.hparams().items()))
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
