"""Leaderboards: one row per initialisation, mean±std over seeds, p-value and stars vs a reference.

Rendered like the paper's tables (best in bold, rows beating ImageNet init underlined, stars by
p-value vs TOWER) and written as Markdown + CSV + PNG, each stamped with what produced it.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from benchmark.core.config import DEFAULT_PROTOCOL, TRIVIAL_MARGIN
from benchmark.core.names import AA_CONTROL, RANDOM, SUPERVISED, display_name, metric_name
from benchmark.errors import ConfigError, MissingFileError
from benchmark.results import reference as ref
from benchmark.results import stats
from benchmark.results.board import Board, board_inputs, board_settings, newest_per_seed, protocol_of, stamp_line
from benchmark.results.store import records_jsonl
from zoo.health import describe
from zoo.io import atomic_write_text, package_version, public_path

COLUMNS = ["init", "kind", "budget", "label_fraction", "n", "mean", "std", "ci", "p", "p_holm", "wilcoxon", "test",
           "stars", "mdd", "paper", "paper_mean", "paper_std", "paper_seeds", "bold", "underline", "converged", "counts",
           "pretrain_runs", "seeds", "values", "configs", "note"]
CSV_COLUMNS = [c for c in COLUMNS if c not in ("paper", "seeds", "values")]


class Control(NamedTuple):
    """A pair of rows whose comparison tells whether the board's protocol and test can be trusted."""
    name: str
    init: str
    versus: str
    expect: str


CONTROLS = (
    # The same init from another seed stream must tie with it: the test's false-positive rate.
    Control("A/A control", AA_CONTROL, RANDOM, "expected to tie"),
    # Trained on labels at the pretraining's compute: if it does not beat random init, the protocol washes
    # out initialisations and no pretraining could show on this board.
    Control("positive control", SUPERVISED, RANDOM, "expected to win"),
)
POWER = 0.8  # the power at which a board states its minimum detectable difference
CHANCE = {"auc": 50.0}  # where a metric's axis starts: the score of a predictor that ranks at random


def convergence(records: list[dict]) -> tuple[str, bool]:
    """("k/n" runs that converged, whether all did); records made before the plateau rule count as unknown."""
    known = [r["converged"] for r in records if r.get("converged") is not None]
    if not known:
        return "–", True
    return f"{sum(known)}/{len(known)}", all(known) and len(known) == len(records)


def paired_sd(values: Mapping[int, float] | list[float], ref_values: Mapping[int, float] | list[float] | None) -> float:
    """The std of the paired differences to the reference (the noise a paired test sees); NaN when unpaired."""
    if not (isinstance(values, Mapping) and isinstance(ref_values, Mapping)) or set(values) != set(ref_values):
        return math.nan
    d = [values[k] - ref_values[k] for k in sorted(values)]
    return stats.summarize(d).std


def trivial_rows(records: list[dict]) -> dict[str, float]:
    """The trivial predictors' scores on the test split the records were scored on (from the records:
    fine-tuning computes them on the same split; records of other splits disagree and are refused)."""
    seen = {tuple(sorted(r["trivial"].items())) for r in records if r.get("trivial")}
    if len(seen) > 1:
        raise ConfigError(f"records disagree on the trivial predictors' scores ({sorted(seen)[:2]}...): they were "
                          "scored on different test splits; build one board per data set")
    return dict(seen.pop()) if seen else {}


def pretraining_notes(records: list[dict]) -> tuple[list[str], bool, int]:
    """(notes, healthy, pretraining runs) of one row: a failed health check marks it undertrained."""
    health = [r["pretrain_health"] for r in records if r.get("pretrain_health")]
    runs = len({r.get("config", {}).get("extra", {}).get("pretrain_hash") for r in records} - {None})
    failed = [h for h in health if not h.get("passed")]
    if not failed:
        return [], True, runs
    return [f"undertrained: pretraining health check failed ({describe(failed[0])})"], False, runs


def _row_values(records: list[dict]) -> Mapping[int, float] | list[float]:
    """seed -> value when seeds are unique (so rows can pair by seed), else the plain values."""
    seeds = [int(r["seed"]) for r in records]
    if len(set(seeds)) == len(seeds):
        return {s: float(r["value"]) for s, r in sorted(zip(seeds, records))}
    return [float(r["value"]) for r in records]


