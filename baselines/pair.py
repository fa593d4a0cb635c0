"""What SimCLR, BYOL and MoCo share: two classic augmentations of each image, embedded by a projector."""
from __future__ import annotations

import torch
from torch import nn

from zoo import PretrainMethod, UNet

from .augment import ClassicAugment


class TwoViewMethod(PretrainMethod):
    """Views are ``ClassicAugment.pair``; the pair the loss pulls together is the projections of the pooled views.

    Subclasses set ``self.projector`` in ``__init__``; their ``Hparams`` carry ``color_strength``.
    """

    augment: ClassicAugment
    projector: nn.Module

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        self.augment = ClassicAugment.with_color_strength(self.hp.color_strength)

    def views(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return self.augment.pair(images, generator)

    def positive_pair(self, images, views):
        return views["view1"], views["view2"]

    def embed(self, x):
        return self.projector(self.net.forward_pooled(x))
