"""How fast ``tower-bench`` starts: median wall time and peak memory of whole CLI processes.

    python -m benchmark.startup [--runs 5] [--records 10000]

Each command runs as a fresh ``python -m benchmark ...`` process (the console script's entry point),
``--runs`` times after one unmeasured warm-up; ``leaderboard`` reads a generated store of ``--records``
records in a temporary folder. Prints a Markdown table. Numbers depend on the machine and its load:
the header names both.
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

from .store import ResultStore, versions

TASK = "drive"
INITS = ("tower", "simclr", "byol", "moco", "genesis", "con-both", "random", "imagenet")
FRACTIONS = (1.0, 0.5)
TARGETS = {"--help": 1.0, "leaderboard": 2.0}  # seconds (issue 15); the others have none


def write_store(root: Path, n: int, seed: int = 0) -> ResultStore:
    """A store of ``n`` plausible fine-tuning records of one task: every init x fraction, as many seeds as fit.

    Complete records are written plainly, not through ``ResultStore.put``: its two fsyncs and package
    metadata look-ups per record (crash safety and stamps a throw-away store does not need) make 10,000
    records take minutes instead of seconds.
    """
    rng = random.Random(seed)
    store, stamp = ResultStore(root), {"versions": versions(), "created": "2025-01-01T00:00:00+00:00", "host": "bench"}
    cells = [(init, fraction) for init in INITS for fraction in FRACTIONS]
    for i in range(n):
        init, fraction = cells[i % len(cells)]
        base = 70.0 + 2.0 * INITS.index(init) - 5.0 * (1.0 - fraction)
        curve = [base - 10.0 / (e + 1) + rng.gauss(0, 0.3) for e in range(20)]
        rec = dict(
            task=TASK, init=init, seed=i // len(cells), label_fraction=fraction, budget="cpu",
            config={"task": TASK, "init": init, "budget": "cpu"}, config_hash="startup", metric="dice",
            value=base + rng.gauss(0, 1.0), curve=curve, best_epoch=max(range(20), key=curve.__getitem__),
            epochs_run=20, wall_time_s=1.0, **stamp,
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


def table(runs: int, records: int) -> str:
    """Measure every command ``runs`` times and return the Markdown table."""
    with tempfile.TemporaryDirectory(prefix="tower-bench-startup-") as tmp:
        tmp = Path(tmp)
        write_store(tmp / "results", records)
        commands = {
            "--help": ["--help"],
            "tasks": ["tasks"],
            "methods": ["methods"],
            f"leaderboard ({records:,} records)": ["leaderboard", TASK, "--store", str(tmp / "results"),
                                                   "--out", str(tmp / "boards")],
        }
        rows = []
        for name, args in commands.items():
            measure(args, tmp)  # warm-up: file caches, .pyc files
            times, rss = zip(*(measure(args, tmp) for _ in range(runs)))
            target = TARGETS.get(name.split(" ")[0])
            met = target is not None and statistics.median(times) < target
            verdict = "–" if target is None else f"< {target:g} s: {'met' if met else 'NOT met'}"
            rows.append(f"| `tower-bench {name}` | {statistics.median(times):.2f} | {min(times):.2f} | "
                        f"{max(rss):.0f} | {verdict} |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    head = [f"{runs} runs per command after one warm-up, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {load} (1, 5, 15 min)", "",
            "| command | median wall (s) | fastest (s) | peak RSS (MiB) | target |", "|---|---|---|---|---|"]
    return "\n".join(head + rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per command (median reported)")
    parser.add_argument("--records", type=int, default=10_000, help="records in the generated results store")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.records < 1:
        parser.error("--runs and --records must be >= 1")
    print(table(args.runs, args.records))


if __name__ == "__main__":
    main()
