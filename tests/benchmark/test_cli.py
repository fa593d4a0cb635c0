"""The CLI at the edge: a --help that imports no torch, tables that wrap instead of cutting names and links.
(The import rules, typer only in benchmark/cli included, are tests/test_architecture.py.)"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.core import registry
from tests.reliability.common import cli, subprocess_env

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "timm", "matplotlib", "pandas", "scipy")
RUNNER = """
import sys
from benchmark.cli import main
sys.argv = ["tower-bench", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded_by(*args: str) -> set[str]:
    """Which heavy libraries a ``tower-bench ARGS`` process imported, run in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(heavy=HEAVY), *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines()[-1].split()[1:])


def test_help_imports_no_heavy_library():
    assert _loaded_by("--help") == set()
    assert _loaded_by("leaderboard", "--help") == set()


def test_leaderboard_imports_no_torch(tmp_path):
    from benchmark.tools.startup import write_store

    write_store(tmp_path / "results", 40)
    loaded = _loaded_by("leaderboard", "drive", "--store", str(tmp_path / "results"), "--out", str(tmp_path / "lb"))
    assert list((tmp_path / "lb").glob("drive-*.png"))  # it did build the board (pandas, scipy, matplotlib) ...
    assert "torch" not in loaded and "timm" not in loaded  # ... without the deep-learning stack


def test_version(capsys):
    from zoo.io import package_version

    res = cli(capsys, "--version")
    assert res.code == 0 and res.out.strip() == f"tower-bench {package_version()}"


def test_every_command_option_has_help():
    import typer.main

    from benchmark.cli import app

    def commands(group, prefix=""):
        for name, cmd in group.commands.items():
            yield from commands(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else [(prefix + name, cmd)]

    missing = [f"{name} {p.name}" for name, cmd in commands(typer.main.get_command(app)) for p in cmd.params
               if not getattr(p, "help", None) and p.name != "help"]
    assert not missing, f"options without help: {missing}"


def test_one_default_budget():
    import typer.main

    from benchmark.cli import app

    group = typer.main.get_command(app)
    defaults = {name: next(p.default for p in cmd.params if p.name == "budget")
                for name, cmd in [*group.commands.items(), *group.commands["analyse"].commands.items()]
                if name != "leaderboard" and any(p.name == "budget" for p in getattr(cmd, "params", []))}
    assert len(defaults) >= 8 and set(defaults.values()) == {"cpu"}, defaults


def _render(monkeypatch, command, width: int = 80) -> str:
    """What ``command`` prints on a terminal ``width`` columns wide."""
    from benchmark.cli import info

    console = Console(width=width, record=True)
    monkeypatch.setattr(info, "console", console)
    command()
    return console.export_text()


def test_tasks_at_80_columns_show_every_name_and_link_whole(monkeypatch):
    from benchmark.cli import info

    text = _render(monkeypatch, info.tasks_command)
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for name in registry.TASKS:
        cls = registry.task_class(name)
        assert re.search(rf"^{re.escape(name)}  {cls.kind}", text, re.M), name
        for url in re.findall(r"https?://\S+", cls.source):
            assert url in text, url


def test_methods_at_80_columns_show_every_name_whole(monkeypatch):
    from benchmark.cli import info

    text = _render(monkeypatch, info.methods_command)
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for name in [*registry.METHODS, *registry.VARIANTS]:
        assert re.search(rf"│ {re.escape(name)} +│", text), name


def test_relaunch_runs_the_cli_under_torchrun(monkeypatch):
    from benchmark.cli import pretrain

    calls = []
    monkeypatch.setattr(sys, "argv", ["tower-bench", "pretrain", "--gpus", "4", "--task", "drive", "--gpus=2"])
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    with pytest.raises(SystemExit):
        pretrain.relaunch(4)
    (cmd,) = calls
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4",
                       "-m", "benchmark", "pretrain", "--task", "drive"]
