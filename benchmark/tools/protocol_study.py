"""Fine-tuning protocol experiments: the same inits and seeds under the budget's protocol and under changed fields.

    python -m benchmark.tools.protocol_study --task synth-fundus --inits random,supervised --seeds 0-4 \\
        [--set min_steps=1000 --set plateau_share=0.25 ...] [--exports DIR] [--data-root DIR] [--label-fraction F]
        [--rescale-to-init]

Each run is one ``finetune`` (no store): a Markdown row per run with the test score, the predicted foreground
share, where validation peaked, how long it ran and whether it converged, then the mean and std per init. Used
for the README's protocol measurements (seed collapse, convergence, TOWER's slower start); it changes nothing on
disk. ``--exports`` maps a method name to an export folder (``runs/pretrain/<method>-...``) found under DIR.

``--rescale-to-init`` tests the weight-norm hypothesis for a pretrained init's slow start: pretrained conv weights
are several times the norm of a fresh init, and under BatchNorm a conv's output does not depend on its weight's
scale while Adam's step does not either, so the *relative* step is that many times smaller. Every conv followed
by a BatchNorm is scaled to the norm of the same layer of random init (and the BatchNorm's running statistics
with it): the function is unchanged, only the step size relative to the weights is random init's.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def conv_bn_pairs(net: torch.nn.Module) -> list[tuple[str, torch.nn.Conv2d, torch.nn.BatchNorm2d]]:
    """Each conv whose output a BatchNorm normalises: the next BatchNorm in registration order, same channels."""
    pairs, conv = [], None
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            conv = (name, m)
        elif isinstance(m, torch.nn.BatchNorm2d) and conv is not None and conv[1].out_channels == m.num_features:
            pairs.append((*conv, m))
            conv = None
    return pairs


def rescale_to(net: torch.nn.Module, reference: torch.nn.Module) -> list[float]:
    """Scale each BatchNorm-followed conv of ``net`` to the norm of ``reference``'s; returns the factors."""
    ref = dict(reference.named_modules())
    factors = []
    with torch.no_grad():
        for name, conv, bn in conv_bn_pairs(net):
            factor = (ref[name].weight.norm() / conv.weight.norm()).item()
            conv.weight.mul_(factor)
            bn.running_mean.mul_(factor)
            bn.running_var.mul_(factor ** 2)
            factors.append(factor)
    return factors


def rescaling(build_model):
    """``build_model`` that rescales the init to random init's norms under the same seed (built first, so the
    RNG after building is what it is without rescaling)."""
    def build(cfg, task, prior=None):
        fresh = build_model(dataclasses.replace(cfg, init="random", init_decoder=None), task, prior)
        model = build_model(cfg, task, prior)
        factors = rescale_to(model, fresh)
        print(f"rescaled {len(factors)} convs by {min(factors):.2f}-{max(factors):.2f} "
              f"(median {statistics.median(factors):.2f})", flush=True)
        return model
    return build


def seeds_of(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in spec.split(",")]


def main(argv: list[str] | None = None) -> None:
    from benchmark.core import registry
    from benchmark.core.config import FinetuneConfig
    from benchmark.core.config import budget as get_budget
    from benchmark.finetuning import protocols
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
    ap.add_argument("--rescale-to-init", action="store_true", help="conv weights at random init's norms (see above)")
    args = ap.parse_args(argv)
    if args.rescale_to_init:
        protocols.build_model = rescaling(protocols.build_model)
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
