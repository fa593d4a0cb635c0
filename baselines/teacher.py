"""The momentum (EMA) encoder shared by BYOL's target network and MoCo's key encoder, and the rule that
sizes its momentum to the run.

After T updates with momenta m_1..m_T the teacher still holds prod(m_t) of its random initialisation
(0.999 over 100 steps: 90%), so a short run's teacher is mostly noise. ``cap_momentum`` and
``cap_base_momentum`` lower a momentum just enough that at most ``INIT_RESIDUAL`` (1%) survives; long
runs (0.999 from ~4600 steps, BYOL's cosine from 0.996 from ~2300) keep the papers' values.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from zoo import UNet, cosine_momentum, ema_update, frozen_copy
from zoo.errors import ConfigError

INIT_RESIDUAL = 1e-2  # the most of its random init a teacher may still hold at the end of a run


def cap_momentum(momentum: float, total_steps: int, residual: float = INIT_RESIDUAL) -> float:
    """``momentum``, lowered where needed so that momentum ** total_steps <= ``residual`` (MoCo's constant EMA)."""
    return momentum if total_steps < 1 else min(momentum, residual ** (1 / total_steps))


def init_residual(base: float, total_steps: int) -> float:
    """prod_t of BYOL's cosine momenta from ``base`` (steps 0..T-1, as the loop calls ``after_step``)."""
    return math.exp(sum(math.log(max(cosine_momentum(t, total_steps, base), 1e-300)) for t in range(total_steps)))


def cap_base_momentum(base: float, total_steps: int, residual: float = INIT_RESIDUAL) -> float:
    """The largest base <= ``base`` whose cosine schedule to 1 leaves at most ``residual`` of the init (bisection)."""
    if total_steps < 1 or init_residual(base, total_steps) <= residual:
        return base
    lo, hi = 0.0, base  # init_residual(0) = 0: step 0 copies the student
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if init_residual(mid, total_steps) <= residual else (lo, mid)
    return lo


class MomentumEncoder(nn.Module):
    """A gradient-free copy of a UNet's encoder plus a projection head, moved by EMA.

    The copy is a whole ``UNet`` so that ``forward_pooled`` keeps the model's own normalisation
    and padding, but its decoder and head are dropped: the teacher only ever pools the encoder,
    and carrying (and averaging) an unused decoder would waste memory and time.
    """

    def __init__(self, net: UNet, projector: nn.Module):
        super().__init__()
        self.net = frozen_copy(net)
        self.net.decoder = nn.Identity()
        self.net.head = nn.Identity()
        self.projector = frozen_copy(projector)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.net.forward_pooled(images))

    @torch.no_grad()
    def update(self, net: UNet, projector: nn.Module, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student, for encoder and projector."""
        if not 0 <= momentum <= 1:
            raise ConfigError(f"EMA momentum must be in [0, 1], got {momentum}")
        ema_update(self.net.encoder, net.encoder, momentum)
        ema_update(self.projector, projector, momentum)
