"""The ``tower-bench`` command line: the app, one line per command, and user errors as one line.

A command lives in the module of its group (``info``, ``run``, ``pretrain`` ...) and takes its options
from ``options``; it imports the domain modules (torch, timm, pandas) inside its body, so ``--help``
and listing commands import none of them.
"""
from __future__ import annotations

import sys

import typer

from benchmark.cli import analyse, finetune, info, leaderboard, pretrain, publish, run, speed, views
from benchmark.cli.options import Debug, Version
from benchmark.errors import UserError

app = typer.Typer(
    help="tower-bench: self-supervised pretraining (TOWER and baselines) and downstream benchmarks on biomedical "
         "images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


_debug = False  # set by --debug in the app callback, read by main() once the command has failed


@app.callback()
def _options(version: Version = False, debug: Debug = False) -> None:
    """Options before the command name (``--version``, ``--debug``)."""
    global _debug
    _debug = debug


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


def main() -> None:
    """Entry point: a ``UserError`` (bad input the user can fix) becomes one line on stderr and exit code 2;
    any other exception is a bug and keeps its traceback, and so does a user error under ``--debug``."""
    global _debug
    _debug = False
    try:
        app()
    except UserError as err:
        if _debug:
            raise
        print(f"tower-bench: error: {err}", file=sys.stderr)
        sys.exit(2)
