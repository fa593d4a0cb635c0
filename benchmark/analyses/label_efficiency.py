"""Label efficiency (paper Fig. 11): metric vs label fraction per init, and the annotation-cost reduction.

The annotation cost of an init is the smallest label fraction at which its mean curve reaches a
reference init's mean at 100% labels (the paper: random init). The crossing is found by linear
interpolation of the mean curve **in linear fraction** between the two measured fractions that
bracket it; its uncertainty is a bootstrap over seeds (resample each fraction's seeds and the
reference's seeds with replacement, recompute the crossing, take the 2.5 / 97.5 percentiles).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from benchmark.analyses import common
from benchmark.errors import ConfigError
from benchmark.results import reference as ref
from benchmark.results.report import style
from benchmark.results.stats import summarize
from benchmark.sweep.spec import Outputs, Sweep

FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
INITS = ("random", "imagenet", "simclr", "tower")
REFERENCES = ("random", "imagenet", "simclr")


def crossing(fractions: Sequence[float], means: Sequence[float], target: float) -> float:
    """Smallest fraction where the piecewise-linear mean curve reaches ``target``; ``inf`` if it never does.

    ``fractions`` increasing. Already at or above target at the smallest fraction: that fraction (the
    curve is not extrapolated below what was measured).
    """
    f, m = np.asarray(fractions, float), np.asarray(means, float)
    if len(f) == 0 or len(f) != len(m) or np.any(np.diff(f) <= 0):
        raise ValueError(f"crossing: need increasing fractions with one mean each, got {list(f)} and {list(m)}")
    above = np.flatnonzero(m >= target)
    if len(above) == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return float(f[0])
    t = (target - m[i - 1]) / (m[i] - m[i - 1])
    return float(f[i - 1] + t * (f[i] - f[i - 1]))


class Cost(NamedTuple):
    """Crossing fraction (``inf``: not reached) with its bootstrap interval; saving = 1 - fraction."""

    fraction: float
    lo: float
    hi: float
    n_boot: int

    @property
    def saving(self) -> float:
        return 1.0 - self.fraction if math.isfinite(self.fraction) else math.nan


def annotation_cost(fractions: Sequence[float], values: Sequence[Sequence[float]], target_values: Sequence[float],
                    n_boot: int = 2000, seed: int = 0) -> Cost:
    """Crossing of the mean curve (``values[i]``: the seeds' metrics at ``fractions[i]``) with the mean of
    ``target_values``, and its 95% percentile bootstrap interval over seeds (``inf`` = not reached)."""
    if len(values) != len(fractions) or any(len(v) == 0 for v in values) or len(target_values) == 0:
        raise ValueError("annotation_cost: every fraction and the target need at least one value")
    point = crossing(fractions, [np.mean(v) for v in values], float(np.mean(target_values)))
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(v, float) for v in values]
    target = np.asarray(target_values, float)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        means = [a[rng.integers(0, len(a), len(a))].mean() for a in arrays]
        boot[b] = crossing(fractions, means, target[rng.integers(0, len(target), len(target))].mean())
    lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")  # picks samples: inf stays inf
    return Cost(point, float(lo), float(hi), n_boot)


def _pct(x: float, smallest: float = 0.0) -> str:
    """A crossing as text; at the smallest measured fraction it is only an upper bound ("≤")."""
    return "not reached" if not math.isfinite(x) else f"{'≤' if x <= smallest else ''}{100 * x:.1f}%"


def curves(records: list[dict]) -> dict[str, dict[float, list[float]]]:
    """init -> fraction -> seed values."""
    out: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(records, key=lambda r: int(r["seed"])):
        out[r["init"]][float(r["label_fraction"])].append(float(r["value"]))
    return out


def cost_table(data: dict[str, dict[float, list[float]]], references: Sequence[str], n_boot: int) -> pd.DataFrame:
    """One row per (init, reference) with a full curve: crossing, interval, saving."""
    rows = []
    for refname in references:
        if 1.0 not in data.get(refname, {}):
            continue
        for init, by_fraction in data.items():
            if init == refname:
                continue
            fr = sorted(by_fraction)
            c = annotation_cost(fr, [by_fraction[f] for f in fr], data[refname][1.0], n_boot=n_boot)
            at_least = "≥" if c.fraction <= fr[0] else ""
            rows.append({"init": init, "reference": f"{refname} @ 100%", "fraction": c.fraction, "lo": c.lo,
                         "hi": c.hi, "saving": c.saving, "fraction_text": _pct(c.fraction, fr[0]),
                         "interval_text": f"[{_pct(c.lo, fr[0])}, {_pct(c.hi, fr[0])}]",
                         "saving_text": "–" if math.isnan(c.saving) else f"{at_least}{100 * c.saving:.0f}%",
                         "n_boot": c.n_boot})
    return pd.DataFrame(rows)


def label_efficiency(sweep: Sweep, outputs: Outputs, references: list[str], n_boot: int = 2000) -> list[Path]:
    """Run what is missing (the sweep's inits and the ``references`` at its label fractions), then write
    ``label-efficiency-<task>-<budget>.{md,csv,png}`` (+ ``-curves.csv``) to ``outputs.boards``."""
    task, budget, fractions = sweep.task, sweep.budget.name, sweep.label_fractions
    if 1.0 not in fractions:
        raise ConfigError(f"--fractions must include 1 (the reference point), got {list(fractions)}")
    records, notes = common.gather(sweep.replace(methods=tuple(dict.fromkeys(sweep.methods + tuple(references)))),
                                   outputs)
    data = curves(records)
    summary = pd.DataFrame([{"init": i, "label_fraction": f, **summarize(v)._asdict()}
                            for i in data for f, v in sorted(data[i].items())])
    costs = cost_table(data, references, n_boot)
    metric = records[0]["metric"] if records else "value"
    name = f"label-efficiency-{task}-{budget}"
    stamp = common.stamp(outputs.command, budget, task, records, seeds=sweep.seeds,
                         fractions=",".join(f"{f:g}" for f in fractions))
    body = [f"Annotation cost: the smallest label fraction at which an init's mean test {metric} reaches the "
            "reference's mean at 100% labels (linear interpolation in linear fraction between measured fractions; "
            f"95% interval: percentile bootstrap over seeds, {n_boot} resamples; 'not reached' = the curve stays "
            "below; '≤' = already reached at the smallest measured fraction). Saving = 1 - fraction.", ""]
    if len(costs):
        body += common.markdown_table(costs[["init", "reference", "fraction_text", "interval_text", "saving_text"]].rename(
            columns={"fraction_text": "labels needed", "interval_text": "95% interval", "saving_text": "saving"}))
    paper = ref.LABEL_SAVING.get(task)
    body += ["", f"Paper (Fig. 11): TOWER saves {paper}% of labels vs random init on {task}." if paper else
             "Paper (Fig. 11) savings vs random init, TOWER: "
             + ", ".join(f"{t} {v}%" for t, v in ref.LABEL_SAVING.items()) + " (no figure for this task).", "",
             f"## {metric} (%) vs label fraction, mean ± std over seeds", ""]
    body += common.markdown_table(summary[["init", "label_fraction", "n", "mean", "std"]])
    body += [f"- note: {n}" for n in notes]

    return common.write_outputs(outputs.boards, name, stamp, costs, body,
                                lambda fig: draw(fig, data, costs, references, task, budget, metric),
                                extra_csv={"curves": summary})


def draw(fig, data: dict[str, dict[float, list[float]]], costs: pd.DataFrame, references: Sequence[str], task: str,
         budget: str, metric: str) -> None:
    """Every seed as a dot and the mean ± 95% CI per fraction on a percent axis; dotted: the references at 100%,
    dashed: where each init reaches the first reference."""
    ax = fig.subplots()
    col = style.colors(data)
    inits = list(data)
    for k, (init, by_fraction) in enumerate(data.items()):
        fr = sorted(by_fraction)
        s = [summarize(by_fraction[f]) for f in fr]
        shift = 1 + 0.04 * (k - (len(inits) - 1) / 2)  # side by side on the log axis, so the bars do not hide
        x = [f * shift for f in fr]
        for xi, f in zip(x, fr):
            ax.scatter([xi] * len(by_fraction[f]), by_fraction[f], s=10, color=col[init], alpha=0.5, edgecolor="none")
        ax.errorbar(x, [v.mean for v in s], yerr=np.nan_to_num([v.ci for v in s]), fmt="o-", color=col[init],
                    capsize=3, markersize=4, label=init)
    for refname in references:
        if 1.0 in data.get(refname, {}):
            ax.axhline(np.mean(data[refname][1.0]), color=col[refname], ls=":", lw=1)
    for row in costs[costs["reference"] == f"{references[0]} @ 100%"].itertuples() if len(costs) else ():
        if math.isfinite(row.fraction):
            ax.axvline(row.fraction, color=col[row.init], ls="--", lw=0.8)
    style.percent_fraction_axis(ax, sorted({f for by_fraction in data.values() for f in by_fraction}))
    ax.set_ylim(0, None)
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel(f"test {metric} (%)")
    style.title(fig, f"{task} ({budget}): every seed, mean ± 95% CI; dotted: references at 100%, dashed: where each "
                     f"init reaches {references[0]} @ 100%")
    ax.legend(fontsize=8, loc="lower right")  # below the curves: the axis starts at 0
