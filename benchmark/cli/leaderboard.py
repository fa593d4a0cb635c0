"""``tower-bench leaderboard``: a task's board rebuilt from the results store (pandas and scipy, no torch)."""
from __future__ import annotations

import os

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
    """Build a task's leaderboard from the results store: Markdown + CSV + PNG, printed as a table. A board whose
    records and options have not changed since it was written is shown as written, without reading them."""
    from benchmark.results.board import Board, board_settings, unchanged

    task = resolve_tasks(task, modality, num_classes, split_seed)
    board = Board(task, budget, label_fraction, protocol)
    written = unchanged(board, store, board_settings(out, reference=reference, holm=holm, name=name, command=None))
    if written is not None:
        markdown = next(p for p in written if p.suffix == ".md").read_text()
        print("\n".join(line for line in markdown.splitlines() if not line.startswith(("# ", "- **"))).strip())
        print("unchanged since it was written (same records, same options): "
              + ", ".join(os.path.relpath(p) for p in written))
        return
    from benchmark.results.leaderboard import refresh_leaderboard
    from benchmark.results.report.terminal import show

    show(refresh_leaderboard(board, store, out, reference=reference, holm=holm, name=name))
