"""Scoring a model on a split the way the paper reports it, and the trivial predictors every board shows.

Segmentation: Dice inside the field of view (the mean over test images is the headline, pooled kept);
classification: AUC as MedMNIST computes it. Shared by every protocol (``finetune``, ``probe``).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch import nn

from benchmark.core.config import TRIVIAL_MARGIN, FinetuneConfig
from benchmark.finetuning.training import Validation, batch_bounds
from benchmark.tasks.base import Split


def run_batched(fn: Callable[[torch.Tensor], torch.Tensor], split: Split, batch_size: int, device: torch.device,
                fast: bool = False, train_mode_batches: bool = False) -> Iterator[torch.Tensor]:
    """``fn`` on the FULL split in batches of images in [0, 1] on ``device`` (bf16 + channels_last when ``fast``),
    each output as float32: what every protocol's scoring and feature extraction is built on.
    ``train_mode_batches``: a trailing one-sample batch joins the one before (BatchNorm in train mode needs two)."""
    bounds = batch_bounds(len(split), batch_size) if train_mode_batches else [*range(0, len(split), batch_size),
                                                                              len(split)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        x = split.images[start:stop].to(device).float().div_(255)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            yield fn(x.contiguous(memory_format=torch.channels_last) if fast else x).float()


@torch.no_grad()
def predict(model: nn.Module, split: Split, kind: str, batch_size: int, device: torch.device,
            fast: bool = False) -> torch.Tensor:
    """Predictions on the FULL split, on the CPU: segmentation class maps (N, H, W), else scores."""
    model.eval()
    out = []
    for logits in run_batched(model, split, batch_size, device, fast):
        out.append((logits.argmax(1).to(torch.uint8) if kind == "segmentation" else to_scores(logits, kind)).cpu())
    return torch.cat(out)


def to_scores(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Classification logits -> the probabilities AUC is computed on (sigmoid per label, else softmax)."""
    return torch.sigmoid(logits) if kind == "multilabel" else logits.softmax(1)


def score(pred: torch.Tensor, split: Split, kind: str) -> dict:
    """The task's metric of predictions on a split: every sample counts, no batch is dropped.

    Segmentation: Dice as the paper reports it, the mean over images (``value``); the Dice pooled
    over all pixels, each image's Dice and the predicted foreground share inside the FOV beside it.
    """
    from benchmark.finetuning.metrics import auc, dice, dice_per_image

    if kind != "segmentation":
        return {"value": auc(pred, split.targets, kind)}
    target = split.targets != 0
    fg = pred != 0
    per_image = dice_per_image(fg, target, split.valid)
    valid = torch.ones_like(fg) if split.valid is None else split.valid
    return {"value": float(per_image.nanmean()), "value_pooled": dice(fg, target, split.valid),
            "per_image": [round(float(v), 4) for v in per_image],
            "fg_fraction": float((fg & valid).sum() / valid.sum())}


# A frozen protocol on one pretraining gives one number however many fine-tuning seeds run (nothing varies
# at a full label fraction), so its uncertainty is the test set's: every record draws its resamples from this
# seed, the same index sets for every init of a task, and two inits' lists pair up resample by resample.
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 1000


def test_bootstrap(pred: torch.Tensor, split: Split, kind: str) -> dict:
    """The classification metric on ``BOOTSTRAP_RESAMPLES`` resamples (with replacement) of ``split``'s samples;
    None (JSON's null) for a resample the metric is undefined on (one that lacks a class)."""
    import numpy as np

    from benchmark.finetuning.metrics import auc_resamples

    n = len(split.targets)
    index = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, (BOOTSTRAP_RESAMPLES, n))
    values = auc_resamples(pred, split.targets, kind, index)
    return {"seed": BOOTSTRAP_SEED, "n_test": n,
            "values": [round(float(v), 3) if np.isfinite(v) else None for v in values]}


def evaluate(model: nn.Module, split: Split, kind: str, batch_size: int, device: torch.device,
             fast: bool = False) -> dict:
    return score(predict(model, split, kind, batch_size, device, fast), split, kind)


def trivial_scores(split: Split, kind: str, num_classes: int, train: Split) -> dict[str, float]:
    """What predictors that look at no image score on ``split``: the floor every init must clear.

    Segmentation: everything inside the FOV foreground, or everything background. Classification:
    the training class prior as every sample's score (AUC 50 by construction; computed, not assumed).
    """
    if kind == "segmentation":
        valid = torch.ones_like(split.targets, dtype=torch.bool) if split.valid is None else split.valid
        out = {"all-foreground": score(valid.to(torch.uint8), split, kind)["value"]}
        background = score(torch.zeros_like(split.targets), split, kind)["value"]
        out["all-background"] = 0.0 if math.isnan(background) else background
        return out
    if kind == "multilabel":
        prior = train.targets.float().mean(0)
    else:
        prior = torch.bincount(train.targets.long(), minlength=max(num_classes, 2)).float()
        prior = prior / prior.sum()
    return {"class-prior": score(prior.expand(len(split), -1).clone(), split, kind)["value"]}


def validation(cfg: FinetuneConfig, val: Split, kind: str, num_classes: int, train: Split,
               device: torch.device) -> Validation:
    """Checks that score the model on ``val`` as the test split is scored, above the floor of ``selection_floor``."""
    return Validation(lambda m: evaluate(m, val, kind, cfg.eval_batch_size, device, cfg.fast)["value"],
                      selection_floor(cfg, val, kind, num_classes, train))


def selection_floor(cfg: FinetuneConfig, val: Split, kind: str, num_classes: int, train: Split) -> float:
    """The validation score a check must beat before early stopping may fire (``FinetuneConfig.selection``):
    the best trivial predictor on the validation split plus ``TRIVIAL_MARGIN``; -inf for "best"."""
    if cfg.selection == "best":
        return -math.inf
    return max(trivial_scores(val, kind, num_classes, train).values()) + TRIVIAL_MARGIN
