"""What SimCLR, BYOL and MoCo share: two classic augmentations of each image, embedded by a projector."""
from __future__ import annotations

import torch
from torch import nn

from zoo import PretrainMethod

from .augment import ClassicAugment


class TwoViewMethod(PretrainMethod):
    """Views are ``ClassicAugment.pair``; the pair the loss pulls together is the projections of the pooled views.

    Subclasses set ``self.augment`` (``classic_augment``) and ``self.projector`` in ``__init__``. No
    ``__init__`` here, so ``hparams`` still reads every hyper-parameter from the subclass's signature.
    """

    augment: ClassicAugment
    projector: nn.Module

    @staticmethod
    def classic_augment(augment: ClassicAugment | None, color_strength: float) -> ClassicAugment:
        """``augment`` if given, else the papers' augmentations at ``color_strength``."""
        return augment if augment is not None else ClassicAugment.with_color_strength(color_strength)

    def views(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return self.augment.pair(images, generator)

    def positive_pair(self, images, views):
        return views["view1"], views["view2"]

    def embed(self, x):
        return self.projector(self.net.forward_pooled(x))
