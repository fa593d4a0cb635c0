"""The Python API: run a benchmark from a notebook and get its board as a DataFrame, or load a committed board.

    from benchmark import api
    board = api.run_benchmark(["tower", "random"], "synth-fundus", budget="smoke", seeds=2)
    board[["init", "mean", "std", "p", "counts"]]
    api.load_board("synth-fundus-cpu")          # a committed board (leaderboards/) as a DataFrame

The same sweep as ``tower-bench run`` (inline, in this process): pretraining once per method, fine-tuning every
seed, records in the results store (a rerun reads them back), and the board built from the store's records.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards"


def run_benchmark(methods: Sequence[str] | str, task: str, budget: str = "cpu", seeds: int = 3,
                  protocol: str = "finetune", label_fractions: Sequence[float] = (1.0,),
                  data_root: str | Path | None = None, store: str | Path = "runs/results") -> pd.DataFrame:
    """Pretrain ``methods`` (names as ``--method`` takes them, or ``"all"``), fine-tune each init ``seeds`` times on
    ``task`` and return the board: one row per (label fraction, init) plus the trivial and reference rows, with
    the columns of the board's CSV (``mean``, ``std``, ``ci``, ``p``, ``p_holm``, ``mdd``, ``counts`` ...)."""
    from benchmark.results.leaderboard import Board, build_leaderboard
    from benchmark.results.store import ResultStore
    from benchmark.sweep.run import run
    from benchmark.sweep.spec import Outputs, Sweep

    sweep = Sweep.resolve(methods, task, budget, label_fractions=label_fractions, data_root=data_root, seeds=seeds,
                          protocol=protocol)
    command = f"benchmark.api.run_benchmark({list(sweep.methods)!r}, {task!r}, budget={budget!r}, seeds={seeds})"
    run(sweep, Outputs(Path(store), None, command, progress=False))
    records = ResultStore(store).records(sweep.task)
    boards = [build_leaderboard(records, Board(sweep.task, sweep.budget.name, f, protocol))
              for f in sweep.label_fractions]
    return pd.concat(boards, ignore_index=True)


def load_board(name: str, folder: str | Path = COMMITTED) -> pd.DataFrame:
    """A written board (``<name>.csv``: the committed ones by default, or ``runs/leaderboards``) as a DataFrame."""
    from benchmark.errors import MissingFileError

    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        have = sorted(p.stem for p in Path(folder).glob("*.csv"))
        raise MissingFileError(f"no board {name!r} in {folder}; boards there: {', '.join(have) or 'none'}")
    return pd.read_csv(path)
