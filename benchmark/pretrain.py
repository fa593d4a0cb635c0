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

import ctypes
import json
import math
import os
import pickle
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zoo import PretrainMethod, UNet, convert_sync_batchnorm
from zoo.io import atomic_write, atomic_write_text

from . import registry
from .config import PretrainConfig
from .errors import BadFileError, ConfigError, ExistingOutputError, NonFiniteLossError, batch_too_large, torch_oom
from .health import health_check, holdout_split, mean_image
from .health_report import describe
from .schedule import cosine_lr

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EXPORT = "export"


# ----------------------------------------------------------------------------- process set-up

def tune_malloc() -> bool:
    """Keep glibc from handing big tensor buffers back to the kernel after every step.

    Measured on CPU: +12-51% U-Net throughput at 224-512 px (shared/README.md). No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


@contextmanager
def _torch_settings(cfg: PretrainConfig) -> Iterator[None]:
    """Thread count and deterministic mode for the run, restored afterwards (tests share a process)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: a CUDA op without a deterministic kernel (some pad/upsample backwards) warns
        # instead of ending the run; on CPU every op the U-Net uses is deterministic.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def _launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def pick_device(cfg: PretrainConfig) -> torch.device:
    """``cfg.device``, else this rank's GPU when there is one, else the CPU."""
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _init_distributed(cfg: PretrainConfig) -> tuple[torch.device, bool]:
    """The device of this rank; initialises the process group under torchrun (NCCL on CUDA, gloo on CPU).

    Returns whether this call created the group (and so must destroy it).
    """
    device = pick_device(cfg)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = False
    if _launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        created = True
    return device, created


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# ----------------------------------------------------------------------------- pieces the tests reuse

class LossStep(nn.Module):
    """What DDP wraps: ``forward(images, views) = method.loss``.

    Views are drawn outside the DDP forward, so a test can draw the global batch's views once
    and hand each rank its slice, and check N ranks against one process through this same path.
    """

    def __init__(self, method: PretrainMethod):
        super().__init__()
        self.method = method

    def forward(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.method.loss(images, views)


def distribute(method: PretrainMethod, device: torch.device,
               channels_last: bool = False) -> tuple[PretrainMethod, nn.Module]:
    """(method on ``device``, the module to call for the loss: DDP(LossStep) when distributed).

    BatchNorm becomes global-batch BatchNorm first (same parameters, frozen ones stay frozen);
    build the optimizer from the returned method.
    """
    distributed = _rank_world()[1] > 1
    if distributed:
        method = convert_sync_batchnorm(method, device)
    method = method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)
    if not distributed:
        return method, LossStep(method)
    ids = [device.index] if device.type == "cuda" else None
    return method, DistributedDataParallel(LossStep(method), device_ids=ids, broadcast_buffers=False)


def method_defaults(name: str) -> dict[str, Any]:
    """A method's tunable hyper-parameters; ``modality`` is not one: it comes from the task."""
    return {k: v for k, v in registry.method_class(name).hparams().items() if k != "modality"}


def build_method(cfg: PretrainConfig, in_chans: int, modality: str) -> PretrainMethod:
    """The method around a fresh UNet, initialised from ``cfg.seed`` (identical on every rank)."""
    cls = registry.method_class(cfg.method)
    defaults = method_defaults(cfg.method)
    unknown = set(cfg.hparams) - set(defaults)
    if unknown:
        raise ConfigError(
            f"unknown hyper-parameter(s) {', '.join(sorted(unknown))} for method {cfg.method!r}; "
            f"valid: {', '.join(defaults) or 'none'}"
        )
    torch.manual_seed(cfg.seed)
    kwargs = {"decoder_channels": cfg.decoder_channels} if cfg.decoder_channels else {}
    net = UNet(cfg.encoder, in_chans, in_chans, **kwargs)
    return cls(net, modality=modality, **cfg.hparams)


