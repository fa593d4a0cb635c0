"""Test metrics, computed once over the whole split (never averaged per batch).

The reference code averaged AUC per batch and lost whole splits to ``drop_last``; here Dice is
pooled over every valid pixel of the split (streamed through ``DiceAccumulator``) and AUC is
MedMNIST's ``getAUC`` on the full score matrix, so our numbers are comparable with the paper's.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, roc_auc_score

# Our task kinds -> MedMNIST's task strings (MedMNIST's own strings are accepted as they are).
MEDMNIST_TASKS = {
    "binary": "binary-class",
    "multiclass": "multi-class",
    "multilabel": "multi-label, binary-class",
    "ordinal": "ordinal-regression",
}
_ALL_TASKS = set(MEDMNIST_TASKS.values())


def _binary(x: torch.Tensor, name: str) -> torch.Tensor:
    """A {0, 1} mask as bool; anything else (probabilities, class ids > 1) is a caller bug."""
    if x.dtype == torch.bool:
        return x
    if bool(((x != 0) & (x != 1)).any()):
        raise ValueError(f"dice: {name} must hold only 0/1 (threshold or argmax first), got values in "
                         f"[{x.min().item()}, {x.max().item()}]")
    return x != 0


def _confusion(pred, target, valid, dims: tuple[int, ...] | None) -> tuple[torch.Tensor, ...]:
    """True positives, false positives and false negatives inside ``valid``, summed over ``dims``."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"dice: pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    p, t = _binary(pred, "pred"), _binary(target, "target")
    if valid is not None:
        valid = torch.as_tensor(valid, device=p.device)
        if valid.shape != p.shape:
            raise ValueError(f"dice: valid shape {tuple(valid.shape)} != pred shape {tuple(p.shape)}")
        v = _binary(valid, "valid")
        p, t = p & v, t & v
    dims = tuple(range(p.ndim)) if dims is None else dims
    tp = (p & t).sum(dims, dtype=torch.int64)
    fp = (p & ~t).sum(dims, dtype=torch.int64)
    fn = (~p & t).sum(dims, dtype=torch.int64)
    return tp, fp, fn


class DiceAccumulator:
    """Global Dice (%) streamed over batches: counts stay on the device, one sync in ``compute``."""

    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None  # (tp, fp, fn)
        self.images = 0

    def update(self, pred, target, valid=None) -> None:
        """Add a batch of (N, H, W) {0,1} predictions and targets; ``valid`` masks the FOV."""
        pred = torch.as_tensor(pred)
        batch = torch.stack(_confusion(pred, target, valid, None))
        self.counts = batch if self.counts is None else self.counts + batch.to(self.counts.device)
        self.images += pred.shape[0] if pred.ndim == 3 else 1

    def compute(self) -> float:
        if self.counts is None:
            raise ValueError("dice: no batches were added; the test split produced zero batches")
        tp, fp, fn = (int(c) for c in self.counts.tolist())
        if 2 * tp + fp + fn == 0:
            raise ValueError(f"dice: undefined, no foreground pixel in predictions or targets over {self.images} images")
        return 100.0 * 2 * tp / (2 * tp + fp + fn)


def dice(pred, target, valid=None) -> float:
    """Global Dice (%) = 2TP / (2TP + FP + FN) over all pixels of the split inside ``valid``."""
    acc = DiceAccumulator()
    acc.update(pred, target, valid)
    return acc.compute()


def dice_per_image(pred, target, valid=None) -> torch.Tensor:
    """Dice (%) of each image of an (N, H, W) batch; NaN where an image has no foreground at all."""
    tp, fp, fn = (c.double() for c in _confusion(pred, target, valid, (-2, -1)))
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 100.0 * 2 * tp / denom.clamp_min(1), torch.full_like(denom, float("nan")))


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu() if x.is_floating_point() else x.detach().cpu()
        return x.numpy()
    return np.asarray(x)


