"""The one pretraining loop for every method: views -> loss -> Adam + cosine -> checkpoint -> export.

Single process::

    tower-bench pretrain --method tower --task drive --data-root DATA/DRIVE --budget paper

Several GPUs on one machine (``--gpus N`` re-launches the command under torchrun)::

    tower-bench pretrain --method tower --task drive --gpus 4

Several machines: start the same command on every node under torchrun yourself (same
``--rdzv-id``, an endpoint every node reaches, ``--out`` on a shared file system: rank 0 writes)::

    torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK \\
        --rdzv-backend c10d --rdzv-endpoint $HEAD_NODE:29500 --rdzv-id tower-chexpert \\
        -m benchmark pretrain --method tower --task chexpert --data-root DATA/CheXpert --out runs/x

(tests/benchmark/test_multinode.py runs this with two nodes on 127.0.0.1 and gloo.)

``--batch-size`` is the global batch, split evenly over the ranks; BatchNorm uses global-batch
statistics and contrastive negatives are gathered from all ranks, so N processes compute the
same loss and gradients as one. A killed run continues exactly with ``--resume``.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from benchmark.core import registry
from benchmark.core.config import PretrainConfig
from benchmark.core.schedule import adam_cosine
from benchmark.errors import ExistingOutputError, NonFiniteLossError, batch_too_large, torch_oom
from benchmark.pretraining.batches import Batches, load_images, plan
from benchmark.pretraining.build import build_method, distribute
from benchmark.pretraining.checkpoint import Resumable, append_metrics, remove_stale_temps, truncate_metrics
from benchmark.pretraining.health import health_check, holdout_split, mean_image, measure
from benchmark.pretraining.runtime import (
    init_distributed,
    mean_over_ranks,
    pick_device,
    torch_settings,
    tune_malloc,
    view_generator,
)
from zoo.distributed import rank, world_size
from zoo.health import describe
from zoo.io import atomic_write, atomic_write_text

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EXPORT = "export"


def default_out(cfg: PretrainConfig) -> Path:
    return Path("runs") / "pretrain" / f"{cfg.method}-{cfg.task}-{cfg.hash()}"


def resolve(cfg: PretrainConfig, image_size: int, device: torch.device | None = None,
            n_images: int | None = None) -> PretrainConfig:
    """Fill in what defaults stood for (hyper-parameters, the method's code revision, image size, bf16 ...),
    so the hash names the run.

    With ``n_images`` (the pretraining set's size) the method fits its hyper-parameters to the data and
    the run's length (``PretrainMethod.fit_to_data``: MoCo's queue, EMA momenta).
    """
    cuda = (device or pick_device(cfg)).type == "cuda"
    hparams = {**registry.method_class(cfg.method).hparams(), **cfg.hparams}
    if n_images:
        batch, _, total = plan(n_images, cfg, world_size())
        hparams = registry.method_class(cfg.method).fit_to_data(hparams, n_images, batch, total)
    return cfg.replace(
        hparams=hparams, image_size=image_size, method_revision=registry.method_class(cfg.method).revision,
        bf16=cuda if cfg.bf16 is None else cfg.bf16,
        channels_last=cuda if cfg.channels_last is None else cfg.channels_last,
    )


def pretrain(cfg: PretrainConfig, *, images: torch.Tensor | None = None, modality: str | None = None,
             resume: bool = False, progress: bool = True) -> Path:
    """Pretrain ``cfg.method`` on ``images`` (uint8 (N, C, H, W); default: ``cfg.task``'s training split).

    Returns the folder of the exported U-Net (``UNet.from_pretrained`` loads it). Under torchrun
    every rank calls this; only rank 0 writes files and prints.
    """
    tune_malloc()
    device, created_group = init_distributed(cfg)
    try:
        with torch_settings(cfg):
            return _pretrain(cfg, device, images, modality, resume, progress)
    finally:
        if created_group:
            dist.destroy_process_group()


@dataclass
class _Run:
    """One run's resolved plan and the objects its steps share."""

    cfg: PretrainConfig
    out: Path
    device: torch.device
    batch: int
    per_epoch: int
    total: int
    n_images: int
    n_health: int
    held: bool  # whether the health-check images were held out of training
    parts: Resumable
    step_fn: nn.Module
    held_out: torch.Tensor
    average: torch.Tensor | None  # rank 0 only: the health check's mean-image baseline
    untrained: dict | None  # rank 0 only: the health check's numbers for this network before any step
    say: Callable[[str], None]
    progress: bool

    @property
    def ckpt_path(self) -> Path:
        return self.out / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.out / METRICS


def _pretrain(cfg: PretrainConfig, device: torch.device, images: torch.Tensor | None, modality: str | None,
              resume: bool, progress: bool) -> Path:
    if images is None:
        images, task_modality = load_images(cfg)
        modality = modality or task_modality
    cfg = resolve(cfg, cfg.image_size or int(images.shape[-1]), device, len(images))
    run = _prepare(cfg, device, images, modality or "generic", resume, progress)
    step, last_loss = _start(run, resume)
    health, last_loss = _train(run, step, last_loss)
    if rank() != 0:
        return run.out / EXPORT
    return _export(run, health, last_loss)


def _prepare(cfg: PretrainConfig, device: torch.device, images: torch.Tensor, modality: str, resume: bool,
             progress: bool) -> _Run:
    """The run's plan, its method, optimizer and sampler, and the health check's held-out images."""
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    train_idx, check_idx, held = holdout_split(len(images), cfg.health_holdout)
    held_images, images = images[check_idx], images[train_idx]
    batch, per_epoch, total = plan(len(images), cfg, world_size())
    if (out / CHECKPOINT).exists() and not resume:
        raise ExistingOutputError(f"{out / CHECKPOINT} exists; pass --resume to continue it or choose another --out")

    say = _printer(rank() == 0 and progress)
    say(f"pretrain config {cfg.hash()}: {json.dumps(cfg.to_dict())}")
    checked = f"+{len(held_images)} held out" if held else f"{len(held_images)} of them"
    say(f"{len(images)} images ({checked} for the health check), global batch {batch} on "
        f"{world_size()} process(es) ({device}), "
        f"{per_epoch} steps/epoch, {total} steps -> {out}")

    method, step_fn = distribute(build_method(cfg, int(images.shape[1]), modality), device, bool(cfg.channels_last))
    if cfg.compile:
        method.net.compile()
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer, scheduler = adam_cosine(params, cfg.lr, cfg.weight_decay, total, cfg.warmup_steps)
    view_gen = view_generator(cfg.seed, device)
    batches = Batches(images, batch, per_epoch, cfg.seed, device, cfg.image_size)
    held_out = batches.prepare(held_images)
    if cfg.channels_last:
        held_out = held_out.contiguous(memory_format=torch.channels_last)
    average = mean_image(images, batches.prepare) if rank() == 0 else None
    untrained = measure(method, held_out) if rank() == 0 else None  # before a resume restores the trained weights
    return _Run(cfg, out, device, batch, per_epoch, total, len(images), len(held_images), held,
                Resumable(method, optimizer, scheduler, batches, view_gen, device), step_fn, held_out, average,
                untrained, say, progress)


def _start(run: _Run, resume: bool) -> tuple[int, float | None]:
    """(first step, last logged loss): from the checkpoint when resuming one, else a fresh metrics log."""
    if resume and rank() == 0:
        remove_stale_temps(run.ckpt_path)
    if resume and run.ckpt_path.exists():
        step, last_loss = run.parts.restore(run.ckpt_path, run.cfg.hash()), None
        if rank() == 0:
            kept = truncate_metrics(run.metrics_path, step)
            last_loss = kept[-1]["loss"] if kept else None
        run.say(f"resumed from step {step}")
        return step, last_loss
    if resume:
        run.say(f"no checkpoint in {run.out}; starting from step 0")
    if rank() == 0:
        atomic_write_text(run.metrics_path, "")
    return 0, None


def _train(run: _Run, step: int, last_loss: float | None) -> tuple[dict | None, float | None]:
    """Steps from ``step`` to the end, checkpointing on the way; (last health check, last loss)."""
    health, pending = None, []
    run.parts.method.train()
    try:
        with _progress(rank() == 0 and run.progress, run.total, step) as advance:
            while step < run.total:
                t0 = time.perf_counter()
                logged, lr = _step(run, step)
                step += 1
                speed = run.batch / (time.perf_counter() - t0)
                pending.append({"step": step, "epoch": (step - 1) // run.per_epoch, "lr": lr, **logged,
                                "images_per_s": speed})
                last_loss = logged["loss"]
                advance(logged["loss"], speed)
                if step % run.cfg.checkpoint_every == 0 or step == run.total:
                    health = _save(run, step, pending)
    except torch_oom() as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        kept = f"; the last checkpoint stays in {run.ckpt_path}" if run.ckpt_path.exists() else ""
        raise batch_too_large("pretraining", run.batch, f"step {step + 1} on {run.device}{kept}",
                              world_size()) from err
    return health, last_loss


def _step(run: _Run, step: int) -> tuple[dict[str, float], float]:
    """One optimizer step on global batch ``step``: (loss parts averaged over ranks, its learning rate)."""
    method, optimizer = run.parts.method, run.parts.optimizer
    x = run.parts.batches.get(step)
    if run.cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        views = method.views(x, run.parts.view_gen)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=bool(run.cfg.bf16)):
        parts = run.step_fn(x, views)
    logged = mean_over_ranks({k: v.detach().float() for k, v in parts.items()})
    if not all(math.isfinite(v) for v in logged.values()):
        shown = ", ".join(f"{k}={v:.4g}" for k, v in logged.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step + 1} ({shown}); nothing saved, "
            f"last good checkpoint: {run.ckpt_path if run.ckpt_path.exists() else 'none'}"
        )
    lr = optimizer.param_groups[0]["lr"]
    optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward()
    optimizer.step()
    run.parts.scheduler.step()
    method.after_step(step, run.total)
    return logged, lr