def bootstrap_values(records: list[dict]) -> tuple[tuple[int, int], list[float]] | None:
    """((seed, test size), the row's score on each resample of the test set: its records' mean) when every
    record carries the test set's bootstrap drawn alike, else None."""
    boots = [r.get("test_bootstrap") for r in records]
    if not boots or any(b is None or (b["seed"], b["n_test"]) != (boots[0]["seed"], boots[0]["n_test"])
                        for b in boots):
        return None
    values = np.array([[math.nan if v is None else v for v in b["values"]] for b in boots], dtype=float)
    return (boots[0]["seed"], boots[0]["n_test"]), list(values.mean(axis=0))


def compare_rows(recs: list[dict], other: list[dict], paired: bool | None) -> stats.Comparison:
    """The t-test of two rows' seeds; where one of them gives one value on every seed (a frozen protocol on one
    pretraining) but both carry the test set's bootstrap drawn alike, the paired bootstrap over test images
    (a row of several seeds enters with its seeds' mean on each resample) instead of no test at all."""
    cmp = stats.compare(_row_values(recs), _row_values(other), paired)
    if cmp.test != "none":
        return cmp
    mine, theirs = bootstrap_values(recs), bootstrap_values(other)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        return cmp
    found = stats.bootstrap_compare(mine[1], theirs[1])
    varies = len({float(r["value"]) for r in recs}) > 1 or len({float(r["value"]) for r in other}) > 1
    return found._replace(note=found.note + ("; a row's seeds enter as their mean, so their own variance is not "
                                             "in this p" if varies else ""))