def _prepare(scores, targets, kind: str, from_logits: bool, metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Validate and shape scores/targets the way MedMNIST's evaluator expects them."""
    task = MEDMNIST_TASKS.get(kind, kind)
    if task not in _ALL_TASKS:
        raise ValueError(f"{metric}: unknown kind {kind!r}; expected one of {sorted(MEDMNIST_TASKS) + sorted(_ALL_TASKS)}")
    s = _numpy(scores).astype(np.float64)
    y = _numpy(targets)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if task != "multi-label, binary-class" and y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # MedMNIST stores labels as (N, 1)
    if len(s) == 0:
        raise ValueError(f"{metric}: empty split (no scores); the evaluation loop produced zero batches")
    if len(s) != len(y):
        raise ValueError(f"{metric}: {len(s)} scores but {len(y)} targets")
    if not np.isfinite(s).all():
        raise ValueError(f"{metric}: scores contain NaN or inf")
    if from_logits:
        t = torch.from_numpy(s)
        if task == "multi-label, binary-class" or s.ndim == 1:
            s = torch.sigmoid(t).numpy()
        else:
            s = torch.softmax(t, dim=1).numpy()
    if task in ("multi-class", "ordinal-regression") and s.ndim != 2:
        raise ValueError(f"{metric}: {kind} needs scores of shape (N, classes), got {s.shape}")
    if task == "multi-label, binary-class" and (s.ndim != 2 or y.shape != s.shape):
        raise ValueError(f"{metric}: multilabel needs scores and targets of the same shape (N, labels), "
                         f"got {s.shape} and {y.shape}")
    if task == "binary-class" and s.ndim == 2:
        if s.shape[1] != 2:
            raise ValueError(f"{metric}: binary scores must be (N,) or (N, 2), got {s.shape}")
        s = s[:, -1]  # probability of the positive class, as MedMNIST does
    return s, y, task


def _roc_auc(y: np.ndarray, s: np.ndarray, what: str) -> float:
    values = np.unique(y)
    if len(values) < 2:
        raise ValueError(f"auc: undefined for {what}: the split holds only class {values.tolist()} ({len(y)} samples)")
    return float(roc_auc_score(y, s))


def auc(scores, targets, kind: str, from_logits: bool = False) -> float:
    """AUC (%) over the full split, exactly as ``medmnist.evaluator.getAUC`` computes it.

    kind: binary | multiclass | multilabel | ordinal (or MedMNIST's task strings).
    scores: probabilities (softmax / sigmoid applied) unless ``from_logits``; binary takes (N,)
    or (N, 2) (last column = positive class); multiclass is the one-vs-rest mean over classes.
    """
    s, y, task = _prepare(scores, targets, kind, from_logits, "auc")
    if task == "binary-class":
        return 100.0 * _roc_auc(y, s, "binary AUC")
    if task == "multi-label, binary-class":
        return 100.0 * float(np.mean([_roc_auc(y[:, i], s[:, i], f"label {i}") for i in range(s.shape[1])]))
    per_class = [_roc_auc((y == i).astype(float), s[:, i], f"class {i} (one-vs-rest)") for i in range(s.shape[1])]
    return 100.0 * float(np.mean(per_class))


def auc_resamples(scores, targets, kind: str, index: np.ndarray) -> np.ndarray:
    """``auc`` of each resample ``index[b]`` (a (B, N) array of sample indices), B at once.

    The Mann-Whitney form of the ROC AUC with average ranks for ties, which is what ``roc_auc_score`` computes;
    a resample that lacks a class (or a label's positives or negatives) gets NaN where ``auc`` would raise.
    """
    s, y, task = _prepare(scores, targets, kind, False, "auc")
    if task == "binary-class":
        columns = [(s[:, -1] if s.ndim == 2 else s, y)]
    elif task == "multi-label, binary-class":
        columns = [(s[:, i], y[:, i]) for i in range(s.shape[1])]
    else:
        columns = [(s[:, i], y == i) for i in range(s.shape[1])]
    per_column = []
    for score_col, positive in columns:
        ranks = rankdata(score_col[index], axis=1)
        pos = positive.astype(bool)[index]
        n_pos, n_neg = pos.sum(1), (~pos).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_column.append(((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return 100.0 * np.mean(per_column, axis=0)


def accuracy(scores, targets, kind: str, threshold: float = 0.5, from_logits: bool = False) -> float:
    """Accuracy (%) as ``medmnist.evaluator.getACC``: argmax for multiclass, ``threshold`` otherwise."""
    s, y, task = _prepare(scores, targets, kind, from_logits, "accuracy")
    if task == "multi-label, binary-class":
        return 100.0 * float(np.mean([accuracy_score(y[:, i], s[:, i] > threshold) for i in range(s.shape[1])]))
    if task == "binary-class":
        return 100.0 * float(accuracy_score(y, s > threshold))
    return 100.0 * float(accuracy_score(y, np.argmax(s, axis=-1)))

