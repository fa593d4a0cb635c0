import numpy as np
import pytest
import torch
from medmnist.evaluator import getACC, getAUC

from benchmark.finetuning.metrics import DiceAccumulator, accuracy, auc, auc_resamples, dice, dice_per_image


def _masks(seed=0, n=6, size=16):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, size, size, generator=g) > 0.6
    target = torch.rand(n, size, size, generator=g) > 0.7
    valid = torch.rand(n, size, size, generator=g) > 0.2
    return pred, target, valid


def _dice_numpy(pred, target, valid):
    p, t = pred.numpy()[valid.numpy()], target.numpy()[valid.numpy()]
    return 100 * 2 * np.sum(p & t) / (np.sum(p) + np.sum(t))


def test_dice_is_global_over_valid_pixels():
    pred, target, valid = _masks()
    assert dice(pred, target, valid) == pytest.approx(_dice_numpy(pred, target, valid))
    # without the FOV mask, outside pixels count and the number changes
    assert dice(pred, target) != pytest.approx(dice(pred, target, valid))
    assert dice(target, target, valid) == 100.0


def test_accumulator_streams_batches_without_dropping_and_differs_from_per_batch_mean():
    pred, target, valid = _masks(n=7)
    acc = DiceAccumulator()
    for lo in range(0, 7, 3):  # batches of 3, 3, 1: the last small batch still counts
        acc.update(pred[lo:lo + 3].int(), target[lo:lo + 3].long(), valid[lo:lo + 3])
    assert acc.images == 7
    assert acc.compute() == pytest.approx(dice(pred, target, valid))
    per_image = dice_per_image(pred, target, valid)
    assert per_image.shape == (7,)
    assert per_image[0].item() == pytest.approx(_dice_numpy(pred[:1], target[:1], valid[:1]))
    assert per_image.mean().item() != pytest.approx(acc.compute())


def test_dice_errors_are_clear():
    with pytest.raises(ValueError, match="zero batches"):
        DiceAccumulator().compute()
    with pytest.raises(ValueError, match="0/1"):
        dice(torch.rand(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        dice(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="undefined"):
        dice(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))
    assert torch.isnan(dice_per_image(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))).all()


def _scores(kind, n=60, k=5, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "multi-label, binary-class":
        y = (rng.random((n, k)) > 0.5).astype(int)
        return 1 / (1 + np.exp(-(rng.normal(size=(n, k)) + y))), y
    if kind == "binary-class":
        y = rng.integers(0, 2, size=(n, 1))
        logits = rng.normal(size=(n, 2)) + np.eye(2)[y[:, 0]]
    else:
        y = rng.integers(0, k, size=(n, 1))
        y[:k, 0] = np.arange(k)  # every class present
        logits = rng.normal(size=(n, k)) + np.eye(k)[y[:, 0]]
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True), y


@pytest.mark.parametrize("task", ["binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression"])
def test_auc_and_accuracy_equal_medmnist(task):
    scores, y = _scores(task)
    assert auc(scores, y, task) == pytest.approx(100 * getAUC(y, scores, task), abs=1e-12)
    assert accuracy(scores, y, task) == pytest.approx(100 * getACC(y, scores, task), abs=1e-12)
    # our kind names and torch tensors give the same number
    ours = {"binary-class": "binary", "multi-class": "multiclass", "multi-label, binary-class": "multilabel",
            "ordinal-regression": "ordinal"}[task]
    assert auc(torch.from_numpy(scores).float(), torch.from_numpy(y), ours) == pytest.approx(
        100 * getAUC(y, scores, task), abs=1e-5)


def test_auc_binary_accepts_one_column_and_logits():
    scores, y = _scores("binary-class")
    assert auc(scores[:, 1], y[:, 0], "binary") == pytest.approx(auc(scores, y, "binary"))
    logits = np.log(scores)
    assert auc(logits, y, "multiclass", from_logits=True) == pytest.approx(auc(scores, y, "multiclass"))


def test_auc_over_full_split_is_not_mean_of_batches():
    scores, y = _scores("multi-class", n=200)
    full = auc(scores, y, "multiclass")
    batches = [auc(scores[i:i + 100], y[i:i + 100], "multiclass") for i in (0, 100)]
    assert full != pytest.approx(np.mean(batches))


def test_auc_errors_are_clear():
    with pytest.raises(ValueError, match="only class"):
        auc(np.array([0.1, 0.4, 0.8]), np.array([1, 1, 1]), "binary")
    with pytest.raises(ValueError, match="class 2"):
        auc(np.full((4, 3), 1 / 3), np.array([0, 1, 0, 1]), "multiclass")
    with pytest.raises(ValueError, match="empty split"):
        auc(np.zeros((0, 3)), np.zeros((0,)), "multiclass")
    with pytest.raises(ValueError, match="unknown kind"):
        auc(np.zeros((4, 2)), np.zeros(4), "regression")
    with pytest.raises(ValueError, match="NaN"):
        auc(np.array([np.nan, 0.2]), np.array([0, 1]), "binary")
    with pytest.raises(ValueError, match="3 scores but 2 targets"):
        auc(np.array([0.1, 0.2, 0.3]), np.array([0, 1]), "binary")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_resampled_auc_is_auc_of_each_resample_ties_included(kind):
    g = torch.Generator().manual_seed(0)
    n = 120
    if kind == "multilabel":
        scores, targets = torch.rand(n, 3, generator=g), torch.randint(0, 2, (n, 3), generator=g)
    else:
        classes = 2 if kind == "binary" else 4
        scores, targets = torch.rand(n, classes, generator=g), torch.randint(0, classes, (n, 1), generator=g)
    scores = scores.mul(5).round() / 5  # coarse scores: many ties, which roc_auc_score averages
    index = np.random.default_rng(1).integers(0, n, (30, n))
    got = auc_resamples(scores, targets, kind, index)
    assert got == pytest.approx([auc(scores[i], targets[i], kind) for i in index], abs=1e-9)


def test_a_resample_without_a_class_gets_nan_not_an_error():
    scores, targets = torch.rand(6, 2), torch.tensor([[0], [0], [0], [1], [1], [1]])
    got = auc_resamples(scores, targets, "binary", np.array([[0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 4, 5]]))
    assert np.isnan(got[0]) and got[1] == pytest.approx(auc(scores, targets, "binary"))
