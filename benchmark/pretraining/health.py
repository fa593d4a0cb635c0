"""Did pretraining learn anything? Measured on held-out pool images, at checkpoints and at the end.

A pretraining run that ends no better than what costs nothing publishes weights that only look pretrained. Each
check is compared, on the same images and the same views, with what needs no training:

- restoration (methods that train a decoder): MSE of the restored image against the original, vs the mean training
  image (predicting the average), the identity (returning the view) and the same network untrained;
- retrieval (methods with an embedding): is an image's own positive partner its nearest embedding among all held-out
  candidates (top-1, cosine)? vs chance (1 / candidates), the raw pixels of the two inputs (each image
  standardised, then cosine: views that leave the pixels alike are matched without any network), and the same
  network untrained (its embedding at step 0).

A run passes when every check it has beats all of its baselines: restoration below each, retrieval at least
``RETRIEVAL_FACTOR`` times chance and above the better of pixels and the untrained network by ``RETRIEVAL_SE``
binomial standard errors (of that baseline, at this many candidates). An untrained network and raw pixels fail it
by construction (tests/benchmark/test_health.py shows both).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from zoo import PretrainMethod
from zoo.method import Views, view_rows

HOLDOUT_MAX = 512  # held-out candidates per run (the retrieval is among all of them)
HOLDOUT_SHARE = 4  # at most a quarter of a pool is held out
HOLDOUT_MIN_POOL = 256  # smaller pools (DRIVE's 16 images) keep every image for training: checked on training images
HOLDOUT_SEED = 4242  # fixed: every method and seed holds out the same images of a pool
VIEW_SEED = 777  # fixed views: checkpoints of one run, and the untrained network, are compared on the same pairs
RETRIEVAL_FACTOR = 5.0
RETRIEVAL_SE = 3.0
CHUNK = 64  # images per forward pass (eval mode: the result does not depend on it)


def holdout_split(n: int, holdout: int = HOLDOUT_MAX) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(training indices, health-check indices, whether those are held out) of a pool of ``n`` images.

    Pools of at least ``HOLDOUT_MIN_POOL`` images give ``holdout`` images (at most a quarter) to the check and
    never train on them; a smaller pool is checked on (up to ``holdout`` of) its own training images, and says so.
    The split depends on ``n`` and ``holdout`` only.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    if n < HOLDOUT_MIN_POOL:
        return torch.arange(n), perm[:holdout].sort().values, False
    k = min(holdout, n // HOLDOUT_SHARE)
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


def top1(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Share of rows whose nearest row of ``z2`` (cosine) is their own partner."""
    z1, z2 = (F.normalize(z.float().flatten(1), dim=1) for z in (z1, z2))
    return (z1 @ z2.T).argmax(1).eq(torch.arange(len(z1), device=z1.device)).float().mean().item()


def standardised_pixels(x: torch.Tensor, side: int = 32) -> torch.Tensor:
    """Each image's pixels (pooled to at most ``side`` px, so views of other sizes compare), minus its mean, over
    its std: the embedding that needs no network."""
    if x.shape[-1] > side or x.shape[-2] > side or x.shape[-2:] != (side, side):
        x = F.adaptive_avg_pool2d(x.float(), side)
    x = x.float().flatten(1)
    return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-6)


def _chunks(images: torch.Tensor, views: Views):
    for lo in range(0, len(images), CHUNK):
        yield images[lo:lo + CHUNK], view_rows(views, lo, lo + CHUNK)


@torch.no_grad()
def measure(method: PretrainMethod, held_out: torch.Tensor) -> dict:
    """The raw numbers of the checks on ``held_out`` float images (N, C, H, W) in [0, 1], in eval mode, on the fixed
    views: restoration and identity MSE, retrieval top-1 of the embedding and of the raw pixels."""
    was_training = method.training
    method.eval()
    generator = torch.Generator(device=held_out.device).manual_seed(VIEW_SEED)
    try:
        views = method.views(held_out, generator)
        out: dict = {"n": len(held_out)}
        restored = [method.restoration(x, v) for x, v in _chunks(held_out, views)]
        if restored[0] is not None:
            errors = [((r.float() - x) ** 2).sum().item() for (r, _), (x, _) in zip(restored, _chunks(held_out, views))]
            identity = [((view.float() - x) ** 2).sum().item()
                        for (_, view), (x, _) in zip(restored, _chunks(held_out, views))]
            out.update(restoration_mse=sum(errors) / held_out.numel(), identity_mse=sum(identity) / held_out.numel())
        pairs = [method.embeddings(x, v) for x, v in _chunks(held_out, views)]
        if pairs[0] is not None:
            z1, z2 = (torch.cat([p[i] for p in pairs]) for i in (0, 1))
            a, b = (torch.cat([method.positive_pair(x, v)[i] for x, v in _chunks(held_out, views)]) for i in (0, 1))
            out.update(retrieval_top1=top1(z1, z2), retrieval_chance=1.0 / len(z1),
                       pixels_top1=top1(standardised_pixels(a), standardised_pixels(b)))
        return out
    finally:
        method.train(was_training)


def retrieval_bar(pixels: float, untrained: float, n: int) -> float:
    """The retrieval top-1 a run must exceed: the better free baseline plus ``RETRIEVAL_SE`` binomial standard
    errors of it at ``n`` candidates, and at least ``RETRIEVAL_FACTOR`` times chance."""
    base = max(pixels, untrained)
    return max(RETRIEVAL_FACTOR / n, base + RETRIEVAL_SE * math.sqrt(max(base * (1 - base), 1.0 / n) / n))


def health_check(method: PretrainMethod, held_out: torch.Tensor, mean: torch.Tensor, untrained: dict | None) -> dict:
    """The checks and their verdict; ``untrained`` is ``measure`` of the same network at step 0 (None: not known,
    the untrained baselines are then left out and the report says so)."""
    out = measure(method, held_out)
    checks = []
    if "restoration_mse" in out:
        mean_mse = F.mse_loss(mean.expand_as(held_out), held_out).item()
        bars = [mean_mse, out["identity_mse"]]
        if untrained:
            out["untrained_mse"] = untrained["restoration_mse"]
            bars.append(untrained["restoration_mse"])
        ok = out["restoration_mse"] < min(bars)
        out.update(mean_image_mse=mean_mse, restoration_ok=ok)
        checks.append(ok)
    if "retrieval_top1" in out:
        n = out["n"]
        untrained_top1 = untrained["retrieval_top1"] if untrained else 0.0
        if untrained:
            out["untrained_top1"] = untrained_top1
        bar = retrieval_bar(out["pixels_top1"], untrained_top1, n)
        ok = out["retrieval_top1"] > bar
        out.update(retrieval_bar=bar, retrieval_ok=ok)
        checks.append(ok)
    out["passed"] = bool(checks) and all(checks)
    return out