def plan(n_images: int, cfg: PretrainConfig, world: int) -> tuple[int, int, int]:
    """(global batch, steps per epoch, total steps). The last incomplete batch of an epoch is dropped.

    A training split smaller than the batch (DRIVE: 20 images, paper batch 32) trains on batches of
    all its images instead of none, rounded down to a multiple of the world size.
    """
    if cfg.batch_size % world:
        raise ConfigError(f"--batch-size {cfg.batch_size} is global and must be divisible by the {world} processes")
    batch = min(cfg.batch_size, n_images - n_images % world)
    if batch < world:
        raise ConfigError(f"{n_images} training images cannot fill one image per process on {world} processes")
    per_epoch = n_images // batch
    total = max(cfg.epochs * per_epoch, cfg.min_steps)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    return batch, per_epoch, total


# ----------------------------------------------------------------------------- data

def load_images(cfg: PretrainConfig) -> tuple[torch.Tensor, str]:
    """(uint8 training images, modality) of ``cfg.task``: the training split only."""
    task = registry.make_task(cfg.task, cfg.data_root, cfg.image_size, seed=cfg.seed)
    return task.pretrain_images(), task.modality


class Batches:
    """This rank's slice of each global batch, drawn from a seeded per-epoch permutation.

    The permutation generator is the same on all ranks, so their slices are disjoint. Small
    data sets live on the accelerator; big ones are copied per batch from pinned memory.
    """

    def __init__(self, images: torch.Tensor, batch: int, per_epoch: int, seed: int, device: torch.device,
                 image_size: int | None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"pretraining images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        self.rank, self.world = _rank_world()
        self.batch, self.per_epoch, self.device = batch, per_epoch, device
        self.size = image_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.perm_epoch = -1
        on_device = device.type == "cuda" and images.nbytes < 0.25 * torch.cuda.mem_get_info(device)[0]
        self.images = images.to(device) if on_device else images
        self.pin = device.type == "cuda" and not on_device

    def get(self, step: int) -> torch.Tensor:
        """Float images in [0, 1] on the device for global step ``step``."""
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self.perm_epoch:
            self.perm = torch.randperm(len(self.images), generator=self.generator)
            self.perm_epoch = epoch
        share = self.batch // self.world
        start = i * self.batch + self.rank * share
        idx = self.perm[start : start + share]
        return self.prepare(self.images[idx.to(self.images.device)])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float in [0, 1] on the device, at the run's image size."""
        if self.pin:
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True).float().div_(255)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                antialias=True, align_corners=False).clamp_(0, 1)
        return x

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "perm_epoch": self.perm_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.perm_epoch = state["perm"], state["perm_epoch"]


# ----------------------------------------------------------------------------- checkpoints

def _rng_state(view_gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "views": view_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], view_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    view_gen.set_state(state["views"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _gather_rng(state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Every rank's RNG states (each rank draws its own views), for rank 0 to store."""
    rank, world = _rank_world()
    if world == 1:
        return [state]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, state)
    return out


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A resume checkpoint, read with ``weights_only=True``: tensors and plain containers only.

    A file holding any other pickled object (which could run code when unpickled) or a damaged file
    is refused with a ValueError naming it; it is left where it is.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        which = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), "")
        raise BadFileError(f"{path}: refused to resume from it: it holds objects other than tensors and plain "
                           f"containers, which could run code when loaded{f' ({which[:120]})' if which else ''}; "
                           "expected a checkpoint written by tower-bench pretrain") from None
    except (RuntimeError, EOFError, OSError, IndexError, ValueError) as err:  # text and cut files: many kinds
        raise BadFileError(f"{path}: unreadable or truncated checkpoint ({' '.join(str(err).split())[:80]}); "
                           "move it away to start over, or choose another --out") from None
    if not isinstance(ckpt, dict) or not {"step", "config_hash", "method", "rng"} <= ckpt.keys():
        raise BadFileError(f"{path}: not a tower-bench pretraining checkpoint (expected keys step, config_hash, "
                           f"method, optimizer, scheduler, batches, rng)")
    return ckpt


def _truncate_metrics(path: Path, upto: int) -> list[dict[str, Any]]:
    """Keep the rows up to the checkpoint's step: later ones (and a last line cut by a kill) get recomputed.

    Any other unreadable line means the file is not this run's log: refused with its line number, left as it is.
    """
    rows = []
    try:
        lines = path.read_text().splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path}: unreadable metrics log ({err}); expected one JSON object per line") from None
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # cut by a kill mid-write
                continue
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise BadFileError(f"{path}: line {number} is not a metrics row ({line[:60]!r}); expected one JSON object "
                               "per line with an integer 'step'; move the file away to resume without it")
        if row["step"] <= upto:
            rows.append(row)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Appended at each checkpoint, not rewritten: a long run's log stays O(steps) to write."""
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------- the loop

