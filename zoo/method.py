"""The contract every pretraining method follows, so one loop trains them all."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Union

import torch
from torch import nn

from .errors import ConfigError
from .unet import UNet

# What ``views`` returns: per name a batch (B, C, H, W), or a list of batches whose sizes differ (multi-crop: two
# global and several local crops of every image, as DINO draws them). Row i of each belongs to image i.
View = Union[torch.Tensor, list[torch.Tensor]]
Views = dict[str, View]


def view_rows(views: Views, lo: int, hi: int) -> Views:
    """Rows ``lo:hi`` of every view (of every crop of a multi-crop view): the views of images ``lo:hi``."""
    return {k: [c[lo:hi] for c in v] if isinstance(v, list) else v[lo:hi] for k, v in views.items()}


class PretrainMethod(nn.Module):
    """A self-supervised method wrapped around a ``UNet``.

    Subclasses declare their hyper-parameters as a frozen dataclass ``Hparams`` (typed, with the papers'
    defaults: what ``tower-bench methods`` lists and the pretraining config hashes), set the class attributes
    below and implement ``views`` (random, batched, on the
    images' device, reproducible from ``generator``; a view is a batch or a list of batches of other sizes,
    ``Views``) and ``loss`` (a deterministic function of
    images and views). Keeping the two apart lets a distributed run be checked against one
    process: draw the views of the global batch once, give each rank its slice. A method
    registered in ``benchmark/core/registry.py`` is checked against this contract by
    ``tests/contract`` with its ``tiny_hparams``; no test file names it.
    """

    name: ClassVar[str]  # the registry name (``--method``)
    paper_name: ClassVar[str]  # its row name in the paper's tables and on leaderboards
    trains_decoder: bool = False  # a class default; ``freeze_decoder`` makes one instance encoder-only
    # Hyper-parameters small enough for the CPU contract tests (tiny heads, short queues); defaults stay the papers'.
    tiny_hparams: ClassVar[dict[str, Any]] = {}
    # Bumped when a change to the method's code changes what a run computes. From 2 on it is part of the
    # pretraining config's hash, so runs (``runs/pretrain/<method>-<task>-<hash>``) and checkpoints made by
    # older code are never reused or resumed; revision 1 leaves the hashes of earlier runs as they were.
    revision: ClassVar[int] = 1

    @dataclasses.dataclass(frozen=True)
    class Hparams:
        """None: a method without hyper-parameters."""

    def __init__(self, net: UNet, modality: str = "generic", **hparams: Any):
        super().__init__()
        known = self.hparams()
        unknown = sorted(set(hparams) - set(known))
        if unknown:
            raise ConfigError(f"unknown hyper-parameter(s) {', '.join(unknown)} for method {self.name!r}; "
                              f"valid: {', '.join(known) or 'none'}")
        self.hp = self.Hparams(**hparams)
        self.net = net
        self.modality = modality
        if not self.trains_decoder:
            self.freeze_decoder()

    def freeze_decoder(self) -> None:
        """Make this instance encoder-only (the loop then exports it as such).

        Decoder and head stay untouched: no gradient, no optimizer state, and DDP does not wait for
        gradients that never come. Call it any time before the optimizer is built.
        """
        self.trains_decoder = False
        self.net.decoder.requires_grad_(False)
        self.net.head.requires_grad_(False)

    def views(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        raise NotImplementedError

    def loss(self, images: torch.Tensor, views: Views) -> dict[str, torch.Tensor]:
        """``{"loss": total, ...named parts to log}``; images are float in [0, 1]."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return self.loss(images, self.views(images, generator))

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step (EMA teachers, queues)."""

    def positive_pair(self, images: torch.Tensor,
                      views: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The two inputs of each positive pair (row i with row i) whose embeddings the method pulls together.

        The health check compares their raw pixels too: views that leave the pixels alike are matched without any
        network, so a method must beat that. None: the method learns no embedding (restoration only).
        """
        return None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding the method's loss compares, of one batch of inputs (B, D)."""
        raise NotImplementedError(f"{type(self).__name__} has a positive pair but no embed()")

    def embeddings(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The embeddings of each positive pair, row i with row i (``embed`` of ``positive_pair``).

        The pretraining health check asks whether an image's own partner is its nearest embedding
        (top-1 retrieval against chance, raw pixels and the untrained network). None: no embedding.
        """
        pair = self.positive_pair(images, views)
        return None if pair is None else (self.embed(pair[0]), self.embed(pair[1]))

    def restoration(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(restored images in [0, 1], the view they were restored from), for the health check's
        comparison against the mean image and the identity. None: the method trains no decoder."""
        return None

    def export(self) -> UNet:
        """The network that gets published: the U-Net without method-only heads or teachers."""
        return self.net

    @classmethod
    def fit_to_data(cls, hparams: dict[str, Any], n_images: int, batch: int, total_steps: int) -> dict[str, Any]:
        """``hparams`` (all of them, defaults filled in) adjusted to the pretraining set and the run's length.

        For what must not exceed the data (MoCo's queue) or must suit the number of steps (EMA momenta).
        The loop calls it when it resolves a config, so the config and its hash record what really ran;
        it must be idempotent (a resolved config may be resolved again). Default: unchanged.
        """
        return dict(hparams)

    @classmethod
    def hparams(cls) -> dict[str, Any]:
        """Default hyper-parameters, from ``Hparams`` (shown by ``tower-bench methods``)."""
        return {f.name: f.default for f in dataclasses.fields(cls.Hparams)}
