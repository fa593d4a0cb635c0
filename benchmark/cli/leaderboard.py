"""``tower-bench leaderboard``: a task's board rebuilt from the results store (pandas and scipy, no torch)."""
from __future__ import annotations

from benchmark.cli.options import (
    DEFAULT_BOARDS,
    DEFAULT_STORE,
    BoardName,
    Boards,
    BoardTask,
    BudgetFilter,
    Holm,
    LabelFraction,
    Modality,
    NumClasses,
    Protocol,
    Reference,
    SplitSeed,
    Store,
    resolve_tasks,
)


def leaderboard_command(
    task: BoardTask,
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    reference: Reference = "tower",
    holm: Holm = True,
    budget: BudgetFilter = None,
    label_fraction: LabelFraction = 1.0,
    name: BoardName = None,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    protocol: Protocol = "finetune",
) -> None:
    """Build a task's leaderboard from the results store: Markdown + CSV + PNG, printed as a table."""
    from benchmark.results.leaderboard import Board, refresh_leaderboard
    from benchmark.results.report.terminal import show

    task = resolve_tasks(task, modality, num_classes, split_seed)
    show(refresh_leaderboard(Board(task, budget, label_fraction, protocol), store, out, reference=reference, holm=holm,
                             name=name))
