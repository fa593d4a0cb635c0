"""Encoder/decoder mixing (paper Fig. 7): does a pretrained decoder help segmentation, and whose?

A pair ``X+Y`` fine-tunes with the encoder of init X and the decoder of init Y (``--init X
--init-decoder Y``). ``X+X`` is plain init X (its own decoder when its method trained one), so it
reuses X's records. Significance marks are vs the first pair (default tower+tower).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmark.analyses import common
from benchmark.analyses.convergence import body_table, by_init, convergence_table, draw_curves
from benchmark.core import registry
from benchmark.errors import ConfigError
from benchmark.finetuning.inits import imagenet_weights_reachable
from benchmark.results.leaderboard import CSV_COLUMNS, Board, build_leaderboard, to_markdown
from benchmark.results.report import style
from benchmark.results.store import ResultStore
from benchmark.sweep.run import finetune_config, finetune_stored, pretrained_init
from benchmark.sweep.spec import Outputs, Sweep

PAIRS = ("tower+tower", "tower+random", "con-both+random", "con-both+gen-both", "gen-both+gen-both",
         "imagenet+gen-both", "random+random")


def parse_pair(pair: str) -> tuple[str, str]:
    """``"X+Y"`` -> (X, Y); a plain ``X`` is ``X+X``."""
    parts = pair.split("+")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"--pairs: expected ENCODER+DECODER (e.g. con-both+random), got {pair!r}")
    return parts[0], parts[-1]


def mixing(sweep: Sweep, outputs: Outputs, pairs: list[str]) -> list[Path]:
    """Run what is missing for each ENCODER+DECODER pair, then write ``mixing-<task>-<budget>.{md,csv,png}`` to
    ``outputs.boards`` (the sweep's own methods are not used: the pairs name the inits)."""
    task, budget, seeds, progress = sweep.task, sweep.budget.name, sweep.seeds, outputs.progress
    task_obj = common.load_task(sweep)
    if task_obj.kind != "segmentation":
        raise ConfigError(f"mixing needs a segmentation task (a decoder to mix); {task} is {task_obj.kind}")
    parsed = [parse_pair(p) for p in pairs]
    wants_imagenet = any("imagenet" in pair for pair in parsed)
    have_imagenet = sweep.imagenet_weights is not None or (wants_imagenet and
                                                           imagenet_weights_reachable(sweep.budget.encoder))
    notes = [f"{x}+{y}: skipped, ImageNet weights are not available offline (pass --imagenet-weights)"
             for x, y in parsed if "imagenet" in (x, y) and not have_imagenet]
    parsed = [(x, y) for x, y in parsed if have_imagenet or "imagenet" not in (x, y)]
    plain = sorted({x for x, y in parsed if x == y})
    records, more = common.gather(sweep.replace(methods=tuple(plain)), outputs)
    notes += more
    records = [{**r, "init": f"{r['init']}+{r['init']}"} for r in records]
    exports: dict[str, tuple[str, str | None]] = {}

    def export(name: str) -> tuple[str, str | None]:
        if name not in exports:
            pretrained = name in registry.METHODS or name in registry.VARIANTS
            exports[name] = (pretrained_init(name, task_obj, task, sweep.budget, sweep.data_root, progress) if pretrained
                             else (name, None))
        return exports[name]

    results = ResultStore(outputs.store)
    for x, y in parsed:
        if x == y:
            continue
        (enc, enc_hash), (dec, dec_hash) = export(x), export(y)
        for seed in range(seeds):
            cfg = finetune_config(sweep, task_obj, task, enc, seed, 1.0, sweep.data_root,
                                  None if enc_hash is None else (enc_hash, 0))
            cfg = dataclasses.replace(cfg, init_decoder=dec, extra={**cfg.extra, "decoder": y,
                                                                   "decoder_pretrain_hash": dec_hash})
            records.append(finetune_stored(results, cfg, task_obj, f"{x}+{y}", progress))
    labels = [f"{x}+{y}" for x, y in parsed]
    df = build_leaderboard(records, Board(task, budget), reference=labels[0])
    df = df[df["kind"] == "init"].reset_index(drop=True)  # an analysis compares inits; the boards keep the floor
    df["paper"] = ""
    groups = by_init(records)
    conv = convergence_table(groups)
    name = f"mixing-{task}-{budget}"
    stamp = common.stamp(outputs.command, budget, task, records, seeds=seeds, pairs=",".join(labels))
    body = ["Rows are ENCODER+DECODER: the encoder of the first init, the decoder of the second "
            "(X+X = plain init X). Test Dice, mean ± std over seeds; marks vs the first pair.", ""]
    body += to_markdown(df, stamp, name).split("\n")[len(stamp) + 3:]
    body += ["## Convergence of the same runs", ""] + body_table(conv) + [f"- note: {n}" for n in notes]
    table = df[CSV_COLUMNS].merge(conv[["init", "best_epoch_mean", "best_epoch_std", "auc_mean", "auc_std", "horizon"]],
                                  on="init", how="left")

    return common.write_outputs(outputs.boards, name, stamp, table, body, lambda fig: draw(fig, df, groups, labels))


def draw(fig, df, groups: dict[str, list[dict]], labels: list[str]) -> None:
    """Test scores (left) beside the validation curves of the same runs (right)."""
    fig.set_size_inches(11.0, 4.5)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.3])
    common.draw_dots(ax, df, df.attrs["metric"])
    style.axis_title(ax, f"test: every seed, mean ± 95% CI; stars vs {labels[0]}")
    draw_curves(ax2, groups, style.colors(labels), df.attrs["metric"])
    style.axis_title(ax2, "validation curves (thin: each seed; dots: best, x: stopped)")
