"""The method to pretrain, built identically on every rank, and the module DDP wraps around its loss."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from benchmark.core import registry
from benchmark.core.config import PretrainConfig
from zoo import PretrainMethod, UNet, convert_sync_batchnorm
from zoo.distributed import world_size


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
    distributed = world_size() > 1
    if distributed:
        method = convert_sync_batchnorm(method, device)
    method = method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)
    if not distributed:
        return method, LossStep(method)
    ids = [device.index] if device.type == "cuda" else None
    return method, DistributedDataParallel(LossStep(method), device_ids=ids, broadcast_buffers=False)


def build_method(cfg: PretrainConfig, in_chans: int, modality: str) -> PretrainMethod:
    """The method around a fresh UNet, initialised from ``cfg.seed`` (identical on every rank)."""
    cls = registry.method_class(cfg.method)
    torch.manual_seed(cfg.seed)
    kwargs = {"decoder_channels": cfg.decoder_channels} if cfg.decoder_channels else {}
    net = UNet(cfg.encoder, in_chans, in_chans, **kwargs)
    return cls(net, modality=modality, **cfg.hparams)