def default_out(cfg: PretrainConfig) -> Path:
    return Path("runs") / "pretrain" / f"{cfg.method}-{cfg.task}-{cfg.hash()}"


def resolve(cfg: PretrainConfig, image_size: int, device: torch.device | None = None,
            n_images: int | None = None) -> PretrainConfig:
    """Fill in what defaults stood for (hyper-parameters, image size, bf16 ...), so the hash names the run.

    With ``n_images`` (the pretraining set's size) the method fits its hyper-parameters to the data and
    the run's length (``PretrainMethod.fit_to_data``: MoCo's queue, EMA momenta).
    """
    cuda = (device or pick_device(cfg)).type == "cuda"
    hparams = {**method_defaults(cfg.method), **cfg.hparams}
    if n_images:
        batch, _, total = plan(n_images, cfg, _rank_world()[1])
        hparams = registry.method_class(cfg.method).fit_to_data(hparams, n_images, batch, total)
    return cfg.replace(
        hparams=hparams, image_size=image_size,
        bf16=cuda if cfg.bf16 is None else cfg.bf16,
        channels_last=cuda if cfg.channels_last is None else cfg.channels_last,
    )


def pretrain(cfg: PretrainConfig, *, images: torch.Tensor | None = None, modality: str | None = None,
             resume: bool = False, progress: bool = True) -> Path:
    """Pretrain ``cfg.method`` on ``images`` (uint8 (N, C, H, W); default: ``cfg.task``'s training split).

    Returns the folder of the exported U-Net (``zoo.hub.from_pretrained`` loads it). Under torchrun
    every rank calls this; only rank 0 writes files and prints.
    """
    tune_malloc()
    device, created_group = _init_distributed(cfg)
    try:
        with _torch_settings(cfg):
            return _pretrain(cfg, device, images, modality, resume, progress)
    finally:
        if created_group:
            dist.destroy_process_group()


