"""MoCo v2 (Chen et al. 2020): InfoNCE against an EMA key encoder and a queue of past keys.

Design notes:
- BatchNorm: no shuffle-BN. The pretraining loop turns every BatchNorm into a global
  (cross-rank) one, for queries and keys alike (the key encoder runs in train mode). A query and
  its positive key then no longer share the statistics of a small per-GPU sub-batch, the signal
  shuffle-BN was invented to hide (SyncBN is the usual alternative, as in MoCo v3). It also keeps
  a run on N ranks exactly the 1-process loss on the global batch, which shuffle-BN would not.
- The loss is MoCo v2's, not symmetrised (MoCo v3 symmetrises): view 1 is the query, view 2 the key.
- ``loss`` is a pure function of (images, views): the keys it computes are only stashed, and
  ``after_step`` moves the key encoder and enqueues the keys gathered from every rank (rank
  order), so every rank holds the same queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zoo import MLPHead, UNet, info_nce_with_negatives
from zoo.distributed import gather_no_grad
from zoo.errors import ConfigError

from .pair import TwoViewMethod
from .teacher import MomentumEncoder, cap_momentum


class MoCo(TwoViewMethod):
    """Query encoder + MLP projector (v2's 2048-ReLU-128, no BN); key encoder = EMA copy.

    Sized to the data (``fit_to_data``, applied when the loop resolves the config, so the config hash
    shows the sizes that ran):
    - the queue holds at most ``queue_fraction`` (default 1/4) of the pretraining images: queue_size =
      min(requested, floor(queue_fraction * n_images)), rounded down to a multiple of the global batch
      when that is at least one batch (the queue then holds whole batches). An epoch-wise permutation
      puts each image in the queue at most about once, so a query meets an older key of its own image
      among its negatives with probability <= queue_fraction, instead of ~66 times per step (the 4096
      default over 62 images). A queue smaller than a batch keeps the newest keys of the last batch;
    - the key encoder's momentum is capped so that at most 1% of its random init survives the run
      (``teacher.cap_momentum``: m ** total_steps <= 0.01; 0.999 stays from ~4600 steps on).
    """

    name = "moco"
    paper_name = "MoCo"
    trains_decoder = False
    tiny_hparams = {"hidden_dim": 64, "out_dim": 32, "queue_size": 64}

    @dataclass(frozen=True)
    class Hparams:
        temperature: float = 0.2
        momentum: float = 0.999
        queue_size: int = 4096
        queue_fraction: float = 0.25
        hidden_dim: int = 2048
        out_dim: int = 128
        color_strength: float = 1.0

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        hp = self.hp
        if hp.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {hp.temperature}")
        if not 0 <= hp.momentum <= 1:
            raise ConfigError(f"momentum must be in [0, 1], got {hp.momentum}")
        if hp.queue_size < 1:
            raise ConfigError(f"queue_size must be positive, got {hp.queue_size}")
        if not 0 < hp.queue_fraction <= 1:
            raise ConfigError(f"queue_fraction must be in (0, 1], got {hp.queue_fraction}")
        self.temperature = hp.temperature
        self.momentum = hp.momentum
        self.projector = MLPHead(net.num_features, hp.hidden_dim, hp.out_dim, num_layers=2, batch_norm=False)
        self.key_encoder = MomentumEncoder(net, self.projector)
        # Buffers: saved with checkpoints (a resumed run keeps its negatives) and moved with .to().
        self.register_buffer("queue", F.normalize(torch.randn(hp.queue_size, hp.out_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending_keys: list[torch.Tensor] = []

    @classmethod
    def fit_to_data(cls, hparams: dict[str, Any], n_images: int, batch: int, total_steps: int) -> dict[str, Any]:
        """The queue and the momentum sized to the data and the run (the rules in the class docstring)."""
        cap = int(hparams["queue_fraction"] * n_images)
        cap -= cap % batch if cap >= batch else 0
        return {**hparams, "queue_size": max(1, min(hparams["queue_size"], cap)),
                "momentum": cap_momentum(hparams["momentum"], total_steps)}

    def loss(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        q = self.projector(self.net.forward_pooled(views["view1"]))
        with torch.no_grad():
            k = F.normalize(self.key_encoder(views["view2"]), dim=1)
        if self.training and torch.is_grad_enabled():
            # Every training forward's keys are enqueued at the next after_step (several with
            # gradient accumulation); evaluation and no-grad forwards leave the queue alone.
            self._pending_keys.append(k)
        return {"loss": info_nce_with_negatives(q, k, self.queue, self.temperature)}

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (N, D) at the pointer, wrapping around; the oldest keys are overwritten.

        More keys than the queue holds (a queue sized below one batch): only the newest ``queue_size``.
        """
        size, dim = self.queue.shape
        if keys.ndim != 2 or keys.shape[1] != dim:
            raise ValueError(f"keys must be (N, {dim}), got {tuple(keys.shape)}")
        keys = keys[-size:]
        n = keys.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def after_step(self, step: int, total_steps: int) -> None:
        """Move the key encoder (MoCo does this before the next keys: the same thing), then
        enqueue this step's keys from all ranks."""
        self.key_encoder.update(self.net, self.projector, self.momentum)
        pending, self._pending_keys = self._pending_keys, []
        for keys in pending:
            self.enqueue(gather_no_grad(keys))
