"""The ``tower-bench`` command line: the app, one line per command, and the one-line error handling.

A command lives in the module of its group (``info``, ``run``, ``pretrain`` ...) and takes its options
from ``options``; it imports the domain modules (torch, timm, pandas) inside its body, so ``--help``
and listing commands import none of them.
"""
from __future__ import annotations

import sys

import typer

from . import analyse, finetune, info, leaderboard, pretrain, publish, run, speed, views
from .options import Version

app = typer.Typer(
    help="tower-bench: self-supervised pretraining (TOWER and baselines) and downstream benchmarks on biomedical "
         "images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class UserError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


@app.callback()
def _options(version: Version = False) -> None:
    """Options before the command name (``--version``)."""


app.command("methods")(info.methods_command)
app.command("tasks")(info.tasks_command)
app.command("run")(run.run_command)
app.command("finetune")(finetune.finetune_command)
app.command("pretrain")(pretrain.pretrain_command)
app.command("show-views")(views.show_views_command)
app.command("speed")(speed.speed_command)
app.command("publish")(publish.publish_command)
app.command("leaderboard")(leaderboard.leaderboard_command)
app.add_typer(analyse.app, name="analyse")


def _one_line_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ``main`` prints as one line.

    ``DataError`` and ``BatchTooLargeError`` are defined in modules that import torch. When such a module
    is not loaded nothing can have raised its error, so it is only looked up, never imported, here.
    """
    loaded = tuple(getattr(sys.modules[module], name) for module, name in
                   (("benchmark.tasks.base", "DataError"), ("benchmark.errors", "BatchTooLargeError"))
                   if module in sys.modules)
    return (UserError, KeyError, ValueError, FileNotFoundError, NotADirectoryError, FloatingPointError, *loaded)


def main() -> None:
    """Entry point: known, fixable errors become one line on stderr instead of a traceback."""
    try:
        app()
    except Exception as err:
        if not isinstance(err, _one_line_errors()):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"tower-bench: error: {msg}", file=sys.stderr)
        sys.exit(2)
