"""Ablation (paper Table 2): which of TOWER's parts matter — generative vs contrastive, translation vs mask.

The variants are ordinary method names (``registry.VARIANTS``), so this is the main leaderboard over
them, with the paper's Table 2 beside ours: every Table 2 column, and the paper's rank next to ours.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.analyses import common
from benchmark.core import registry
from benchmark.results import reference as ref
from benchmark.results.leaderboard import CSV_COLUMNS, Board, build_leaderboard, to_markdown
from benchmark.results.report import style
from benchmark.sweep.spec import Outputs, Sweep

INITS = ("random", "imagenet", "moco", "gen-translation", "gen-mask", "gen-both", "con-both", "tower")
# The Table 2 column nearest to each embedded task (same modality and kind).
PAPER_COLUMN = {"synth-fundus": "drive", "synth-fundus-grade": "retinamnist"}


def paper_table2(inits: list[str]) -> pd.DataFrame:
    """The paper's Table 2 for ``inits``: one column per task, ``nan`` where it has no row."""
    rows = {}
    for init in inits:
        name = ref.paper_name(init)
        rows[init] = {t: col[name].mean if name in col else float("nan") for t, col in ref.TABLE2_ABLATION.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def ablation(sweep: Sweep, outputs: Outputs) -> list[Path]:
    """Run what is missing, then write ``ablation-<task>-<budget>.{md,csv,png}`` to ``outputs.boards``."""
    task, budget, command = sweep.task, sweep.budget.name, outputs.command
    records, notes = common.gather(sweep, outputs)
    df = build_leaderboard(records, Board(task, budget), reference="tower")
    df = df[df["kind"] == "init"].reset_index(drop=True)  # an analysis compares inits; the boards keep the floor
    column = PAPER_COLUMN.get(task, task)
    paper = paper_table2(list(df["init"]))
    df["paper"] = [str(ref.TABLE2_ABLATION[column][ref.paper_name(i)]) if column in ref.TABLE2_ABLATION
                   and ref.paper_name(i) in ref.TABLE2_ABLATION[column] else "" for i in df["init"]]
    df["rank"] = df["mean"].rank(ascending=False, method="min").astype(int)
    if column in paper:
        df["paper_rank"] = paper.loc[df["init"], column].rank(ascending=False, method="min").to_numpy()
    name = f"ablation-{task}-{budget}"
    stamp = common.stamp(command, budget, task, records, seeds=sweep.seeds,
                         **{"paper column": f"Table 2, {column}" if column in ref.TABLE2_ABLATION else "none"})
    body = to_markdown(df, stamp, name).split("\n")[len(stamp) + 3:]  # the leaderboard table and legend
    body += ["## The paper's Table 2 (AUC / Dice, %), same rows", ""]
    table2 = paper.reset_index(names="init")
    body += common.markdown_table(table2)
    if "paper_rank" in df:
        body += ["", f"Rank here vs rank in the paper's {column} column: "
                 + ", ".join(f"{r.init} {r.rank}/{fmt_rank(r.paper_rank)}" for r in df.itertuples()) + "."]
    variants = ", ".join(f"`{n}` = {m} {h}" for n, (m, h) in registry.VARIANTS.items())
    body += ["", f"Variants (benchmark/core/registry.py VARIANTS): {variants}; `tower` = both losses, both proxies; "
             "`moco` = MoCo-v2 with classic augmentations."] + [f"- note: {n}" for n in notes]
    table = df[CSV_COLUMNS + ["rank"] + (["paper_rank"] if "paper_rank" in df else [])].copy()
    table["paper"] = df["paper"]
    for t in paper.columns:
        table[f"paper_{t}"] = paper.loc[df["init"], t].to_numpy()

    return common.write_outputs(outputs.boards, name, stamp, table, body, lambda fig: draw(fig, df, paper, column),
                                records=records)


def draw(fig, df: pd.DataFrame, paper: pd.DataFrame, column: str) -> None:
    """Our seeds (left) beside the paper's Table 2 column for the same rows (right), both from 0."""
    fig.set_size_inches(10.0, 4.5)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1], sharey=True)
    common.draw_dots(ax, df, df.attrs["metric"])
    style.axis_title(ax, "here: every seed, mean ± 95% CI; stars vs tower")
    col = paper.loc[df["init"], column] if column in paper else pd.Series(float("nan"), index=df["init"])
    colors = style.colors(df["init"])
    shown = col.notna().to_numpy()
    ax2.scatter(col.to_numpy()[shown], [i for i, s in enumerate(shown) if s], marker="D", s=30,
                color=[colors[i] for i, s in zip(df["init"], shown) if s], edgecolor="black", zorder=3)
    ax2.set_xlim(0, max(ax.get_xlim()[1], (col.max() if shown.any() else 0) * 1.1))
    ax2.tick_params(labelleft=False)
    ax2.set_xlabel("paper (%)")
    style.axis_title(ax2, f"paper Table 2, {column} (same rows)" if shown.any() else "paper Table 2: no such column")


def fmt_rank(r) -> str:
    return "–" if pd.isna(r) else str(int(r))