def build_leaderboard(records: Iterable[Mapping[str, Any]], board: Board | str, reference: str = "tower",
                      paired: bool | Literal["auto"] = "auto", holm: bool = True,
                      thresholds: Sequence[float] = stats.PAPER_THRESHOLDS) -> pd.DataFrame:
    """One row per (budget, init) of the records ``board`` selects (a task name: its records at label fraction 1
    under the paper's protocol); tests every row vs ``reference``.

    paired="auto" pairs by seed when both rows have the same seeds, else Welch's t-test.
    Each budget's p-values (all rows vs the reference) are also Holm-Bonferroni adjusted (``p_holm``); holm=True
    (the default) sets the stars from the adjusted ones.
    """
    if paired not in ("auto", True, False):
        raise ValueError(f"paired must be 'auto', True or False, got {paired!r}")
    board = Board(board) if isinstance(board, str) else board
    task, label_fraction, protocol = board.task, board.label_fraction, board.protocol
    records = list(records)
    selected = [r for r in records if board.selects(r)]
    chosen = newest_per_seed(selected)
    if not chosen:
        have = sorted({(r["task"], float(r["label_fraction"]), r["budget"], protocol_of(r)) for r in records})
        raise ConfigError(f"no results for task {task!r} at label_fraction={label_fraction}"
                          f"{'' if board.budget is None else f' and budget {board.budget!r}'} with protocol "
                          f"{protocol!r}; the store has (task, fraction, budget, protocol) {have}")
    metrics = sorted({r["metric"] for r in chosen})
    if len(metrics) > 1:
        raise ConfigError(f"task {task!r} has results in several metrics {metrics}; cannot rank them together")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in chosen:
        groups[(r["budget"], r["init"])].append(r)
    superseded = Counter((r["budget"], r["init"]) for r in selected)
    superseded.subtract(Counter((r["budget"], r["init"]) for r in chosen))

    rows = []
    for bud in sorted({b for b, _ in groups}):
        inits = sorted(i for b, i in groups if b == bud)
        floor = trivial_rows([r for i in inits for r in groups[(bud, i)]])
        ref_values = _row_values(groups[(bud, reference)]) if reference in inits else None
        block = []
        for init in inits:
            recs = groups[(bud, init)]
            values = _row_values(recs)
            summary = stats.summarize(values)
            configs = sorted({r["config_hash"] for r in recs})
            notes = [] if len(configs) == 1 else [f"{len(configs)} configs pooled"]
            if superseded[(bud, init)]:
                notes.append(f"{superseded[(bud, init)]} older record(s) of the same seeds (another config) not shown")
            wilcoxon, sd = math.nan, math.nan
            if init == reference:
                cmp = stats.Comparison(math.nan, "reference")
            elif ref_values is None:
                cmp = stats.Comparison(math.nan, "none", f"no {reference!r} results")
            else:
                try:
                    cmp = compare_rows(recs, groups[(bud, reference)], None if paired == "auto" else paired)
                except ValueError as err:
                    raise ValueError(f"{init} vs {reference}: {err}") from None
                if cmp.test == "paired":
                    wilcoxon, sd = stats.wilcoxon_p(values, ref_values), paired_sd(values, ref_values)
            notes += [cmp.note] if cmp.note else []
            # the paper: all labels, fine-tuned
            paper = ref.paper_value(task, init) if float(label_fraction) == 1.0 and protocol == DEFAULT_PROTOCOL else None
            v = list(values.values()) if isinstance(values, Mapping) else values
            health_notes, healthy, runs = pretraining_notes(recs)
            beats = not floor or min(v) > max(floor.values()) + TRIVIAL_MARGIN
            if not beats:
                notes.append(f"does not beat the trivial row ({max(floor.values()):.2f}) by {TRIVIAL_MARGIN:g} "
                             "points on every seed")
            converged, all_converged = convergence(recs)
            if not all_converged:
                notes.append(f"not converged: {converged} runs reached the plateau rule")
            ref_paper = ref.paper_value(task, reference) if paper is not None else None
            gap = math.nan if paper is None or ref_paper is None else paper.mean - ref_paper.mean
            block.append({
                "init": init, "kind": "init", "budget": bud, "label_fraction": float(label_fraction), "n": summary.n,
                "mean": summary.mean, "std": summary.std, "ci": summary.ci, "p": cmp.p, "p_holm": math.nan,
                "wilcoxon": wilcoxon, "test": cmp.test,
                "mdd": stats.min_detectable_difference(sd, summary.n, thresholds[0], POWER),
                "paper": "" if paper is None else str(paper),
                "paper_mean": math.nan if paper is None else paper.mean,
                "paper_std": math.nan if paper is None or paper.std is None else paper.std,
                "paper_seeds": stats.seeds_needed(gap, sd, thresholds[0], POWER),
                "converged": converged, "counts": beats and healthy and all_converged, "pretrain_runs": runs,
                "seeds": sorted(int(r["seed"]) for r in recs), "values": v,
                "configs": " ".join(configs), "note": "; ".join(health_notes + notes),
            })
        for row, p in zip(block, stats.holm([row["p"] for row in block])):
            row["p_holm"] = p
        best = max(row["mean"] for row in block)
        imagenet = next((row["mean"] for row in block if row["init"] == "imagenet"), None)
        for row in block:
            row["stars"] = stats.stars(row["p_holm"] if holm else row["p"], thresholds)
            row["bold"] = row["mean"] == best
            row["underline"] = imagenet is not None and row["init"] != "imagenet" and row["mean"] > imagenet
        rows += sorted(block, key=lambda row: -row["mean"])
        rows += [{"init": f"trivial: {name}", "kind": "trivial", "budget": bud, "label_fraction": float(label_fraction),
                  "n": 0, "mean": value, "std": math.nan, "ci": math.nan, "p": math.nan, "p_holm": math.nan,
                  "wilcoxon": math.nan, "test": "none", "stars": "", "mdd": math.nan, "paper": "",
                  "paper_mean": math.nan, "paper_std": math.nan, "paper_seeds": None, "bold": False,
                  "underline": False, "converged": "–", "counts": False, "pretrain_runs": 0, "seeds": [], "values": [],
                  "configs": "",
                  "note": "no model: the same test split"}
                 for name, value in sorted(floor.items(), key=lambda kv: -kv[1])]
        rows += reference_rows([r for i in inits for r in groups[(bud, i)]], bud, float(label_fraction))

    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update(task=task, metric=metrics[0], reference=reference, holm=holm, paired=paired,
                    thresholds=tuple(thresholds), label_fraction=float(label_fraction), protocol=protocol,
                    controls={c.name: control_test(groups, c) for c in CONTROLS}, mdd=board_mdd(df))
    return df


REFERENCE_NOTES = {"pixels": "no network: standardised logistic regression on the 8 x 8 image, C chosen on validation"}


