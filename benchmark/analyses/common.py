"""What every analysis shares: get the records (running what is missing), stamp, write Markdown + CSV + PNG.

Results come from ``benchmark.run.run`` and its store, so an analysis re-run reuses every finished
pretraining and fine-tuning and only computes what is missing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from zoo.io import atomic_write, atomic_write_text, package_version

from .. import registry
from ..config import budget as get_budget
from ..run import console, run
from ..store import ResultStore
from ..tasks.base import Task


def load_task(task: str, budget: str, data_root: Path | None) -> Task:
    """The task at the budget's image size."""
    return registry.make_task(task, data_root, get_budget(budget).image_size)


def gather(inits: list[str], task: str, budget: str, seeds: int, store: Path, fractions: Iterable[float] = (1.0,),
           data_root: Path | None = None, imagenet_weights: str | None = None,
           progress: bool = False) -> tuple[list[dict], list[str]]:
    """(records of ``inits`` on ``task`` at ``fractions``, notes): missing runs are run, the rest reused.

    Only seeds below ``seeds`` are kept, so a store with more seeds gives the same table as the command
    asks for. An init with no results (ImageNet weights not available offline) is named in a note.
    """
    fractions = [float(f) for f in fractions]
    run(inits, [task], seeds, budget, data_root, store, None, fractions, "tower", imagenet_weights, "", progress)
    records = [r for r in ResultStore(store).records(task, budget=budget)
               if r["init"] in inits and float(r["label_fraction"]) in fractions and int(r["seed"]) < seeds]
    notes = [f"{init}: no results (skipped: ImageNet weights are not available offline; pass --imagenet-weights)"
             if init == "imagenet" else f"{init}: no results" for init in inits
             if not any(r["init"] == init for r in records)]
    for note in notes:
        console.print(f"[yellow]{note}[/yellow]")
    return records, notes


def stamp(command: str, budget: str, task: str, records: list[Mapping[str, Any]], data: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """What produced an output: command, budget, data, date, versions (first lines of every file)."""
    roots = sorted({str(r.get("config", {}).get("data_root")) for r in records if r.get("config", {}).get("data_root")})
    where = f" from {', '.join(roots)}" if roots else " (embedded data)" if task.startswith("synth") else ""
    return {
        "command": command, "budget": budget, "data": (data or f"{len(records)} records of {task}") + where,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra, "tower-bench": package_version(),
    }


def fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def markdown_table(df: pd.DataFrame) -> list[str]:
    """A DataFrame as Markdown lines; floats with two decimals, NaN as '–'."""
    cells = [[fmt(v) if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(index=False)]
    return ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)] + \
           ["| " + " | ".join(c) + " |" for c in cells]


def write_outputs(out_dir: Path, name: str, stamp_: Mapping[str, Any], table: pd.DataFrame, body: list[str],
                  draw: Callable[[Any], None], size: tuple[float, float] = (7.0, 4.5),
                  extra_csv: Mapping[str, pd.DataFrame] | None = None) -> list[Path]:
    """``<name>.md`` (stamp, ``body`` lines), ``<name>.csv`` (``table``), ``<name>.png`` (``draw(fig)``),
    plus ``<name>-<suffix>.csv`` for each ``extra_csv``; every file written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    out = Path(out_dir)
    md = [f"# {name}", ""] + [f"- **{k}**: `{v}`" for k, v in stamp_.items()] + [""] + body + [""]
    paths = [atomic_write_text(out / f"{name}.md", "\n".join(md))]
    header = "".join(f"# {k}: {v}\n" for k, v in stamp_.items())
    paths.append(atomic_write_text(out / f"{name}.csv", header + table.to_csv(index=False)))
    for suffix, frame in (extra_csv or {}).items():
        paths.append(atomic_write_text(out / f"{name}-{suffix}.csv", header + frame.to_csv(index=False)))
    fig = Figure(figsize=size, layout="constrained")
    draw(fig)
    fig.text(0.995, 0.002, f"{stamp_['command']} | {stamp_['date'][:10]}", ha="right", va="bottom", fontsize=6,
             color="grey")
    paths.append(atomic_write(out / f"{name}.png", lambda p: fig.savefig(p, format="png", dpi=120)))
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return paths


def colors(names: Iterable[str]) -> dict[str, Any]:
    """A stable colour per init name across the panels of a figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(dict.fromkeys(names))}


def draw_bars(ax, df: pd.DataFrame, metric: str) -> None:
    """A leaderboard frame on one axis: mean ± std per init, every seed as a dot, stars above."""
    y = list(range(len(df)))
    ax.barh(y, df["mean"], xerr=df["std"].fillna(0.0), capsize=3, color="#9db4d6", edgecolor="black", linewidth=0.5)
    for i, r in enumerate(df.itertuples()):
        ax.scatter(r.values, [i] * len(r.values), s=10, color="black", zorder=3)
        if r.stars:
            ax.text(max(r.values) , i, " " + r.stars, va="center")
    values = [v for vs in df["values"] for v in vs] + list(df["mean"] - df["std"].fillna(0.0))
    lo, hi = min(values), max(values + list(df["mean"] + df["std"].fillna(0.0)))
    ax.set_xlim(lo - 0.1 * (hi - lo + 1e-6), hi + 0.15 * (hi - lo + 1e-6))
    ax.set_yticks(y, list(df["init"]), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"test {metric} (%)")
