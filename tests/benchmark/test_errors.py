"""``main()`` tells a user error from a bug: a ``UserError`` is one line and exit code 2, anything else keeps its
traceback, and ``--debug`` shows the traceback of a user error too."""
from __future__ import annotations

import subprocess
import sys

import pytest

from benchmark.errors import (
    BadFileError,
    BatchTooLargeError,
    ConfigError,
    ExistingOutputError,
    MissingFileError,
    NonFiniteLossError,
    NotAFolderError,
    UnknownNameError,
    UserError,
)
from benchmark.tasks.base import DataError
from tests.reliability.common import REPO, assert_one_line_error, cli, cli_subprocess, subprocess_env

SMOKE = ("--budget", "smoke")

@pytest.mark.parametrize("cls, builtin", [
    (ConfigError, ValueError), (BadFileError, ValueError), (UnknownNameError, KeyError),
    (MissingFileError, FileNotFoundError), (NotAFolderError, NotADirectoryError), (BatchTooLargeError, MemoryError),
    (NonFiniteLossError, FloatingPointError), (ExistingOutputError, FileExistsError), (DataError, Exception),
])
def test_each_user_error_is_also_the_builtin_it_replaced(cls, builtin):
    err = cls("bad input")
    assert isinstance(err, UserError) and isinstance(err, builtin)
    assert str(err) == "bad input"  # UnknownNameError too: no KeyError quotes around the message


def test_errors_module_imports_no_torch():
    proc = subprocess.run([sys.executable, "-c", "import sys, benchmark.errors; print('torch' in sys.modules)"],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_a_bug_inside_finetuning_keeps_its_traceback(capsys, tmp_path, monkeypatch):
    """A KeyError from the loss (as a typo in a dict lookup raises) escapes main(), so Python prints its
    traceback; before, main() turned every KeyError into one line."""
    import benchmark.finetuning.training

    def broken_loss(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(benchmark.finetuning.training, "_loss", broken_loss)
    with pytest.raises(KeyError, match="boom") as info:
        cli(capsys, "finetune", *SMOKE, "--task", "synth-fundus", "--store", tmp_path / "store")
    assert not isinstance(info.value, UserError)
    assert info.traceback[-1].name == "broken_loss"  # the traceback leads to the bug, through the loop
    assert any(entry.name == "finetune" and entry.path.name == "protocols.py" for entry in info.traceback)
    assert "tower-bench: error:" not in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_unknown_task_is_one_line_with_exit_code_2(capsys, tmp_path):
    res = cli(capsys, "finetune", *SMOKE, "--task", "bogus", "--store", tmp_path / "store")
    assert_one_line_error(res, "unknown task 'bogus'", "valid: ", "synth-fundus")
    assert res.code == 2
    assert "error: unknown task" in res.err  # the message itself, not KeyError's repr of it (in quotes)


def test_missing_data_folder_is_one_line_with_exit_code_2(capsys, tmp_path):
    missing = tmp_path / "no-such-DRIVE"
    res = cli(capsys, "finetune", *SMOKE, "--task", "drive", "--data-root", missing, "--store", tmp_path / "store")
    assert_one_line_error(res, str(missing), "not found", "--data-root")
    assert res.code == 2


def test_a_typo_in_a_list_option_is_one_line(capsys, tmp_path):
    res = cli(capsys, "analyse", "representations", *SMOKE, "--k", "2,x", "--out", tmp_path / "out")
    assert_one_line_error(res, "'2,x' is not a comma-separated list of int values", "'x'")
    assert res.code == 2 and not (tmp_path / "out").exists()


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    """On the real stderr of the entry point (leaderboard: a command that imports no torch, so this is quick)."""
    store = tmp_path / "no-store"
    res = cli_subprocess("--debug", "leaderboard", "drive", "--store", store, cwd=tmp_path)
    assert res.code == 1, res.err
    assert "Traceback (most recent call last)" in res.err
    assert f"MissingFileError: results store {store} not found" in res.err
    assert "tower-bench: error:" not in res.err
    plain = cli_subprocess("leaderboard", "drive", "--store", store, cwd=tmp_path)  # without --debug: one line
    assert plain.code == 2 and plain.err.strip().splitlines() == [
        f"tower-bench: error: results store {store} not found; run fine-tuning first or pass --store"]


def test_debug_is_forgotten_by_the_next_command(capsys, tmp_path):
    with pytest.raises(UnknownNameError):
        cli(capsys, "--debug", "finetune", *SMOKE, "--task", "bogus")
    res = cli(capsys, "finetune", *SMOKE, "--task", "bogus")
    assert_one_line_error(res, "unknown task 'bogus'")


def test_relaunch_keeps_debug_before_the_command(monkeypatch):
    from benchmark.cli import pretrain

    calls = []
    monkeypatch.setattr(sys, "argv", ["tower-bench", "--debug", "pretrain", "--gpus", "2", "--task", "drive"])
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    with pytest.raises(SystemExit):
        pretrain.relaunch(2)
    (cmd,) = calls
    assert cmd[cmd.index("benchmark"):] == ["benchmark", "--debug", "pretrain", "--task", "drive"]