def _pretrain(cfg: PretrainConfig, device: torch.device, images: torch.Tensor | None, modality: str | None,
              resume: bool, progress: bool) -> Path:
    rank, world = _rank_world()
    if images is None:
        images, task_modality = load_images(cfg)
        modality = modality or task_modality
    modality = modality or "generic"
    cfg = resolve(cfg, cfg.image_size or int(images.shape[-1]), device, len(images))
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    train_idx, check_idx, held = holdout_split(len(images))
    held_images, images = images[check_idx], images[train_idx]
    batch, per_epoch, total = plan(len(images), cfg, world)
    bf16, channels_last = bool(cfg.bf16), bool(cfg.channels_last)
    ckpt_path, metrics_path = out / CHECKPOINT, out / METRICS
    if ckpt_path.exists() and not resume:
        raise ExistingOutputError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")

    say = _printer(rank == 0 and progress)
    say(f"pretrain config {cfg.hash()}: {json.dumps(cfg.to_dict())}")
    checked = f"+{len(held_images)} held out" if held else f"{len(held_images)} of them"
    say(f"{len(images)} images ({checked} for the health check), global batch {batch} on "
        f"{world} process(es) ({device}), "
        f"{per_epoch} steps/epoch, {total} steps -> {out}")

    method, step_fn = distribute(build_method(cfg, int(images.shape[1]), modality), device, channels_last)
    if cfg.compile:
        method.net.compile()
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, total, cfg.warmup_steps))
    view_gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + rank)
    batches = Batches(images, batch, per_epoch, cfg.seed, device, cfg.image_size)
    held_out = batches.prepare(held_images)
    if channels_last:
        held_out = held_out.contiguous(memory_format=torch.channels_last)
    average = mean_image(images, batches.prepare) if rank == 0 else None
    health: dict | None = None

    step, pending, last_loss = 0, [], None
    if resume and rank == 0:  # temp files of checkpoint writes cut by a kill: never read, only in the way
        for stale in out.glob(f".{CHECKPOINT}.*.tmp"):
            stale.unlink(missing_ok=True)
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["config_hash"] != cfg.hash():
            raise ConfigError(f"{ckpt_path} belongs to config {ckpt['config_hash']}, not {cfg.hash()}; "
                              "resume with the same settings or choose another --out")
        if len(ckpt["rng"]) != world:
            raise ConfigError(f"{ckpt_path} was written by {len(ckpt['rng'])} process(es); resume with the same number")
        try:  # the hash matched, so a mismatch here is a damaged or edited file, not a user's other settings
            method.load_state_dict(ckpt["method"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            batches.load_state(ckpt["batches"])
            _set_rng_state(ckpt["rng"][rank], view_gen, device)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
            raise BadFileError(f"{ckpt_path}: its saved state does not fit this run ({' '.join(str(err).split())[:160]}); "
                               "expected the checkpoint tower-bench pretrain wrote for this config: move it away to "
                               "start over") from None
        step = ckpt["step"]
        if rank == 0:
            kept = _truncate_metrics(metrics_path, step)
            last_loss = kept[-1]["loss"] if kept else None
        say(f"resumed from step {step}")
    else:
        if resume:
            say(f"no checkpoint in {out}; starting from step 0")
        if rank == 0:
            atomic_write_text(metrics_path, "")

    def save() -> None:
        nonlocal health
        rng = _gather_rng(_rng_state(view_gen, device))
        if rank != 0:
            return
        health = health_check(method, held_out, average, device)
        if pending:
            pending[-1]["health"] = health
        say(f"step {step}: health {describe(health)}")
        state = {
            "step": step, "config_hash": cfg.hash(), "config": cfg.to_dict(),
            "method": method.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "batches": batches.state(), "rng": rng,
        }
        _append_metrics(metrics_path, pending)  # first: a resume drops rows past the checkpoint's step
        pending.clear()
        atomic_write(ckpt_path, lambda p: torch.save(state, p))

    method.train()
    try:
        with _progress(rank == 0 and progress, total, step) as advance:
            while step < total:
                t0 = time.perf_counter()
                x = batches.get(step)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.no_grad():
                    views = method.views(x, view_gen)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    parts = step_fn(x, views)
                logged = _mean_over_ranks({k: v.detach().float() for k, v in parts.items()})
                if not all(math.isfinite(v) for v in logged.values()):
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in logged.items())
                    raise NonFiniteLossError(
                        f"non-finite loss at step {step + 1} ({shown}); nothing saved, "
                        f"last good checkpoint: {ckpt_path if ckpt_path.exists() else 'none'}"
                    )
                lr = optimizer.param_groups[0]["lr"]
                optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                optimizer.step()
                scheduler.step()
                method.after_step(step, total)
                step += 1
                speed = batch / (time.perf_counter() - t0)
                pending.append({"step": step, "epoch": (step - 1) // per_epoch, "lr": lr, **logged, "images_per_s": speed})
                last_loss = logged["loss"]
                advance(logged["loss"], speed)
                if step % cfg.checkpoint_every == 0 or step == total:
                    save()
    except torch_oom() as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        kept = f"; the last checkpoint stays in {ckpt_path}" if ckpt_path.exists() else ""
        raise batch_too_large("pretraining", batch, f"step {step + 1} on {device}{kept}", world) from err

    if rank != 0:
        return out / EXPORT
    from zoo.hub import save_pretrained  # lazy: the loop does not depend on hub until it exports

    if health is None:  # resumed at the last step: nothing left to train, check it now
        health = health_check(method, held_out, average, device)
    info = {"config": cfg.protocol(), "hash": cfg.hash(), "task": cfg.task, "n_images": len(images),
            "n_health": len(held_images), "health_held_out": held, "steps": total, "global_batch": batch, "world_size": world,
            "final_loss": last_loss, "health": health}
    path = Path(save_pretrained(method.export(), out / EXPORT, method=cfg.method,
                                trains_decoder=method.trains_decoder, pretrain=info))
    say(f"exported {path}")
    return path


def _mean_over_ranks(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts averaged over ranks: the global-batch loss, and the same NaN verdict on every rank."""
    names = sorted(parts)
    v = torch.stack([parts[k] for k in names])
    if _rank_world()[1] > 1:
        dist.all_reduce(v)
        v /= _rank_world()[1]
    return dict(zip(names, v.tolist()))


def _printer(enabled: bool):
    from rich.console import Console

    console = Console(stderr=True)
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
