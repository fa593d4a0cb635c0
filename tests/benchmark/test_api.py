"""The Python API: the same sweep as the command line, its board as a DataFrame; committed boards load by name."""
from __future__ import annotations

import pandas as pd
import pytest

from benchmark import api
from benchmark.errors import MissingFileError, UnknownNameError
from tests.reliability.common import cli


@pytest.mark.slow
def test_run_benchmark_returns_the_numbers_the_cli_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    res = cli(capsys, "run", "--method", "tower,random", "--task", "synth-fundus", "--budget", "smoke", "--seeds", "2",
              "--store", "cli-store", "--out", "boards", "--no-progress")
    assert res.code == 0, res.err
    written = pd.read_csv(tmp_path / "boards" / "synth-fundus-smoke.csv")
    board = api.run_benchmark(["tower", "random"], "synth-fundus", budget="smoke", seeds=2, store="api-store")
    assert isinstance(board, pd.DataFrame) and set(board["init"]) == set(written["init"])
    ours, theirs = board.set_index("init"), written.set_index("init")
    for init in ("tower", "random"):
        assert ours.loc[init, "mean"] == pytest.approx(theirs.loc[init, "mean"]) and ours.loc[init, "n"] == 2
    again = api.run_benchmark("tower,random", "synth-fundus", budget="smoke", seeds=2, store="api-store")  # reads back
    assert again["mean"].tolist() == board["mean"].tolist()


def test_load_board_and_bad_names():
    board = api.load_board("drive-cpu-25pct")
    assert {"init", "mean", "std", "counts"} <= set(board.columns) and "tower" in set(board["init"])
    with pytest.raises(MissingFileError, match="no board 'nope'"):
        api.load_board("nope")
    with pytest.raises(UnknownNameError, match="did you mean 'tower'"):
        api.run_benchmark(["towr"], "synth-fundus", budget="smoke")


def test_a_sweep_file_sets_the_fields_and_the_command_line_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "typo.toml").write_text('method = ["tower", "random"]\nseedz = 2\n')
    res = cli(capsys, "run", "--config", "typo.toml")
    assert res.code == 2 and "unknown field 'seedz' (did you mean 'seeds'?)" in res.err and "typo.toml" in res.err
    (tmp_path / "sweep.toml").write_text('method = ["towr"]\nbudget = "smoke"\nlabel-fraction = [1.0, 0.5]\n')
    res = cli(capsys, "run", "--config", "sweep.toml")  # the file's method is read: its typo is named
    assert res.code == 2 and "unknown method 'towr'" in res.err
    res = cli(capsys, "run", "--config", "sweep.toml", "--method", "random", "--budget", "smoky")  # flags win
    assert res.code == 2 and "unknown budget 'smoky'" in res.err