def reference_rows(records: list[dict], bud: str, label_fraction: float) -> list[dict]:
    """Rows for the references the records carry (``pixels`` on classification): one value per fine-tuning seed
    (its labelled subset), mean ± std over seeds. Unlike the trivial rows they are no floor: they show what the
    input alone gives, so a frozen encoder below them does not represent the task."""
    by_name: dict[str, dict[int, float]] = defaultdict(dict)
    for r in records:
        for name, value in (r.get("references") or {}).items():
            by_name[name][int(r["seed"])] = float(value)
    rows = []
    for name, values in sorted(by_name.items()):
        summary = stats.summarize(values)
        rows.append({"init": f"reference: {name}", "kind": "reference", "budget": bud, "label_fraction": label_fraction,
                     "n": summary.n, "mean": summary.mean, "std": summary.std, "ci": summary.ci, "p": math.nan,
                     "p_holm": math.nan, "wilcoxon": math.nan, "test": "none", "stars": "", "mdd": math.nan,
                     "paper": "", "paper_mean": math.nan, "paper_std": math.nan, "paper_seeds": None, "bold": False,
                     "underline": False, "converged": "–", "counts": False, "pretrain_runs": 0,
                     "seeds": sorted(values), "values": list(values.values()), "configs": "",
                     "note": REFERENCE_NOTES.get(name, "")})
    return rows


def control_test(groups: Mapping[tuple[str, str], list[dict]], control: Control) -> dict | None:
    """The control pair's difference and tests (per budget, the first that has both), or None without the pair."""
    for (bud, init), recs in sorted(groups.items()):
        other = groups.get((bud, control.versus))
        if init != control.init or not other:
            continue
        a, b = _row_values(recs), _row_values(other)
        cmp = compare_rows(recs, other, None)
        diff = stats.summarize(list(a.values()) if isinstance(a, Mapping) else a).mean - \
            stats.summarize(list(b.values()) if isinstance(b, Mapping) else b).mean
        wilcoxon = stats.wilcoxon_p(a, b) if cmp.test == "paired" else math.nan
        return {"budget": bud, "diff": diff, "p": cmp.p, "test": cmp.test, "wilcoxon": wilcoxon}
    return None


def board_mdd(df: pd.DataFrame) -> float:
    """The board's minimum detectable difference: the median over its rows paired with the reference."""
    values = [x for x in df.loc[df["kind"] == "init", "mdd"] if math.isfinite(x)]
    return float(pd.Series(values).median()) if values else math.nan


def variance_note(df: pd.DataFrame) -> str:
    """Which variance the std columns hold: fine-tuning seeds alone, or pretraining runs too."""
    runs = sorted(set(df.loc[df["kind"] == "init", "pretrain_runs"]) - {0})
    if not runs:
        note = "over fine-tuning seeds (no pretrained init)"
    elif runs == [1]:
        note = "over fine-tuning seeds of one pretraining run per method (pretraining variance not included)"
    else:
        note = f"over fine-tuning seeds pooled over {'/'.join(map(str, runs))} pretraining runs per method"
    if (df["test"] == "bootstrap").any():
        note += ("; rows that give one value on every seed are tested by a paired bootstrap over test images "
                 "(the test set's sampling noise only)")
    return note


