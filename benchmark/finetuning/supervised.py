"""The positive control ``supervised``: the U-Net trained with the fine-tuning loss on a labelled pool, at the
pretraining budget's compute (its steps and batch size), and exported like a pretraining.

A board that finds no pretraining helps is worth something only if an init that *must* help does: weights that
already solved the task on many labelled images. If ``supervised`` does not beat random init clearly at the
smallest label fraction, the fine-tuning protocol washes initialisations out, whatever the method. Its labelled
pool is ``Task.supervised_split`` (synth-fundus: the unlabelled pool's free masks, disjoint from every labelled
split; a real task: its whole training split), never validation or test images; validation picks its checkpoint,
as it does for every fine-tuning.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmark.core.config import Budget, FinetuneConfig
from benchmark.core.names import SUPERVISED
from benchmark.finetuning.protocols import Classifier, build_model, class_prior
from benchmark.finetuning.scoring import validation
from benchmark.finetuning.training import image_batches, train_loop
from benchmark.tasks.base import Task
from zoo.io import atomic_write_text

EXPORT = "export"


def supervised_config(b: Budget, task: Task, task_name: str, data_root: Path | None, seed: int = 0) -> FinetuneConfig:
    """The fine-tuning config of the control: the budget's fine-tuning loss and lr, its pretraining's steps and
    batch; checks at the fine-tuning cadence, no early stop (it trains every step it is given)."""
    optim = b.pretrain_optim(task.kind)
    steps = max(b.pretrain_min_steps, 1) if b.pretrain_max_steps is None else b.pretrain_max_steps
    return FinetuneConfig.from_budget(
        b, task, task_name, init="random", seed=seed, data_root=data_root, batch_size=optim.batch_size, epochs=1, min_steps=steps,
        stop_after=steps, plateau_share=0.0, plateau_margin=0.0, extra={"control": SUPERVISED})


def default_out(cfg: FinetuneConfig) -> Path:
    return Path("runs") / "pretrain" / f"{SUPERVISED}-{cfg.task}-{cfg.hash()}-s{cfg.seed}"


def train_supervised(cfg: FinetuneConfig, task: Task, out: Path, progress: bool = True,
                     device: torch.device | None = None) -> Path:
    """Train the control on ``task.supervised_split()`` and export it to ``out/export``; returns that folder."""
    from zoo.hub import save_pretrained

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pool, val = task.supervised_split(), task.load("val")
    model = build_model(cfg, task, class_prior(pool, task.kind, task.num_classes)).to(device)
    if cfg.fast:
        model = model.to(memory_format=torch.channels_last)

    checks = validation(cfg, val, task.kind, task.num_classes, pool, device)
    floor = checks.floor
    trained = train_loop(cfg, model, len(pool), image_batches(cfg, pool, task.kind, device), checks, task.kind,
                         device, progress)
    net = model.net if isinstance(model, Classifier) else model  # a classifier exports its U-Net, not its head
    net = net.cpu().to(memory_format=torch.contiguous_format)
    health = {"passed": bool(trained.best > floor), "supervised_val": trained.best, "supervised_val_floor": floor,
              "supervised_images": len(set(pool.sources)), "metric": task.metric}
    info = {"config": cfg.hashed_fields(), "hash": cfg.hash(), "task": cfg.task, "n_images": len(pool),
            "steps": trained.steps, "global_batch": cfg.batch_size, "world_size": 1, "health": health,
            "labelled_pool": task.supervised_note}
    path = Path(save_pretrained(net, out / EXPORT, method=SUPERVISED, trains_decoder=True, pretrain=info))
    atomic_write_text(out / "curve.json", json.dumps(trained.record()))
    return path
