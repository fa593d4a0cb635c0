"""BYOL (Grill et al. 2020): an online network predicts an EMA target's projection of another view."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zoo import UNet, cosine_momentum, cosine_regression, prediction_head, projection_head
from zoo.errors import ConfigError

from .pair import TwoViewMethod
from .teacher import MomentumEncoder, cap_base_momentum


class BYOL(TwoViewMethod):
    """Online: encoder -> projector -> predictor. Target: EMA of encoder + projector, no gradient.

    The loss is symmetrised as in the paper: the prediction of view 1 regresses the target's
    projection of view 2 and vice versa, each term ``2 - 2 cos`` averaged over the batch, summed.
    The target runs in train mode (batch statistics, global under the loop's BatchNorm). Its
    momentum follows BYOL's cosine schedule from ``base_momentum`` to 1, set in ``after_step``;
    ``fit_to_data`` lowers the base on short runs so that at most 1% of the target's random init
    survives the schedule (``teacher.cap_base_momentum``; 0.996 stays from ~2300 steps on).
    """

    name = "byol"
    paper_name = "BYOL"
    trains_decoder = False
    tiny_hparams = {"hidden_dim": 64, "out_dim": 32}

    @dataclass(frozen=True)
    class Hparams:
        base_momentum: float = 0.996
        hidden_dim: int = 4096
        out_dim: int = 256
        color_strength: float = 1.0

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        hp = self.hp
        if not 0 <= hp.base_momentum <= 1:
            raise ConfigError(f"base_momentum must be in [0, 1], got {hp.base_momentum}")
        self.base_momentum = hp.base_momentum
        self.momentum = hp.base_momentum  # the value the last target update used
        self.projector = projection_head(net.num_features, hp.hidden_dim, hp.out_dim)
        self.predictor = prediction_head(hp.out_dim, hp.hidden_dim)
        self.target = MomentumEncoder(net, self.projector)

    @classmethod
    def fit_to_data(cls, hparams: dict[str, Any], n_images: int, batch: int, total_steps: int) -> dict[str, Any]:
        return {**hparams, "base_momentum": cap_base_momentum(hparams["base_momentum"], total_steps)}

    def loss(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        both = torch.cat([views["view1"], views["view2"]])
        p1, p2 = self.predictor(self.projector(self.net.forward_pooled(both))).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target(both).chunk(2)
        return {"loss": cosine_regression(p1, t2) + cosine_regression(p2, t1)}

    def after_step(self, step: int, total_steps: int) -> None:
        self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        self.target.update(self.net, self.projector, self.momentum)
