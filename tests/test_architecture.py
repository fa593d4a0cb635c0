"""The package layers hold (benchmark -> tower, baselines -> zoo) and no two modules import each other, counting
imports inside functions too: a lazy import still ties the two modules together."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.benchmark.test_cli import PACKAGES, _imported, find_cycle, project_modules
from tests.reliability.common import subprocess_env

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"zoo": {"tower", "baselines", "benchmark"}, "tower": {"benchmark"}, "baselines": {"benchmark"}}


def imports(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> every dotted name its file imports, anywhere in it (module level, functions, branches)."""
    out = {}
    for name, path in project_modules(root).items():
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update(_imported(node, name, path.name == "__init__.py"))
        out[name] = names
    return out


def full_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere, parent packages included, its own ancestors excluded
    (they are being imported already when it runs)."""
    imported = imports(root)
    graph = {}
    for name, targets in imported.items():
        own = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        prefixes = {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 2)}
        graph[name] = (prefixes & imported.keys()) - own - {name}
    return graph


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if b.split(".")[0] in FORBIDDEN.get(a.split(".")[0], ()))


def test_no_import_cycle_counting_imports_inside_functions():
    graph = full_graph()
    assert "benchmark.build" in graph["benchmark.gpu_check"]  # a function-level import is an edge
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_layers_import_only_downwards():
    graph = full_graph()
    assert "zoo" in graph["tower.method"] & graph["baselines.simclr"]  # it sees the downward edges it allows
    assert layer_violations(graph) == []


def test_typer_is_imported_only_under_benchmark_cli():
    outside = sorted(name for name, names in imports().items()
                     if not (name == "benchmark.cli" or name.startswith("benchmark.cli."))
                     and any(n.split(".")[0] == "typer" for n in names))
    assert outside == [], f"typer imported outside benchmark/cli: {outside}"


def test_checks_see_function_level_cycles_and_upward_imports(tmp_path):
    """The checks can fail: a cycle closed by a lazy import and a lazy upward import are both reported."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "benchmark" / "loop.py").write_text("from . import cli\n")
    (tmp_path / "benchmark" / "cli.py").write_text("def main():\n    from .loop import run\n")
    (tmp_path / "zoo" / "hub.py").write_text("def push():\n    from benchmark.cli import main\n")
    graph = full_graph(tmp_path)
    assert find_cycle(graph) == ["benchmark.cli", "benchmark.loop", "benchmark.cli"]
    assert layer_violations(graph) == ["zoo.hub -> benchmark", "zoo.hub -> benchmark.cli"]


def test_benchmark_cli_imports_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-c", "import benchmark.cli"], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
