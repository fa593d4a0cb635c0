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


def _sweep(inits: Sequence[str], task: str, budget: str, data_root: Path | None, imagenet_weights: Path | None,
           modality: str | None, num_classes: int | None, split_seed: int | None, download: bool, **fields: Any):
    """The analysis's Sweep: own data (a CSV or folder) becomes its task and its manifest the data root;
    ``download`` fetches a task's missing files first."""
    from benchmark.core import registry
    from benchmark.sweep.run import fetch
    from benchmark.sweep.spec import Sweep

    task = resolve_tasks(task, modality, num_classes, split_seed)
    if download:
        fetch(task, data_root)
    return Sweep.resolve(inits, task, budget, data_root=registry.own_manifest(task) or data_root,
                         imagenet_weights=imagenet_weights, **fields)


def _outputs(store: Path, out: Path, progress: bool):
    from benchmark.sweep.run import command_line
    from benchmark.sweep.spec import Outputs

    return Outputs(store, out, command_line(), progress)


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

    ablation.ablation(_sweep(_list(inits, ablation.INITS), task, budget, data_root, imagenet_weights, modality,
                             num_classes, split_seed, download, seeds=seeds), _outputs(store, out, progress))


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

    sweep = _sweep(_list(inits, le.INITS), task, budget, data_root, imagenet_weights, modality, num_classes,
                   split_seed, download, seeds=seeds, label_fractions=_list(fractions, le.FRACTIONS, float))
    le.label_efficiency(sweep, _outputs(store, out, progress), _list(references, le.REFERENCES), n_boot)


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

    convergence.convergence(_sweep(_list(inits, convergence.INITS), task, budget, data_root, imagenet_weights,
                                   modality, num_classes, split_seed, download, seeds=seeds),
                            _outputs(store, out, progress))


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

    mixing.mixing(_sweep((), task, budget, data_root, imagenet_weights, modality, num_classes, split_seed, download,
                         seeds=seeds), _outputs(store, out, progress), _list(pairs, mixing.PAIRS))


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

    rep.representations(_sweep(_list(inits, rep.INITS), task, budget, data_root, imagenet_weights, modality,
                               num_classes, split_seed, download), _outputs(DEFAULT_STORE, out, progress),
                        _list(ks, rep.KS, int))
