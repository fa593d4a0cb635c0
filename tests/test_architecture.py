"""The import structure holds: packages import downwards (benchmark -> tower, baselines -> zoo), the layers inside
benchmark/ import downwards, no two modules import each other and typer lives only under benchmark/cli.
Imports inside functions count: a lazy import still ties two
modules together."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.reliability.common import subprocess_env

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "tower", "baselines", "zoo")
FORBIDDEN = {"zoo": {"tower", "baselines", "benchmark"}, "tower": {"benchmark"}, "baselines": {"benchmark"}}
# benchmark/'s layers, lowest first; a module imports only from its own layer or lower ones, and the modules of one
# layer that are listed together are peers that do not import each other (pretraining and fine-tuning).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("benchmark", "benchmark.errors"),
    ("benchmark.tasks",),
    ("benchmark.core",),
    ("benchmark.pretraining", "benchmark.finetuning"),
    ("benchmark.results",),
    ("benchmark.sweep",),
    ("benchmark.analyses",),
    ("benchmark.cli", "benchmark.api"),  # the two edges a user starts from: the command line and the Python API
    ("benchmark.__main__",),
    ("benchmark.tools",),
)
# Results are computed by the loops, never by results code: these stay out of benchmark.results.
LOOPS = ("benchmark.pretraining.loop", "benchmark.finetuning.training", "benchmark.finetuning.protocols")
MAX_TOP_MODULES = 6
README_LAYOUT = "## Layout"  # the README section that lists the folders


def project_modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement loads (``from a import b`` also tries the module ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = ".".join(p for p in (base if node.level else "", node.module or "") if p)
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


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


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if b.split(".")[0] in FORBIDDEN.get(a.split(".")[0], ()))


def _group(module: str) -> str | None:
    """The layer group a benchmark module belongs to: its longest listed prefix."""
    matches = [g for layer in LAYERS for g in layer if module == g or module.startswith(g + ".")]
    return max(matches, key=len) if matches else None


def _level(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def benchmark_layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges inside benchmark/ that climb a layer, join two peers, or bring a loop into results."""
    out = []
    for a, targets in graph.items():
        ga = _group(a)
        if ga is None or not a.startswith("benchmark"):
            continue
        for b in targets:
            gb = _group(b)
            if gb is None or gb == ga:
                continue
            if _level(gb) > _level(ga):
                out.append(f"{a} -> {b} (up: {ga} -> {gb})")
            elif _level(gb) == _level(ga) and gb not in ("benchmark",):
                out.append(f"{a} -> {b} (peers: {ga} -> {gb})")
            elif ga == "benchmark.results" and any(b == loop or b.startswith(loop + ".") for loop in LOOPS):
                out.append(f"{a} -> {b} (results import a loop)")
    return sorted(out)


def test_no_import_cycle_counting_imports_inside_functions():
    graph = full_graph()
    assert "benchmark.pretraining.build" in graph["benchmark.tools.gpu_check"]  # a function-level import is an edge
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_layers_import_only_downwards():
    graph = full_graph()
    assert "zoo" in graph["tower.method"] & graph["baselines.simclr"]  # it sees the downward edges it allows
    assert layer_violations(graph) == []


def test_benchmark_layers_import_only_downwards():
    graph = full_graph()
    assert "benchmark.core.registry" in graph["benchmark.sweep.run"]  # it sees the downward edges it allows
    unplaced = sorted(m for m in graph if m.startswith("benchmark") and _group(m) is None)
    assert unplaced == [], f"benchmark modules in no layer: {unplaced}"
    assert benchmark_layer_violations(graph) == []


def test_benchmark_has_few_top_modules_and_every_subpackage_says_its_concern():
    top = sorted(p.name for p in (REPO / "benchmark").glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    for init in sorted((REPO / "benchmark").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 5, f"{init.relative_to(REPO)} has no docstring saying its concern"


def test_typer_is_imported_only_under_benchmark_cli():
    outside = sorted(name for name, names in imports().items()
                     if not (name == "benchmark.cli" or name.startswith("benchmark.cli."))
                     and any(n.split(".")[0] == "typer" for n in names))
    assert outside == [], f"typer imported outside benchmark/cli: {outside}"


def test_checks_see_function_level_cycles_and_upward_imports(tmp_path):
    """The checks can fail: a cycle closed by a lazy import, lazy upward imports, peers, a loop in results."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for sub in ("core", "cli", "pretraining", "finetuning", "results"):
        (tmp_path / "benchmark" / sub).mkdir()
        (tmp_path / "benchmark" / sub / "__init__.py").write_text("")
    (tmp_path / "benchmark" / "pretraining" / "loop.py").write_text("from benchmark.cli import run\n")
    (tmp_path / "benchmark" / "cli" / "run.py").write_text("def main():\n    from benchmark.pretraining.loop import run\n")
    (tmp_path / "benchmark" / "core" / "config.py").write_text("def f():\n    from benchmark.results import x\n")
    (tmp_path / "benchmark" / "finetuning" / "probe.py").write_text("from benchmark.pretraining import loop\n")
    (tmp_path / "benchmark" / "results" / "board.py").write_text("from benchmark.pretraining import loop\n")
    (tmp_path / "zoo" / "hub.py").write_text("def push():\n    from benchmark.cli import main\n")
    graph = full_graph(tmp_path)
    assert find_cycle(graph) == ["benchmark.cli.run", "benchmark.pretraining.loop", "benchmark.cli.run"]
    assert layer_violations(graph) == ["zoo.hub -> benchmark", "zoo.hub -> benchmark.cli"]
    found = benchmark_layer_violations(graph)
    assert "benchmark.pretraining.loop -> benchmark.cli (up: benchmark.pretraining -> benchmark.cli)" in found
    assert "benchmark.core.config -> benchmark.results (up: benchmark.core -> benchmark.results)" in found
    assert any(v.startswith("benchmark.finetuning.probe -> benchmark.pretraining.loop (peers") for v in found)
    assert "benchmark.results.board -> benchmark.pretraining.loop (results import a loop)" in found


def test_benchmark_cli_imports_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-c", "import benchmark.cli"], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_readme_layout_names_every_package_and_subpackage():
    """The README's Layout table matches the tree: each package and each benchmark/ subpackage is named there."""
    text = (REPO / "README.md").read_text()
    layout = text[text.index(README_LAYOUT):].split("\n## ")[0]
    subpackages = sorted(p.parent.name for p in (REPO / "benchmark").glob("*/__init__.py"))
    missing = [f"{p}/" for p in PACKAGES[1:] if f"`{p}/`" not in layout]
    missing += [f"benchmark/{s}/" for s in subpackages if f"`benchmark/{s}/`" not in layout]
    assert not missing, f"README's layout section lacks {missing}"


MAX_PARAMETERS = 8  # more travel together as one typed object (a Sweep, a Board, a method's Hparams)


def test_no_function_below_the_command_line_takes_more_than_eight_parameters():
    """The command line takes every option a user types; below it, what travels together is one object."""
    too_many = []
    for module, path in project_modules().items():
        if module.startswith("benchmark.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                named = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                if len(named) > MAX_PARAMETERS:
                    too_many.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({len(named)})")
    assert not too_many, "functions with more than 8 parameters: " + ", ".join(too_many)