def fmt_number(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def mean_std(row) -> str:
    return fmt_number(row.mean) if not math.isfinite(row.std) else f"{fmt_number(row.mean)} ± {fmt_number(row.std)}"


def fmt_p(p: float) -> str:
    return "–" if p is None or not math.isfinite(p) else f"{p:.2g}"


def _seeds(n) -> str:
    return "–" if n is None or (isinstance(n, float) and not math.isfinite(n)) else str(int(n))


def legend(df: pd.DataFrame) -> str:
    """What the marks mean, from the thresholds and tests actually used."""
    a = df.attrs
    marks = ", ".join(f"{'*' * (i + 1)} p<{t:g}" for i, t in enumerate(a.get("thresholds", stats.PAPER_THRESHOLDS)))
    test = {True: "paired by seed", False: "Welch's"}.get(a.get("paired"), "paired by seed when seeds match, else Welch's")
    alpha = a.get("thresholds", stats.PAPER_THRESHOLDS)[0]
    return (f"Two-sided t-test vs {a.get('reference', 'tower')!r} ({test}); stars from the "
            f"{'Holm-adjusted' if a.get('holm', True) else 'unadjusted'} p: {marks}; W = exact Wilcoxon signed-rank p "
            f"(paired rows). MDD = the smallest difference the paired test detects with {POWER:.0%} power at "
            f"alpha {alpha:g} with this row's paired std and n; 'paper n' = seeds the paper's gap to the reference "
            f"would need at that power. Best mean in bold"
            f"{'; underlined rows beat ImageNet init' + chr(39) + 's mean' if df['underline'].any() else ''}. "
            f"n = seeds per row; CI = 95% t-interval half-width. "
            f"{'Dice = mean over test images. ' if a.get('metric') == 'dice' else ''}"
            f"'trivial' rows look at no image (the same test split); a row counts "
            f"only when every seed beats the best of them by {TRIVIAL_MARGIN:g} points, every run converged "
            f"(the plateau rule) and its pretraining passed the health check (benchmark/pretraining/health.py).")


def controls_line(df: pd.DataFrame) -> str:
    """The board's controls and power in one line: each control pair's difference and p, and the median MDD."""
    a = df.attrs
    parts = []
    for control in CONTROLS:
        found = a.get("controls", {}).get(control.name)
        if found:
            parts.append(f"{control.name} ({control.init} vs {control.versus}, {control.expect}): difference "
                         f"{found['diff']:+.2f}, p = {fmt_p(found['p'])} ({found['test']}), "
                         f"W = {fmt_p(found['wilcoxon'])}")
        else:
            parts.append(f"no {control.name} on this board ({control.init} or {control.versus} absent)")
    mdd = a.get("mdd", math.nan)
    parts.append(f"minimum detectable difference (median over rows): {fmt_number(mdd)} points" if math.isfinite(mdd) else
                 "minimum detectable difference: not computable (no paired rows with 2+ seeds)")
    return "; ".join(parts) + "."


def to_markdown(df: pd.DataFrame, stamp: Mapping[str, Any], name: str) -> str:
    metric = df.attrs.get("metric", "value")
    lines = [f"# {name}", ""]
    lines += [stamp_line(k, v) for k, v in stamp.items()]
    lines += ["", controls_line(df), ""]
    lines += [f"| init | budget | n | {metric} (%) | 95% CI ± | p vs {df.attrs.get('reference', 'tower')} | p Holm | W "
              "| MDD | paper | paper n | converged | counts | note |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for row in df.itertuples():
        cell = mean_std(row)
        if row.bold:
            cell = f"**{cell}**"
        if row.underline:
            cell = f"<u>{cell}</u>"
        cell += "\\*" * len(row.stars)
        counts = "–" if row.kind != "init" else ("yes" if row.counts else "**no**")
        init = f"*{row.init}*" if row.kind != "init" else display_name(row.init)
        lines.append(f"| {init} | {row.budget} | {row.n or '–'} | {cell} | {fmt_number(row.ci)} | {fmt_p(row.p)} "
                     f"| {fmt_p(row.p_holm)} | {fmt_p(row.wilcoxon)} | {fmt_number(row.mdd)} | {row.paper or '–'} "
                     f"| {_seeds(row.paper_seeds)} | {row.converged} | {counts} | {row.note} |")
    lines += ["", legend(df), ""]
    return "\n".join(lines)


def figure(df: pd.DataFrame, title: str, into=None):
    """Every seed as a dot with the mean ± 95% CI, the paper's value as a diamond, the trivial rows as lines,
    stars above; the value axis starts at the metric's chance level (0, or 50 for AUC), so no difference is drawn
    larger than it is and no height is spent below chance. Draws ``into`` a given figure (resized to fit) or a new
    one."""
    from benchmark.results.report import style

    floor = df[df["kind"] != "init"]  # trivial and reference rows: drawn as lines
    df = df[df["kind"] == "init"].reset_index(drop=True)
    several = df["budget"].nunique() > 1
    labels = [f"{display_name(r.init)}\n({r.budget})" if several else display_name(r.init) for r in df.itertuples()]
    size = (max(5.0, 0.8 * len(df) + 3.0), 4.0)
    fig = style.new_figure(size) if into is None else into
    fig.set_size_inches(*size)
    ax = fig.subplots()
    x = list(range(len(df)))
    style.seed_dots(ax, list(df.itertuples()), x, style.colors(df["init"]))
    has_paper = df["paper_mean"].notna()
    if has_paper.any():
        ax.scatter([i + 0.3 for i in x if has_paper.iloc[i]], df.loc[has_paper, "paper_mean"], marker="D", s=30,
                   color="white", edgecolor="black", zorder=4, label="paper")
    metric = df.attrs.get("metric", "value")
    lows = [min(r.values) for r in df.itertuples() if len(r.values)]
    bottom = CHANCE.get(metric.lower(), 0.0) if lows and min(lows) >= CHANCE.get(metric.lower(), 0.0) else 0.0
    for line, row in zip(style.TRIVIAL_STYLES, floor.drop_duplicates(["init", "mean"]).itertuples()):
        if row.mean > bottom:  # a line on the axis itself would be a legend entry nobody can see
            ax.axhline(row.mean, color="black", linestyle=line, linewidth=0.8, label=row.init)
    tops = [max(list(r.values) + [r.mean + (r.ci if math.isfinite(r.ci) else 0.0)]) for r in df.itertuples()]
    hi = max(tops + list(df["paper_mean"].dropna()) + list(floor["mean"]))
    for i, r in enumerate(df.itertuples()):
        if r.stars:
            ax.annotate(r.stars, (i, tops[i]), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom")
    ax.set_ylim(bottom, bottom + (hi - bottom) * 1.12 if hi > bottom else bottom + 1.0)
    ax.set_xlim(-0.6, len(df) - 0.4)
    tilt = len(df) > 5 or sum(len(max(label.split("\n"), key=len)) for label in labels) > 8 * len(labels)
    ax.set_xticks(x, labels, rotation=90 if tilt else 0, ha="center")  # upright names never overlap
    ax.set_ylabel(f"{metric} (%)" + (f", from chance ({bottom:g})" if bottom else ""))
    style.title(fig, title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes, under the title
    return fig


def plot(df: pd.DataFrame, path: Path, title: str, stamp_line: str = "") -> dict[str, Path]:
    """The board's figure, ``stamp_line`` as its footer, as PNG (200 dpi), PDF and SVG beside ``path``."""
    from benchmark.results.report import style

    return style.save(style.render(lambda fig: figure(df, title, into=fig), stamp_line), path)


def write_leaderboard(df: pd.DataFrame, out_dir: str | Path, name: str, stamp: Mapping[str, Any],
                      records: Sequence[Mapping[str, Any]] = ()) -> dict[str, Path]:
    """Write ``<name>.md`` (stamped table with marks), ``<name>.tex`` (the same as a booktabs table),
    ``<name>.csv`` (plain numbers), ``<name>.html`` (+ the folder's ``index.html``), the figure as
    ``<name>.png/.pdf/.svg`` and, given the records behind it, ``<name>.records.jsonl`` (one per line),
    from which anyone can recompute every number of the board; the stamp then names that file and its
    content hash. A rebuild that changes neither the CSV nor the records keeps the figures
    (``figure_is_current``) and rewrites neither file (a 10,000-record file is ~0.4 s to write)."""
    import hashlib

    from benchmark.results.report import html, latex
    from benchmark.results.report.style import FORMATS

    if df.empty:
        raise ValueError("leaderboard is empty: nothing to write")
    out = Path(out_dir)
    paths = {ext: out / f"{name}.{ext}" for ext in ("md", "tex", "csv")}
    texts = {"csv": df[CSV_COLUMNS].to_csv(index=False)}
    if records:
        texts["records"] = records_jsonl(records)
        paths["records"] = out / f"{name}.records.jsonl"
        digest = hashlib.sha256(texts["records"].encode()).hexdigest()[:16]
        stamp = {**stamp, "records": f"{paths['records'].name} (sha256 {digest})"}
    figures = {ext: out / f"{name}.{ext}" for ext in FORMATS}
    unchanged = {key: _holds(paths[key], text) for key, text in texts.items()}
    current = "records" in texts and all(unchanged.values()) and figure_is_current(list(figures.values()))
    atomic_write_text(paths["md"], to_markdown(df, stamp, name))
    atomic_write_text(paths["tex"], latex.to_latex(df, stamp, name, board_title(df, name)))
    for key, text in texts.items():
        if not unchanged[key]:
            atomic_write_text(paths[key], text)
    if current:
        paths.update(figures)
    else:
        a = df.attrs
        paths.update(plot(df, figures["png"], f"{board_title(df, name)}: every seed with the mean ± 95% CI; stars vs "
                          f"{display_name(a.get('reference', 'tower'))}",
                          " | ".join(str(stamp[k]) for k in ("command", "date") if k in stamp)))
    paths["html"], paths["index"] = html.write_board(df, stamp, out, name, legend(df))
    return paths


def board_title(df: pd.DataFrame, name: str) -> str:
    """Task, protocol, label fraction and metric: what a reader needs to tell two boards apart."""
    a = df.attrs
    fraction = float(a.get("label_fraction", 1.0))
    labels = "all labels" if fraction == 1.0 else f"{fraction:.3g} of the labels"
    return (f"{a.get('task', name)}, {a.get('protocol', DEFAULT_PROTOCOL)} ({labels}), "
            f"{metric_name(str(a.get('metric', 'value')))}")


def _holds(path: Path, text: str) -> bool:
    """Whether ``path`` already holds exactly ``text``."""
    return path.is_file() and path.read_text() == text


def figure_is_current(figures: Sequence[Path]) -> bool:
    """Whether the ``figures`` files are newer than every module of this package (the code that draws them).

    ``write_leaderboard`` keeps them when, besides, the board's CSV and records (all a figure draws) are
    unchanged. Drawing costs more than the rest of a 10,000-record board: matplotlib's import alone is ~0.4 s.
    """
    code = max(p.stat().st_mtime for p in Path(__file__).parent.rglob("*.py"))
    return all(f.is_file() and f.stat().st_mtime > code for f in figures)


def _precision(record: Mapping[str, Any]) -> str:
    """How a record's fine-tuning ran: ``fast`` is set only where the device runs bf16 natively."""
    return "bf16 + channels_last" if record.get("config", {}).get("fast") else "fp32"


@dataclass(frozen=True)
class Written:
    """A board as built (its table, with the notes in ``attrs``) and the files it was written to."""

    table: pd.DataFrame
    paths: list[Path]


def refresh_leaderboard(board: Board, store: str | Path, out: str | Path, *, reference: str = "tower",
                        holm: bool = True, name: str | None = None, command: str | None = None) -> Written:
    """Rebuild ``board`` from the store and write it (Markdown, CSV, LaTeX, HTML, figures, records), named as
    ``run`` names it unless ``name`` says otherwise; ``report.terminal.show`` prints what this returns.

    ``command`` is the command stamped on the files (default: the equivalent ``tower-bench leaderboard``).
    """
    from benchmark.results.store import ResultStore

    task, budget, label_fraction, protocol = board.task, board.budget, board.label_fraction, board.protocol
    settings = board_settings(out, reference=reference, holm=holm, name=name, command=command)
    if not Path(store).is_dir():
        raise MissingFileError(f"results store {store} not found; run fine-tuning first or pass --store")
    records = ResultStore(store).records(task)
    if not records:
        tasks = sorted(p.name for p in Path(store).iterdir() if p.is_dir())
        raise ConfigError(f"no results for task {task!r} in {store}; tasks there: {', '.join(tasks) or 'none'}")
    df = build_leaderboard(records, board, reference=reference, holm=holm)
    used = newest_per_seed(r for r in records if board.selects(r))
    data_roots = sorted({Path(r["config"]["data_root"]).name for r in used if r.get("config", {}).get("data_root")})
    if command is None:
        args = [f"--store {public_path(store)}", f"--out {public_path(out)}",
                f"--reference {reference}"] + ([] if holm else ["--no-holm"])
        args += ([f"--budget {budget}"] if budget else []) + [f"--label-fraction {label_fraction}"]
        args += [] if protocol == DEFAULT_PROTOCOL else [f"--protocol {protocol}"]
        command = f"tower-bench leaderboard {task} " + " ".join(args)
    stamp = {
        "command": command,
        "budget": ", ".join(sorted(df["budget"].unique())),
        "protocol": protocol,
        "data": f"{len(used)} records of {task}" + (f" from {', '.join(data_roots)}" if data_roots else ""),
        "input": "; ".join(sorted({r["input"] for r in used if r.get("input")})) or "not recorded",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config hashes": ", ".join(sorted({r["config_hash"] for r in used})),
        "fine-tuning precision": ", ".join(sorted({_precision(r) for r in used})),
        "variance": variance_note(df),
        "tower-bench": package_version(),
        "inputs": board_inputs(board, store, settings),  # ``tower-bench leaderboard`` rebuilds when this changes
    }
    budgets = sorted(df["budget"].unique())
    if name is None:  # named as ``run`` names it for the same budget, label fraction and protocol
        name = replace(board, budget=budget or (budgets[0] if len(budgets) == 1 else None)).name
    shown = set(df["budget"])  # once: a set built per record costs ~1 s on 10,000 records
    used = [r for r in used if r["budget"] in shown]
    return Written(df, list(write_leaderboard(df, out, name, stamp, used).values()))
