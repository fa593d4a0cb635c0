"""``tower-bench run``: pretrain (once per method and budget) -> fine-tune each seed -> store -> leaderboard.

Every step is skipped when its output already exists, so a killed sweep is rerun with the same
command and picks up where it stopped: finished exports and result records are reused, a
pretraining run with a checkpoint resumes.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.console import Console

from zoo.hub import imagenet_weights_reachable

from . import registry
from .config import PretrainConfig, budget as get_budget
from .finetune import FinetuneConfig, finetune
from .pretrain import CHECKPOINT, EXPORT, default_out, pretrain, resolve
from .store import ResultStore, key_of
from .tasks.base import DataError, Task

INITS = ("random", "imagenet")
console = Console(stderr=True)


def expand_methods(spec: str) -> list[str]:
    """``all`` = every registered method plus random init (and ImageNet init when its weights are at hand)."""
    if spec == "all":
        return list(registry.METHODS) + ["random", "imagenet"]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    known = list(registry.METHODS) + list(registry.VARIANTS) + list(INITS)
    for name in names:
        if name not in known and not Path(name).exists() and "/" not in name:
            raise KeyError(f"unknown method {name!r}; valid: {', '.join(known)}, a weights folder or a Hub id")
    return names


def expand_tasks(spec: str) -> list[str]:
    if spec == "all":
        return list(registry.TASKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        registry.task_class(name)  # raises with the valid names
    return names


def task_root(data_root: Path | None, task: str, several: bool) -> Path | None:
    """With several tasks, ``--data-root`` is a parent folder holding one sub-folder per task."""
    if data_root is None or not several:
        return data_root
    return data_root / task if (data_root / task).exists() else data_root


def pretrained_init(method: str, task: Task, task_name: str, budget: str, data_root: Path | None,
                    progress: bool) -> tuple[str, str]:
    """(weights folder, pretraining hash) for ``method`` (or a variant) on ``task``: reused, resumed or trained."""
    base, hparams = registry.method_spec(method)
    cfg = PretrainConfig.from_budget(budget, task.kind, method=base, hparams=hparams, task=task_name,
                                     data_root=None if data_root is None else str(data_root))
    images = task.pretrain_images()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as pretrain() picks it
    cfg = resolve(cfg, cfg.image_size or int(images.shape[-1]), device)
    out = default_out(cfg)
    export = out / EXPORT
    if (export / "config.json").exists():
        console.print(f"[dim]{method}: reusing pretrained weights {export}[/dim]")
        return str(export), cfg.hash()
    resume = (out / CHECKPOINT).exists()
    console.print(f"[bold]{method}[/bold]: {'resuming' if resume else 'pretraining'} on {task_name} "
                  f"({len(images)} training images, budget {budget}) -> {out}")
    pretrain(cfg.replace(out=str(out)), images=images, modality=task.modality, resume=resume, progress=progress)
    return str(export), cfg.hash()


def finetune_config(budget: str, task: Task, task_name: str, init: str, seed: int, label_fraction: float,
                    data_root: Path | None, pretrain_hash: str | None, imagenet_weights: str | None) -> FinetuneConfig:
    b = get_budget(budget)
    optim = b.finetune_optim(task.kind)
    return FinetuneConfig(
        task=task_name, init=init, encoder=b.encoder, image_size=task.image_size, epochs=b.finetune_epochs(task.kind),
        batch_size=optim.batch_size, lr=optim.lr, patience=b.finetune_patience, seed=seed,
        label_fraction=label_fraction, budget=budget, data_root=None if data_root is None else str(data_root),
        imagenet_weights=imagenet_weights, decoder_channels=b.decoder_channels or FinetuneConfig.decoder_channels,
        extra={} if pretrain_hash is None else {"pretrain_hash": pretrain_hash},
    )


def finetune_stored(store: ResultStore, cfg: FinetuneConfig, task: Task, name: str, progress: bool) -> dict:
    """The record of ``cfg`` stored under init ``name``: read from the store, or fine-tuned and stored."""
    key = key_of({"task": cfg.task, "init": name, "seed": cfg.seed, "label_fraction": cfg.label_fraction,
                  "budget": cfg.budget, "config_hash": cfg.hash()})
    if store.has(key):
        return store.get(key)
    record = finetune(cfg, task, progress=progress)
    record["init"] = name
    store.put(record)
    console.print(f"{cfg.task} {name} seed {cfg.seed} fraction {cfg.label_fraction}: "
                  f"{record['metric']} {record['value']:.2f} ({record['epochs_run']} epochs, "
                  f"{record['wall_time_s']:.0f} s)")
    return record


def run(methods: list[str], tasks: list[str], seeds: int, budget: str, data_root: Path | None,
        store_root: Path, leaderboard_dir: Path | None, label_fractions: list[float], reference: str,
        imagenet_weights: str | None, command: str, progress: bool = True) -> list[Path]:
    """The whole benchmark; returns the leaderboard files written (none when ``leaderboard_dir`` is None)."""
    from .leaderboard import refresh_leaderboard

    store = ResultStore(store_root)
    b = get_budget(budget)
    written: list[Path] = []
    for task_name in tasks:
        root = task_root(data_root, task_name, len(tasks) > 1)
        task = registry.task_class(task_name)(root, b.image_size)
        try:
            task.load("train")
        except DataError as err:
            if len(tasks) == 1:
                raise
            console.print(f"[yellow]skipping {task_name}: {err}[/yellow]")
            continue
        for method in methods:
            pretrain_hash = None
            if method == "imagenet" and imagenet_weights is None and not imagenet_weights_reachable(b.encoder):
                if len(methods) == 1:
                    raise FileNotFoundError(f"--init imagenet: timm's ImageNet weights for {b.encoder} are not in the "
                                            "Hugging Face cache and the Hub is unreachable; pass --imagenet-weights FILE")
                console.print(f"[yellow]skipping imagenet init: timm's weights for {b.encoder} are not cached and the "
                              "Hub is unreachable (pass --imagenet-weights FILE.safetensors)[/yellow]")
                continue
            if method in registry.METHODS or method in registry.VARIANTS:
                init, pretrain_hash = pretrained_init(method, task, task_name, budget, root, progress)
            else:
                init = method
            for fraction in label_fractions:
                for seed in range(seeds):
                    cfg = finetune_config(budget, task, task_name, init, seed, fraction, root, pretrain_hash,
                                          imagenet_weights)
                    finetune_stored(store, cfg, task, method, progress)
        for fraction in label_fractions if leaderboard_dir is not None else ():
            name = f"{task_name}-{budget}" + ("" if fraction == 1.0 else f"-{int(round(fraction * 100))}pct")
            written += refresh_leaderboard(task_name, store_root, leaderboard_dir, reference=reference, budget=budget,
                                           label_fraction=fraction, name=name, command=command)
    return written


def run_command(
    method: str = typer.Option("tower", "--method", help="a method, an ablation variant (gen-translation, gen-mask, gen-both, con-both), a comma-separated list, random, imagenet, or all"),
    task: str = typer.Option("synth-fundus", "--task", help="a task, a comma-separated list, or all"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="fine-tuning seeds per init (the paper: 10)"),
    budget: str = typer.Option("cpu", "--budget", help="smoke | cpu | paper"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="the task's data folder (a parent of one folder per task with --task all)"),
    label_fraction: list[float] = typer.Option([1.0], "--label-fraction", help="repeat for several fractions"),
    store: Path = typer.Option(Path("runs/results"), "--store", help="results store (one JSON per run)"),
    out: Path = typer.Option(Path("leaderboards"), "--out", help="where leaderboards are written"),
    reference: str = typer.Option("tower", "--reference", help="the init significance marks compare against"),
    imagenet_weights: Optional[Path] = typer.Option(None, "--imagenet-weights", help="timm ImageNet weights (.safetensors) for offline machines"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Pretrain -> fine-tune every seed -> store -> leaderboard; a rerun skips what is done."""
    for fraction in label_fraction:
        if not 0 < fraction <= 1:
            raise ValueError(f"--label-fraction must be in (0, 1], got {fraction}")
    command = "tower-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = run(expand_methods(method), expand_tasks(task), seeds, budget, data_root, store, out, label_fraction,
                reference, None if imagenet_weights is None else str(imagenet_weights), command, progress)
    console.print("leaderboard files: " + ", ".join(str(p) for p in paths))
