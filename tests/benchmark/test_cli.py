"""The CLI at the edge: no import cycle, typer only in benchmark/cli, a --help that imports no torch, tables
that wrap instead of cutting names and links."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from benchmark import registry
from tests.reliability.common import cli, subprocess_env

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("benchmark", "tower", "baselines", "zoo")


def project_modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _module_level(nodes: list[ast.stmt]):
    """Statements that run on import: not function bodies, not ``if TYPE_CHECKING:`` blocks."""
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from _module_level(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _module_level(getattr(node, field, []))


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement loads (``from a import b`` also tries the module ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = ".".join(p for p in (base if node.level else "", node.module or "") if p)
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> project modules its module-level imports load, parent packages included
    (except its own ancestors, which are already being imported when it runs)."""
    modules = project_modules(root)
    graph = {}
    for name, path in modules.items():
        own = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        edges = set()
        for node in _module_level(ast.parse(path.read_text()).body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, name, path.name == "__init__.py"):
                    parts = target.split(".")
                    edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
        graph[name] = edges - own - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_project_modules():
    import benchmark.cli  # noqa: F401  (the package imports cleanly, as the graph says)

    graph = import_graph()
    assert "benchmark.cli.run" in graph["benchmark.cli"] and "zoo" in graph["benchmark.leaderboard"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_a_main_block_import(tmp_path):
    """The cycle this package once had: a module whose ``__main__`` block imports the CLI that imports it."""
    (tmp_path / "benchmark" / "cli").mkdir(parents=True)
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
    (tmp_path / "benchmark" / "__init__.py").write_text("")
    (tmp_path / "benchmark" / "cli" / "__init__.py").write_text("from ..pretrain import loop\n")
    (tmp_path / "benchmark" / "pretrain.py").write_text(
        "def loop():\n    from .cli import main\n\nif __name__ == '__main__':\n    from .cli import main\n")
    assert find_cycle(import_graph(tmp_path)) == ["benchmark.cli", "benchmark.pretrain", "benchmark.cli"]
    (tmp_path / "benchmark" / "pretrain.py").write_text("def loop():\n    from .cli import main\n")
    assert find_cycle(import_graph(tmp_path)) is None  # an import inside a function does not count


def test_typer_is_imported_only_by_the_cli():
    outside = []
    for name, path in project_modules().items():
        if name == "benchmark.cli" or name.startswith("benchmark.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):  # anywhere, functions included
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            outside += [f"{path.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == "typer"]
    assert not outside, f"typer imported outside benchmark/cli: {outside}"


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
    from benchmark.startup import write_store

    write_store(tmp_path / "results", 40)
    loaded = _loaded_by("leaderboard", "drive", "--store", str(tmp_path / "results"), "--out", str(tmp_path / "lb"))
    assert (tmp_path / "lb" / "drive.png").is_file()  # it did build the board (pandas, scipy, matplotlib) ...
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