def _save(run: _Run, step: int, pending: list[dict]) -> dict | None:
    """Health check, the pending metrics rows, then the checkpoint (rank 0 writes); the health on rank 0."""
    rng = run.parts.gather_rng()
    if rank() != 0:
        return None
    health = health_check(run.parts.method, run.held_out, run.average, run.untrained)
    if pending:
        pending[-1]["health"] = health
    run.say(f"step {step}: health {describe(health)}")
    state = run.parts.state(step, run.cfg, rng)
    append_metrics(run.metrics_path, pending)  # first: a resume drops rows past the checkpoint's step
    pending.clear()
    atomic_write(run.ckpt_path, lambda p: torch.save(state, p))
    return health


def _export(run: _Run, health: dict | None, last_loss: float | None) -> Path:
    """Rank 0's export of the U-Net with the run's description: ``UNet.from_pretrained`` loads it."""
    from zoo.hub import save_pretrained  # lazy: the loop does not depend on hub until it exports

    method, cfg = run.parts.method, run.cfg
    if health is None:  # resumed at the last step: nothing left to train, check it now
        health = health_check(method, run.held_out, run.average, run.untrained)
    info = {"config": cfg.protocol(), "hash": cfg.hash(), "task": cfg.task, "n_images": run.n_images,
            "n_health": run.n_health, "health_held_out": run.held, "steps": run.total, "global_batch": run.batch,
            "world_size": world_size(), "final_loss": last_loss, "health": health}
    path = Path(save_pretrained(method.export(), run.out / EXPORT, method=cfg.method,
                                trains_decoder=method.trains_decoder, pretrain=info))
    run.say(f"exported {path}")
    return path


def _printer(enabled: bool):
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)
    return (lambda msg: console.print(msg, highlight=False, markup=False)) if enabled else (lambda msg: None)


@contextmanager
def _progress(enabled: bool, total: int, start: int):
    """A rich progress bar with loss, images/s and ETA; yields ``advance(loss, images_per_s)``."""
    if not enabled:
        yield lambda loss, speed: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} img/s"),
                  TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task("pretrain", total=total, completed=start, loss="-", speed="-")
        yield lambda loss, speed: bar.update(task, advance=1, loss=f"{loss:.4f}", speed=f"{speed:.1f}")
