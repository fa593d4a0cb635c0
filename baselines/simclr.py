"""SimCLR (Chen et al. 2020): NT-Xent between two augmented views, negatives from every rank."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo import UNet, info_nce, projection_head
from zoo.errors import ConfigError

from .pair import TwoViewMethod


class SimCLR(TwoViewMethod):
    """Encoder + projection head on pooled features; the decoder is not trained.

    Both views go through the encoder as one batch, so BatchNorm (global under the pretraining
    loop) normalises over all 2N views as in SimCLR. ``temperature`` 0.1 is the paper's (TOWER
    uses the same NT-Xent), the head is the paper's 2048-2048-128 MLP.
    """

    name = "simclr"
    paper_name = "SimCLR-v1"
    trains_decoder = False
    tiny_hparams = {"hidden_dim": 64, "out_dim": 32}

    @dataclass(frozen=True)
    class Hparams:
        temperature: float = 0.1
        hidden_dim: int = 2048
        out_dim: int = 128
        color_strength: float = 1.0

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        if self.hp.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.hp.temperature}")
        self.temperature = self.hp.temperature
        self.projector = projection_head(net.num_features, self.hp.hidden_dim, self.hp.out_dim)

    def loss(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = self.projector(self.net.forward_pooled(torch.cat([views["view1"], views["view2"]]))).chunk(2)
        return {"loss": info_nce(z1, z2, self.temperature)}
