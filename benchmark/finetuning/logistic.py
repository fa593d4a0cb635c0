"""Logistic regression on standardised features, its strength chosen on the validation split: the linear probe's
head, and the ``pixels`` reference every classification board carries.

A linear probe trained with a fine-tuning schedule (Adam, a fixed lr, no weight decay) on unscaled features
measures the schedule as much as the features: a random encoder's features span orders of magnitude, and the
probe scored below the class prior (49.4 AUC on RetinaMNIST) while the image's mean colour alone scored 71.9.
As the field runs it (CLIP's and VTAB's linear evaluations; MAE's BatchNorm without affine before the head),
the features are standardised on the training split and an L-BFGS logistic regression is fitted for each
inverse regularisation strength in ``C_GRID``; validation picks one, the test split is scored once.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.tasks.base import Split

C_GRID = tuple(10.0 ** k for k in range(-4, 3))  # 1e-4 .. 100, as CLIP's sweep spans
PIXELS_SIZE = 8  # the pixels reference: the image average-pooled to 8 x 8 (x channels) values


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[np.ndarray]:
    """Every feature to zero mean and unit variance on the training split (a BatchNorm without affine)."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [((x - mean) / std).double().numpy() for x in (train, *others)]


def _fit(x: np.ndarray, y: np.ndarray, kind: str, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = LogisticRegression(C=c, max_iter=1000)
    model = OneVsRestClassifier(model) if kind == "multilabel" else model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the weakest regularisation: recorded, not printed
        model.fit(x, y)
    return model


def _iterations(model) -> int:
    fitted = getattr(model, "estimators_", [model])
    return int(max(int(np.max(m.n_iter_)) for m in fitted))


def _scores(model, x: np.ndarray, kind: str, num_outputs: int) -> torch.Tensor:
    """Class (or label) probabilities, one column per class even when the training split lacked some."""
    proba = torch.from_numpy(model.predict_proba(x)).float()
    if kind == "multilabel":
        return proba
    out = torch.zeros(len(x), num_outputs)
    out[:, torch.as_tensor(model.classes_, dtype=torch.long)] = proba
    return out


class LogisticFit(NamedTuple):
    """The probe's record (test score, what was tried) and its test predictions, for the caller that resamples
    them (the ``linear`` protocol) and not for the one that does not (the ``pixels`` reference)."""

    record: dict
    test_pred: torch.Tensor


def logistic_probe(train_x: torch.Tensor, train: Split, val_x: torch.Tensor, val: Split, test_x: torch.Tensor,
                   test: Split, kind: str, num_outputs: int) -> LogisticFit:
    """The test score of the logistic regression whose C scored best on validation, and what was tried."""
    from benchmark.finetuning.scoring import score

    xs = standardise(train_x.float(), val_x.float(), test_x.float())
    y = train.targets.numpy()
    tried, best = [], None
    for c in C_GRID:
        model = _fit(xs[0], y, kind, c)
        value = score(_scores(model, xs[1], kind, num_outputs), val, kind)["value"]
        tried.append({"C": c, "val": value, "iterations": _iterations(model)})
        if best is None or value > best[0]:
            best = (value, c, model)
    val_best, c, model = best
    test_pred = _scores(model, xs[2], kind, num_outputs)
    return LogisticFit({"value": score(test_pred, test, kind)["value"], "val_best": val_best,
                        "probe": {"C": c, "grid": tried, "standardised": True},
                        "converged": _iterations(model) < 1000}, test_pred)


def pooled_pixels(split: Split, size: int = PIXELS_SIZE) -> torch.Tensor:
    """Each image average-pooled to ``size`` x ``size``: (N, channels * size**2) values in [0, 1]."""
    x = split.images.float().div(255)
    return F.adaptive_avg_pool2d(x, size).flatten(1)


def pixels_reference(train: Split, val: Split, test: Split, kind: str, num_classes: int) -> float:
    """The ``pixels`` reference: standardised logistic regression on the 8 x 8 image, no network at all. A frozen
    encoder whose features do worse than its own input does not represent the task."""
    if len(set(train.targets.flatten().tolist())) < 2 and kind != "multilabel":
        return math.nan
    outputs = num_classes if kind in ("multiclass", "multilabel") else max(num_classes, 2)
    return logistic_probe(pooled_pixels(train), train, pooled_pixels(val), val, pooled_pixels(test), test, kind,
                          outputs).record["value"]
