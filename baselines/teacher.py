"""The momentum (EMA) encoder shared by BYOL's target network and MoCo's key encoder."""
from __future__ import annotations

import torch
from torch import nn

from zoo import UNet, ema_update, frozen_copy


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
            raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
        ema_update(self.net.encoder, net.encoder, momentum)
        ema_update(self.projector, projector, momentum)
