"""What every analysis shares: get the records (running what is missing), stamp, write Markdown + CSV + figures.

An analysis takes a ``Sweep`` (its inits, task, budget, seeds, label fractions) and ``Outputs`` (the store, the
folder it writes to as ``boards``, the command that stamps it). Results come from ``benchmark.sweep.run.run`` and
its store, so an analysis re-run reuses every finished
pretraining and fine-tuning and only computes what is missing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from benchmark.core import registry
from benchmark.results.board import newest_per_seed, stamp_line
from benchmark.results.report import style
from benchmark.results.store import ResultStore, records_jsonl
from benchmark.sweep.run import console, run
from benchmark.sweep.spec import Outputs, Sweep
from benchmark.tasks.base import Task
from zoo.io import atomic_write_text, package_version


def load_task(sweep: Sweep) -> Task:
    """The sweep's one task at its budget's image size."""
    return registry.make_task(sweep.task, sweep.data_root, sweep.budget.image_size)


def gather(sweep: Sweep, outputs: Outputs) -> tuple[list[dict], list[str]]:
    """(records of the sweep's inits on its task at its label fractions, notes): missing runs are run, the rest
    reused.

    Only seeds below ``sweep.seeds`` are kept, so a store with more seeds gives the same table as the command
    asks for. An init with no results (ImageNet weights not available offline) is named in a note.
    """
    run(sweep, Outputs(outputs.store, None, "", outputs.progress))
    fractions = sweep.label_fractions
    records = newest_per_seed(r for r in ResultStore(outputs.store).records(sweep.task, budget=sweep.budget.name,
                                                                            protocol="finetune")  # the paper's
                              if r["init"] in sweep.methods and float(r["label_fraction"]) in fractions
                              and int(r["seed"]) < sweep.seeds)
    notes = [f"{init}: no results (skipped: ImageNet weights are not available offline; pass --imagenet-weights)"
             if init == "imagenet" else f"{init}: no results" for init in sweep.methods
             if not any(r["init"] == init for r in records)]
    for note in notes:
        console.print(f"[yellow]{note}[/yellow]")
    return records, notes


def stamp(command: str, budget: str, task: str, records: list[Mapping[str, Any]], data: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """What produced an output: command, budget, data (by folder name, never the user's path), date, versions."""
    roots = sorted({Path(r["config"]["data_root"]).name for r in records if r.get("config", {}).get("data_root")})
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
                  draw: Callable[[Any], None], extra_csv: Mapping[str, pd.DataFrame] | None = None,
                  records: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """``<name>.md`` (stamp, ``body`` lines), ``<name>.csv`` (``table``), the figure ``draw(fig)`` as
    ``<name>.png/.pdf/.svg``, plus ``<name>-<suffix>.csv`` for each ``extra_csv`` and, given the records behind the
    table, ``<name>.records.jsonl``; every file written atomically."""
    out = Path(out_dir)
    md = [f"# {name}", ""] + [stamp_line(k, v) for k, v in stamp_.items()] + [""] + body + [""]
    paths = [atomic_write_text(out / f"{name}.md", "\n".join(md))]
    header = "".join(f"# {k}: {v}\n" for k, v in stamp_.items())
    paths.append(atomic_write_text(out / f"{name}.csv", header + table.to_csv(index=False)))
    for suffix, frame in (extra_csv or {}).items():
        paths.append(atomic_write_text(out / f"{name}-{suffix}.csv", header + frame.to_csv(index=False)))
    if records:
        paths.append(atomic_write_text(out / f"{name}.records.jsonl", records_jsonl(records)))
    fig = style.render(draw, footer_line(stamp_))
    paths += style.save(fig, out / f"{name}.png").values()
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return paths


def footer_line(stamp_: Mapping[str, Any]) -> str:
    return f"{stamp_['command']} | {stamp_['date'][:10]}"


def draw_dots(ax, df: pd.DataFrame, metric: str) -> None:
    """A leaderboard frame on one axis: every seed as a dot, mean ± 95% CI, stars beside; the axis starts at 0."""
    y = list(range(len(df)))
    style.seed_dots(ax, list(df.itertuples()), y, style.colors(df["init"]), horizontal=True, label_seeds=False)
    right = [max(list(r.values) + [r.mean + (r.ci if pd.notna(r.ci) else 0.0)]) for r in df.itertuples()]
    for i, r in enumerate(df.itertuples()):
        if r.stars:
            ax.annotate(r.stars, (right[i], i), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_xlim(0, max(right) * 1.15 if right and max(right) > 0 else 1.0)
    ax.set_ylim(len(df) - 0.5, -0.5)  # best on top
    ax.set_yticks(y, list(df["init"]), fontsize=8)
    ax.set_xlabel(f"test {metric} (%)")
