"""Where and how a pretraining process runs: its device, the torchrun process group, torch's settings, the allocator.

Rank and world size come from ``zoo.distributed``, which the methods' losses use too.
"""
from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from benchmark.core.config import PretrainConfig
from zoo.distributed import rank, world_size


def tune_malloc() -> bool:
    """Keep glibc from handing big tensor buffers back to the kernel after every step.

    Measured on CPU: +12-51% U-Net throughput at 224-512 px. No-op off glibc.
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
def torch_settings(cfg: PretrainConfig) -> Iterator[None]:
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


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def pick_device(cfg: PretrainConfig) -> torch.device:
    """``cfg.device``, else this rank's GPU when there is one, else the CPU."""
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_distributed(cfg: PretrainConfig) -> tuple[torch.device, bool]:
    """The device of this rank; initialises the process group under torchrun (NCCL on CUDA, gloo on CPU).

    Returns whether this call created the group (and so must destroy it).
    """
    device = pick_device(cfg)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = False
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        created = True
    return device, created


def mean_over_ranks(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts averaged over ranks: the global-batch loss, and the same NaN verdict on every rank."""
    names = sorted(parts)
    v = torch.stack([parts[k] for k in names])
    if world_size() > 1:
        dist.all_reduce(v)
        v /= world_size()
    return dict(zip(names, v.tolist()))


def view_generator(seed: int, device: torch.device) -> torch.Generator:
    """This rank's own generator for the views: each rank draws different views of its own slice."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + rank())
