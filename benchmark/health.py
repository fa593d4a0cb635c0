"""Did pretraining learn anything? Measured on held-out training images, at checkpoints and at the end.

A pretraining run that ends worse than a trivial predictor publishes weights that only look
pretrained (100 steps once restored worse than the data set's mean image). Two checks, each against
its trivial baseline, computed on images of the pretraining pool that the run never trained on:

- restoration (methods that train a decoder): MSE of the restored image against the original,
  vs the mean training image (predicting the average) and vs the identity (returning the view);
- retrieval (methods with an embedding): is an image's own positive partner the nearest embedding
  among the held-out batch (top-1, cosine)? vs chance, 1 / batch.

A run passes when every check it has beats its baselines: restoration below both, retrieval at
least ``RETRIEVAL_FACTOR`` times chance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo import PretrainMethod

HOLDOUT_MAX = 64  # held-out images per run
HOLDOUT_MIN_POOL = 64  # smaller pools (DRIVE: 16 images) keep every image for training: checked on training images
HOLDOUT_SEED = 4242  # fixed: every method and seed holds out the same images of a pool
VIEW_SEED = 777  # fixed views: checkpoints of one run are compared on the same pairs
RETRIEVAL_FACTOR = 5.0


def holdout_split(n: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(training indices, health-check indices, whether those are held out) of a pool of ``n`` images.

    Pools of at least ``HOLDOUT_MIN_POOL`` images give a sixteenth (at most 64) to the check and never
    train on it; a smaller pool is checked on (up to 64 of) its own training images, and says so.
    The split depends on ``n`` only.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    if n < HOLDOUT_MIN_POOL:
        return torch.arange(n), perm[:HOLDOUT_MAX].sort().values, False
    k = min(HOLDOUT_MAX, n // 16)
    return perm[k:].sort().values, perm[:k].sort().values, True


@torch.no_grad()
def mean_image(images: torch.Tensor, to_float, limit: int = 1024) -> torch.Tensor:
    """Per-pixel mean of (up to ``limit`` evenly spaced) training images, as float in [0, 1]."""
    idx = torch.linspace(0, len(images) - 1, min(limit, len(images))).long().unique()
    total = None
    for chunk in idx.split(128):
        x = to_float(images[chunk]).sum(0)
        total = x if total is None else total + x
    return total / len(idx)


@torch.no_grad()
def health_check(method: PretrainMethod, held_out: torch.Tensor, mean: torch.Tensor, device: torch.device) -> dict:
    """The checks on ``held_out`` float images (N, C, H, W) in [0, 1]; the method is put back in train mode."""
    was_training = method.training
    method.eval()
    generator = torch.Generator(device=device).manual_seed(VIEW_SEED)
    try:
        views = method.views(held_out, generator)
        out: dict = {"n": len(held_out)}
        checks = []
        restored = method.restoration(held_out, views)
        if restored is not None:
            restored_images, view = restored
            mse = F.mse_loss(restored_images.float(), held_out).item()
            mean_mse = F.mse_loss(mean.expand_as(held_out), held_out).item()
            identity_mse = F.mse_loss(view.float(), held_out).item()
            ok = mse < min(mean_mse, identity_mse)
            out.update(restoration_mse=mse, mean_image_mse=mean_mse, identity_mse=identity_mse, restoration_ok=ok)
            checks.append(ok)
        pair = method.embeddings(held_out, views)
        if pair is not None:
            z1, z2 = (F.normalize(z.float(), dim=1) for z in pair)
            top1 = (z1 @ z2.T).argmax(1).eq(torch.arange(len(z1), device=z1.device)).float().mean().item()
            chance = 1.0 / len(z1)
            ok = top1 >= RETRIEVAL_FACTOR * chance
            out.update(retrieval_top1=top1, retrieval_chance=chance, retrieval_ok=ok)
            checks.append(ok)
        out["passed"] = bool(checks) and all(checks)
        return out
    finally:
        method.train(was_training)
