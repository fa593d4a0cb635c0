"""The ``tower-bench`` command line. Every command is one Typer function registered on ``app``."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from . import registry

app = typer.Typer(
    help="tower-bench: self-supervised pretraining (TOWER and baselines) and downstream benchmarks on biomedical images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


class UserError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


@app.command()
def methods() -> None:
    """List pretraining methods, what they train, and their default hyper-parameters."""
    table = Table("method", "trains", "defaults", title="pretraining methods")
    for name in registry.METHODS:
        cls = registry.method_class(name)
        trains = "encoder + decoder" if cls.trains_decoder else "encoder"
        table.add_row(name, trains, ", ".join(f"{k}={v}" for k, v in cls.hparams().items()))
    for name, (base, hparams) in registry.VARIANTS.items():
        trains = "encoder + decoder" if hparams.get("generative_weight", 1.0) > 0 else "encoder"
        table.add_row(name, trains, f"ablation variant: {base} with " + ", ".join(f"{k}={v}" for k, v in hparams.items()))
    table.add_row("random", "-", "initialisation only (fine-tuning --init random)")
    table.add_row("imagenet", "-", "initialisation only (timm's ImageNet weights, --init imagenet)")
    console.print(table)


@app.command()
def tasks() -> None:
    """List downstream tasks with kind, modality, input size and where to get the data."""
    table = Table("task", "kind", "modality", "size", "metric", "description", "data")
    for name in registry.TASKS:
        t = registry.task_class(name)
        table.add_row(name, t.kind, t.modality, str(t.image_size), t.metric, t.description, t.source)
    console.print(table)


# Commands defined in other modules register here, one line each.
from .run import run_command  # noqa: E402
app.command("run")(run_command)
from .finetune import finetune_command  # noqa: E402
app.command("finetune")(finetune_command)
from .pretrain import pretrain_command  # noqa: E402
app.command("pretrain")(pretrain_command)
from .views import show_views_command  # noqa: E402
app.command("show-views")(show_views_command)
from .speed import speed_command  # noqa: E402
app.command("speed")(speed_command)
from .publish import publish_command  # noqa: E402
app.command("publish")(publish_command)
from .leaderboard import leaderboard_command  # noqa: E402
app.command("leaderboard")(leaderboard_command)
from .analyses import app as analyses_app  # noqa: E402
app.add_typer(analyses_app, name="analyse")


def main() -> None:
    """Entry point: known, fixable errors become one line on stderr instead of a traceback."""
    from .errors import BatchTooLargeError
    from .tasks.base import DataError

    try:
        app()
    except (UserError, DataError, KeyError, ValueError, FileNotFoundError, NotADirectoryError,
            FloatingPointError, BatchTooLargeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"tower-bench: error: {msg}", file=sys.stderr)
        sys.exit(2)
