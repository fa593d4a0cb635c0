"""``tower-bench analyse ...``: the paper's analyses beyond the main leaderboard, one command each.

Each reads the results store (running only what is missing through ``benchmark.sweep.run``) and writes
Markdown + CSV + PNG, stamped with the command. An unset list option (``--inits`` ...) takes the
analysis's own default from its module in ``benchmark/analyses``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import typer

from benchmark.cli.options import (
    DEFAULT_BOARDS,
    DEFAULT_BUDGET,
    DEFAULT_STORE,
    Boards,
    Budget,
    DataRoot,
    Download,
    Fractions,
    ImagenetWeights,
    Inits,
    Ks,
    Modality,
    NBoot,
    NumClasses,
    PairedSeeds,
    Pairs,
    Progress,
    References,
    Seeds,
    SplitSeed,
    Store,
    Task,
    resolve_tasks,
    split_list,
)

app = typer.Typer(help="Analyses: ablation (Table 2), label efficiency (Fig. 11), convergence (Fig. 6/7), "
                  "encoder/decoder mixing (Fig. 7), representations (Fig. 10).", no_args_is_help=True)


def _list(spec: str | None, default: Sequence, cast: Callable[[str], Any] = str) -> list:
    return list(default) if spec is None else split_list(spec, cast)


def _path_str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _own(task: str, data_root: Path | None, modality: str | None, num_classes: int | None,
         split_seed: int | None, download: bool = False) -> tuple[str, Path | None]:
    """(task name, data root): own data (a CSV or folder) becomes its task, its manifest the data root;
    ``download`` fetches a task's missing files first."""
    from benchmark.core import registry
    from benchmark.sweep.run import fetch

    task = resolve_tasks(task, modality, num_classes, split_seed)
    if download:
        fetch(task, data_root)
    return task, registry.own_manifest(task) or data_root


@app.command("ablation")
def ablation_command(
    task: Task = "synth-fundus",
    budget: Budget = DEFAULT_BUDGET,
    seeds: PairedSeeds = 3,
    inits: Inits = None,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    progress: Progress = False,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Paper Table 2: TOWER's variants (gen-translation, gen-mask, gen-both, con-both) vs tower, moco, random."""
    from benchmark.analyses import ablation
    from benchmark.sweep.run import command_line

    task, data_root = _own(task, data_root, modality, num_classes, split_seed, download)
    ablation.ablation(task, budget, seeds, store, out, _list(inits, ablation.INITS), data_root,
                      _path_str(imagenet_weights), command_line(), progress)


@app.command("label-efficiency")
def label_efficiency_command(
    task: Task = "synth-fundus-grade",
    budget: Budget = DEFAULT_BUDGET,
    seeds: Seeds = 3,
    inits: Inits = None,
    fractions: Fractions = None,
    references: References = None,
    n_boot: NBoot = 2000,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    progress: Progress = False,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Paper Fig. 11: metric vs label fraction, and the labels each init needs to match random init at 100%."""
    from benchmark.analyses import label_efficiency as le
    from benchmark.sweep.run import command_line

    task, data_root = _own(task, data_root, modality, num_classes, split_seed, download)
    le.label_efficiency(task, budget, seeds, store, out, _list(inits, le.INITS), _list(fractions, le.FRACTIONS, float),
                        _list(references, le.REFERENCES), n_boot, data_root, _path_str(imagenet_weights),
                        command_line(), progress)


@app.command("convergence")
def convergence_command(
    task: Task = "synth-fundus",
    budget: Budget = DEFAULT_BUDGET,
    seeds: Seeds = 3,
    inits: Inits = None,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    progress: Progress = False,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Paper Fig. 6/7: mean validation curves per init, epochs to best and area under the curve."""
    from benchmark.analyses import convergence
    from benchmark.sweep.run import command_line

    task, data_root = _own(task, data_root, modality, num_classes, split_seed, download)
    convergence.convergence(task, budget, seeds, store, out, _list(inits, convergence.INITS), data_root,
                            _path_str(imagenet_weights), command_line(), progress)


@app.command("mixing")
def mixing_command(
    task: Task = "synth-fundus",
    budget: Budget = DEFAULT_BUDGET,
    seeds: Seeds = 3,
    pairs: Pairs = None,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    progress: Progress = False,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Paper Fig. 7: segmentation with one init's encoder and another's decoder (e.g. con-both+random)."""
    from benchmark.analyses import mixing
    from benchmark.sweep.run import command_line

    task, data_root = _own(task, data_root, modality, num_classes, split_seed, download)
    mixing.mixing(task, budget, seeds, store, out, _list(pairs, mixing.PAIRS), data_root,
                  _path_str(imagenet_weights), command_line(), progress)


@app.command("representations")
def representations_command(
    task: Task = "synth-fundus-grade",
    budget: Budget = DEFAULT_BUDGET,
    inits: Inits = None,
    ks: Ks = None,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    out: Boards = DEFAULT_BOARDS,
    progress: Progress = False,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Paper Fig. 10: t-SNE of pretrained encoder features coloured by class, and k-NN accuracy per init."""
    from benchmark.analyses import representations as rep
    from benchmark.sweep.run import command_line

    task, data_root = _own(task, data_root, modality, num_classes, split_seed, download)
    rep.representations(task, budget, out, _list(inits, rep.INITS), _list(ks, rep.KS, int), data_root,
                        _path_str(imagenet_weights), command_line(), progress)
