"""How fast ``tower-bench`` starts: median wall time and peak memory of whole CLI processes.

    python -m benchmark.tools.startup [--runs 5] [--records 10000]

Each command runs as a fresh ``python -m benchmark ...`` process (the console script's entry point),
``--runs`` times after one unmeasured warm-up; ``leaderboard`` reads a generated store of ``--records``
records in a temporary folder. One more run of each lists the heavy modules it imported. Prints a
Markdown table. Numbers depend on the machine and its load: the header names both.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.results.store import ResultStore, make_record, versions
from zoo.io import stable_hash

TASK = "drive"
INITS = ("tower", "simclr", "byol", "moco", "genesis", "con-both", "random", "imagenet")
FRACTIONS = (1.0, 0.5)
TARGETS = {"--help": 1.0, "leaderboard": 2.0}  # seconds (issue 15); the others have none
HEAVY = ("torch", "timm", "matplotlib", "pandas", "scipy")  # what a command should import only when it needs it
# Runs the CLI as ``python -m benchmark`` does and writes the names of every module it imported to a file.
_PROBE = """
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["STARTUP_MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["tower-bench", *sys.argv[1:]]
runpy.run_module("benchmark", run_name="__main__", alter_sys=True)
"""


def write_store(root: Path, n: int, seed: int = 0) -> ResultStore:
    """A store of ``n`` plausible fine-tuning records of one task: every init x fraction, as many seeds as fit.

    Records have every field fine-tuning writes today (``make_record`` completes them; per-image scores,
    curves, the trivial rows, pretraining health), so reading them costs what reading real ones does.
    They are written plainly, not through ``ResultStore.put``: its two fsyncs and package metadata look-ups
    per record (crash safety and stamps a throw-away store does not need) make 10,000 records take minutes.
    """
    rng = random.Random(seed)
    stamp = {"versions": versions(), "created": "2025-01-01T00:00:00+00:00", "host": "bench"}
    store = ResultStore(root)
    cells = [(init, fraction) for init in INITS for fraction in FRACTIONS]
    for i in range(n):
        init, fraction = cells[i % len(cells)]
        pretrained = init not in ("random", "imagenet")
        base = 70.0 + 2.0 * INITS.index(init) - 5.0 * (1.0 - fraction)
        curve = [base - 10.0 / (e + 1) + rng.gauss(0, 0.3) for e in range(20)]
        per_image = [base + rng.gauss(0, 3.0) for _ in range(20)]
        config = {"task": TASK, "init": init, "budget": "cpu", "label_fraction": fraction, "data_root": "data/DRIVE",
                  "encoder": "resnet18", "image_size": 64, "epochs": 20, "lr": 0.001,
                  "extra": {"pretrain_hash": f"{init}-hash", "pretrain_seed": 0} if pretrained else {}}
        rec = make_record(  # the config hash leaves the seed out, as fine-tuning's does
            task=TASK, init=init, seed=i // len(cells), label_fraction=fraction, budget="cpu",
            config_hash=stable_hash(config), config={**config, "seed": i // len(cells)},
            metric="dice", value=statistics.fmean(per_image), value_pooled=base, per_image=per_image, curve=curve,
            curve_steps=[25 * (e + 1) for e in range(20)], best_epoch=max(range(20), key=curve.__getitem__),
            best_check=10, best_step=250, val_best=max(curve), epochs_run=20, steps_per_epoch=16, steps_run=320,
            n_train=128, n_test=20, fg_fraction=0.1, wall_time_s=30.0 + rng.random(),
            trivial={"all-background": 0.0, "all-foreground": 22.5},
            input="native-resolution 64-px patches (8 per training/validation image), the 20 full test images",
            pretrain_health={"passed": True, "n": 64, "restoration_mse": 0.01, "retrieval_top1": 0.3}
            if pretrained else None,
            **stamp,
        )
        path = store.path(rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1, sort_keys=True))
    return store


def measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one ``python -m benchmark ARGS`` process; fails loudly on an error."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the maximum over all children
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"python -m benchmark {' '.join(args)} exited {proc.returncode}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # Linux: kilobytes


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Every module a ``python -m benchmark ARGS`` process has imported when it exits; fails loudly on an error."""
    out = Path(cwd) / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "STARTUP_MODULES_OUT": str(out)})
    if proc.returncode:
        raise RuntimeError(f"python -m benchmark {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return set(json.loads(out.read_text()))


def table(runs: int, records: int) -> str:
    """Measure every command ``runs`` times and return the Markdown table."""
    before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="tower-bench-startup-") as tmp:
        tmp = Path(tmp)
        write_store(tmp / "results", records)
        board = ["leaderboard", TASK, "--store", str(tmp / "results"), "--out"]
        commands = {  # name -> the arguments of run i (-1: the warm-up, "probe": the run that lists imports)
            "--help": lambda i: ["--help"],
            "tasks": lambda i: ["tasks"],
            "methods": lambda i: ["methods"],
            # a fresh folder per run: the figure is drawn every time
            f"leaderboard ({records:,} records, first build)": lambda i: [*board, str(tmp / f"boards-{i}")],
            # the same folder: the records are unchanged, so the figure is kept (figure_is_current)
            f"leaderboard ({records:,} records, rebuild)": lambda i: [*board, str(tmp / "boards")],
        }
        rows = []
        for name, run in commands.items():
            measure(run(-1), tmp)  # warm-up: file caches, .pyc files
            times, rss = zip(*(measure(run(i), tmp) for i in range(runs)))
            target = TARGETS.get(name.split(" ")[0])
            met = target is not None and statistics.median(times) < target
            verdict = "–" if target is None else f"< {target:g} s: {'met' if met else 'NOT met'}"
            imported = imported_modules(run("probe"), tmp)
            heavy = ", ".join(m for m in HEAVY if m in imported) or "none"
            rows.append(f"| `tower-bench {name}` | {statistics.median(times):.2f} | {min(times):.2f} | "
                        f"{max(rss):.0f} | {heavy} | {verdict} |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    head = [f"{runs} runs per command after one warm-up, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average (1, 5, 15 min) {before} before, {load} after", "",
            "| command | median wall (s) | fastest (s) | peak RSS (MiB) | heavy modules imported | target |",
            "|---|---|---|---|---|---|"]
    return "\n".join(head + rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.tools.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per command (median reported)")
    parser.add_argument("--records", type=int, default=10_000, help="records in the generated results store")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.records < 1:
        parser.error("--runs and --records must be >= 1")
    print(table(args.runs, args.records))


if __name__ == "__main__":
    main()
