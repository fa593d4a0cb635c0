"""Fine-tuning protocol experiments: the same inits and seeds under the budget's protocol and under changed fields.

    python -m benchmark.tools.protocol_study --task synth-fundus --inits random,supervised --seeds 0-4 \\
        [--set min_steps=1000 --set plateau_share=0.25 ...] [--exports DIR] [--data-root DIR] [--label-fraction F]

Each run is one ``finetune`` (no store): a Markdown row per run with the test score, the predicted foreground
share, where validation peaked, how long it ran and whether it converged, then the mean and std per init. Used
for the README's protocol measurements (seed collapse, convergence, TOWER's slower start); it changes nothing on
disk. ``--exports`` maps a method name to an export folder (``runs/pretrain/<method>-...``) found under DIR.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def find_export(root: Path, method: str, task: str) -> str:
    found = sorted(root.glob(f"{method}-{task}-*/export/config.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no export of {method!r} on {task!r} under {root}")
    return str(found[-1].parent)


def seeds_of(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in spec.split(",")]


def main(argv: list[str] | None = None) -> None:
    from benchmark.core import registry
    from benchmark.core.config import FinetuneConfig
    from benchmark.core.config import budget as get_budget
    from benchmark.finetuning.protocols import finetune

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="synth-fundus")
    ap.add_argument("--budget", default="cpu")
    ap.add_argument("--inits", default="random")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--label-fraction", type=float, default=1.0)
    ap.add_argument("--set", action="append", default=[], help="FinetuneConfig field=value (JSON value)")
    ap.add_argument("--exports", type=Path, default=Path("runs/pretrain"))
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    b = get_budget(args.budget)
    task = registry.make_task(args.task, args.data_root, b.image_size)
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {k: parse_value(v) for k, v in overrides.items()}
    print(f"task {args.task}, budget {b.name}, label fraction {args.label_fraction}, overrides {overrides}")
    print("| init | seed | test | fg share | best step | steps | converged | validation checks | s |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    scores: dict[str, list[float]] = {}
    for name in args.inits.split(","):
        init = name if name in ("random", "random-aa", "imagenet") else find_export(args.exports, name, args.task)
        for seed in seeds_of(args.seeds):
            cfg = FinetuneConfig.from_budget(b, task, args.task, init=init, seed=seed, label_fraction=args.label_fraction,
                                             data_root=args.data_root, **overrides)
            t0 = time.perf_counter()
            r = finetune(cfg, task, progress=False)
            last = " ".join(f"{v:.0f}" for v in r.get("curve", []))
            print(f"| {name} | {seed} | {r['value']:.2f} | {r.get('fg_fraction', float('nan')):.3f} | "
                  f"{r.get('best_step', '-')} | {r.get('steps_run', '-')} | {r.get('converged', '-')} | {last} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)
            scores.setdefault(name, []).append(r["value"])
    for name, v in scores.items():
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        print(f"{name}: {statistics.mean(v):.2f} ± {sd:.2f} (n={len(v)})")


if __name__ == "__main__":
    main()
