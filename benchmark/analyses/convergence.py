"""Convergence (paper Fig. 6/7): how fast each init's fine-tuning reaches its best validation score.

Every fine-tuning record carries its per-epoch validation ``curve`` and ``best_epoch``. Runs stop
early at different epochs; after its stop a run counts with its best score (the model it keeps), so
every epoch of the mean curve averages all seeds and a stopped seed does not make the mean jump.
The area under the curve is the mean validation score over the first H epochs, H = the shortest
run among all compared inits, so every init is scored over the same epochs with no padding.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analyses import common
from benchmark.errors import ConfigError
from benchmark.results.report import style
from benchmark.results.stats import summarize
from benchmark.sweep.spec import Outputs, Sweep

INITS = ("random", "imagenet", "moco", "con-both", "gen-both", "tower")  # those of the ablation: no new pretraining


def by_init(records: list[dict]) -> dict[str, list[dict]]:
    """init -> its records, in seed order (records without a curve are left out)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: int(r["seed"])):
        if r.get("curve"):
            out[r["init"]].append(r)
    return dict(out)


def best_check(record: dict) -> int:
    """Index of the selected model's validation check in ``curve`` (records before step-counted
    fine-tuning validated once per epoch, so their best epoch is that index)."""
    return int(record.get("best_check", record["best_epoch"]))


def mean_curve(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per epoch over all curves, each carried on after its stop at its best value."""
    length = max(len(c) for c in curves)
    grid = np.array([list(c) + [max(c)] * (length - len(c)) for c in curves], dtype=float)
    std = grid.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
    return grid.mean(axis=0), std


def convergence_table(groups: dict[str, list[dict]]) -> pd.DataFrame:
    """Per init: validation checks to best (1-based) and checks run, mean ± std; AUC over the common horizon; test."""
    horizon = min(len(r["curve"]) for recs in groups.values() for r in recs)
    rows = []
    for init, recs in groups.items():
        best = summarize([best_check(r) + 1 for r in recs])
        ran = summarize([len(r["curve"]) for r in recs])
        area = summarize([float(np.mean(r["curve"][:horizon])) for r in recs])
        test = summarize([float(r["value"]) for r in recs])
        rows.append({"init": init, "n": best.n, "best_epoch_mean": best.mean, "best_epoch_std": best.std,
                     "epochs_run_mean": ran.mean, "auc_mean": area.mean, "auc_std": area.std, "horizon": horizon,
                     "val_best_mean": float(np.mean([r.get("val_best", max(r["curve"])) for r in recs])),
                     "test_mean": test.mean, "test_std": test.std})
    return pd.DataFrame(rows).sort_values("best_epoch_mean", kind="stable").reset_index(drop=True)


def draw_curves(ax, groups: dict[str, list[dict]], colors: dict, metric: str) -> None:
    """Mean validation curve per init over a thin line per seed; dots: each seed's best check; crosses: its stop."""
    for init, recs in groups.items():
        curves = [r["curve"] for r in recs]
        mean, _ = mean_curve(curves)
        for c in curves:
            ax.plot(np.arange(1, len(c) + 1), c, color=colors[init], lw=0.6, alpha=0.35)
        ax.plot(np.arange(1, len(mean) + 1), mean, color=colors[init], lw=2, label=init)
        ax.scatter([best_check(r) + 1 for r in recs], [r["curve"][best_check(r)] for r in recs],
                   color=colors[init], s=18, zorder=3, edgecolor="black", linewidth=0.4)
        ax.scatter([len(c) for c in curves], [c[-1] for c in curves], color=colors[init], marker="x", s=20, zorder=3)
    style.integer_axis(ax.xaxis)
    ax.set_ylim(0, None)
    ax.set_xlabel("fine-tuning validation check")
    ax.set_ylabel(f"validation {metric} (%)")
    ax.legend(fontsize=7, loc="lower right")


def body_table(table: pd.DataFrame) -> list[str]:
    view = pd.DataFrame({
        "init": table["init"], "n": table["n"],
        "checks to best": [f"{common.fmt(m, 1)} ± {common.fmt(s, 1)}"
                           for m, s in zip(table["best_epoch_mean"], table["best_epoch_std"])],
        "checks run": [common.fmt(v, 1) for v in table["epochs_run_mean"]],
        f"val AUC, checks 1-{table['horizon'].iloc[0]}": [f"{common.fmt(m)} ± {common.fmt(s)}"
                                                           for m, s in zip(table["auc_mean"], table["auc_std"])],
        "best val": [common.fmt(v) for v in table["val_best_mean"]],
        "test": [f"{common.fmt(m)} ± {common.fmt(s)}" for m, s in zip(table["test_mean"], table["test_std"])],
    })
    return common.markdown_table(view)


def convergence(sweep: Sweep, outputs: Outputs) -> list[Path]:
    """Run what is missing, then write ``convergence-<task>-<budget>.{md,csv,png}`` to ``outputs.boards``."""
    task, budget, seeds = sweep.task, sweep.budget.name, sweep.seeds
    records, notes = common.gather(sweep, outputs)
    groups = by_init(records)
    if not groups:
        raise ConfigError(f"no fine-tuning curves for {list(sweep.methods)} on {task} at budget {budget} in "
                          f"{outputs.store}")
    table = convergence_table(groups)
    metric = records[0]["metric"]
    name = f"convergence-{task}-{budget}"
    stamp = common.stamp(outputs.command, budget, task, records, seeds=seeds)
    body = ["Validation checks are 1-based (one per epoch, at most every eval_every steps: see the budget); checks "
            "to best = the check whose model is tested. "
            f"Val AUC = mean validation {metric} over checks 1-H, H = the shortest run (the same checks for every "
            "init). Mean curves average all seeds; a stopped seed counts with its best score (the model it keeps).", ""]
    body += body_table(table) + [f"- note: {n}" for n in notes]

    return common.write_outputs(outputs.boards, name, stamp, table, body,
                                lambda fig: draw(fig, groups, task, budget, seeds, metric))


def draw(fig, groups: dict[str, list[dict]], task: str, budget: str, seeds: int, metric: str) -> None:
    draw_curves(fig.subplots(), groups, style.colors(groups), metric)
    style.title(fig, f"{task} ({budget}): validation curves over {seeds} seeds (thin: each seed, thick: the mean); "
                     "dots = best check, x = stopped")
