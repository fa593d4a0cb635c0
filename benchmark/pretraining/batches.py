"""The pretraining data: a task's training images, the run's batch plan, and each rank's slice of every batch."""
from __future__ import annotations

from typing import Any

import torch

from benchmark.core import registry
from benchmark.core.config import PretrainConfig
from benchmark.errors import ConfigError
from zoo.distributed import rank, world_size


def load_images(cfg: PretrainConfig) -> tuple[torch.Tensor, str]:
    """(uint8 training images, modality) of ``cfg.task``: the training split only."""
    task = registry.make_task(cfg.task, cfg.data_root, cfg.image_size, seed=cfg.seed)
    return task.pretrain_images(), task.modality


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


class Batches:
    """This rank's slice of each global batch, drawn from a seeded per-epoch permutation.

    The permutation generator is the same on all ranks, so their slices are disjoint. Small
    data sets live on the accelerator; big ones are copied per batch from pinned memory.
    """

    def __init__(self, images: torch.Tensor, batch: int, per_epoch: int, seed: int, device: torch.device,
                 image_size: int | None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"pretraining images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        self.rank, self.world = rank(), world_size()
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
