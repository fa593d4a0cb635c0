"""The linear probe's head and the pixels reference (benchmark/finetuning/logistic.py), precise-BN, and the
reference row they put on a classification board."""
from __future__ import annotations

import math

import pytest
import torch

from benchmark.finetuning.logistic import C_GRID, logistic_probe, pixels_reference, pooled_pixels, standardise
from benchmark.finetuning.probe import precise_bn
from benchmark.finetuning.protocols import build_model, finetune
from benchmark.results.leaderboard import Board, build_leaderboard
from benchmark.sweep.run import make_task
from benchmark.tasks.base import Split
from tests.benchmark.tasks.fixtures import write_medmnist
from tests.benchmark.test_protocols import same_state, tiny


def split(x: torch.Tensor, y: torch.Tensor) -> Split:
    return Split(torch.zeros(len(y), 3, 8, 8, dtype=torch.uint8), y, ids=[str(i) for i in range(len(y))])


def features(n: int, signal: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 16, generator=g) * 100.0  # features on a scale an Adam head with a fixed lr struggles with
    x[:, 0] += signal * 100.0 * y
    return x, y


def test_standardise_uses_the_training_statistics_only():
    train, other = torch.randn(50, 4) * 7 + 3, torch.randn(20, 4) * 7 + 3
    a, b = standardise(train, other)
    assert abs(a.mean(0)).max() < 1e-5 and abs(a.std(0, ddof=1) - 1).max() < 1e-5  # float32 statistics
    assert abs(b.mean(0)).max() > 1e-3  # the other split keeps its own offset


def test_the_probe_learns_a_signal_chooses_c_on_validation_and_scores_chance_on_noise():
    (xt, yt), (xv, yv), (xs, ys) = (features(n, 2.5, s) for n, s in ((200, 0), (100, 1), (200, 2)))
    got = logistic_probe(xt, split(xt, yt), xv, split(xv, yv), xs, split(xs, ys), "binary", 2).record
    assert got["value"] > 85 and got["probe"]["C"] in C_GRID and got["converged"]
    assert got["val_best"] == max(t["val"] for t in got["probe"]["grid"]) and len(got["probe"]["grid"]) == len(C_GRID)
    (nt, yt), (nv, yv), (ns, ys) = (features(n, 0.0, s) for n, s in ((200, 3), (100, 4), (400, 5)))
    noise = logistic_probe(nt, split(nt, yt), nv, split(nv, yv), ns, split(ns, ys), "binary", 2).record
    assert 35 < noise["value"] < 65


def test_pixels_reference_sees_what_the_image_shows():
    g = torch.Generator().manual_seed(0)

    def bright(n):  # class 1 images are brighter: the 8 x 8 image alone separates them
        y = torch.randint(0, 2, (n,), generator=g)
        x = (torch.rand(n, 3, 16, 16, generator=g) * 120 + 60 * y.view(-1, 1, 1, 1)).to(torch.uint8)
        return Split(x, y, ids=[str(i) for i in range(n)])

    train, val, test = bright(80), bright(40), bright(80)
    assert pooled_pixels(train).shape == (80, 3 * 64)
    assert pixels_reference(train, val, test, "binary", 2) > 90


def test_precise_bn_recomputes_the_encoders_statistics_and_nothing_else(tmp_path):
    write_medmnist(tmp_path / "m", "retinamnist", counts=None)
    task = make_task("retinamnist", tmp_path / "m", 32)
    cfg = tiny("retinamnist", protocol="linear", augment=False, probe_revision=2)
    model, fresh = build_model(cfg, task), build_model(cfg, task)
    precise_bn(model.net, task.load("train"), 8, torch.device("cpu"))
    norms = [m for m in model.net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and all(m.momentum == 0.1 for m in norms)
    assert not torch.allclose(norms[0].running_mean, torch.zeros_like(norms[0].running_mean))
    params = dict(model.net.named_parameters())
    assert all(torch.equal(p, params[k]) for k, p in fresh.net.named_parameters())  # no weight moved
    assert not same_state(model.net.encoder, fresh.net.encoder)  # the statistics did


def test_a_linear_record_carries_its_probe_and_the_pixels_reference_and_the_board_shows_it(tmp_path):
    write_medmnist(tmp_path / "m", "retinamnist", counts=None)
    task = make_task("retinamnist", tmp_path / "m", 32)
    recs = []
    for init, seed in (("random", 0), ("random", 1), ("random-aa", 0), ("random-aa", 1)):
        rec = finetune(tiny("retinamnist", protocol="linear", augment=False, init=init, seed=seed, probe_revision=2), task,
                       progress=False)
        assert rec["probe"]["C"] in C_GRID and 0 <= rec["value"] <= 100 and "curve" not in rec
        assert 0 <= rec["references"]["pixels"] <= 100
        assert len(rec["test_bootstrap"]["values"]) == 1000 and rec["test_bootstrap"]["n_test"] == rec["n_test"]
        recs.append({**rec, "init": init})
    df = build_leaderboard(recs, Board("retinamnist", protocol="linear"), reference="random")
    ref = df.set_index("init").loc["reference: pixels"]
    assert ref["kind"] == "reference" and ref["n"] == 2 and not ref["counts"]
    assert ref["mean"] == pytest.approx((recs[0]["references"]["pixels"] + recs[1]["references"]["pixels"]) / 2)
    assert math.isnan(ref["p"]) and "no network" in ref["note"]
