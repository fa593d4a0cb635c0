"""The protocol checks a null result needs: the plateau rule and ``converged``, the A/A and supervised controls, the
prior-initialised head, and boards that state their power and refuse tests against a constant."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from benchmark.core.config import BUDGETS, FinetuneConfig
from benchmark.core.names import SUPERVISED
from benchmark.finetuning.inits import AA_CONTROL
from benchmark.finetuning.protocols import build_model, class_prior, finetune
from benchmark.finetuning.supervised import supervised_config, train_supervised
from benchmark.finetuning.training import Schedule
from benchmark.results import stats
from benchmark.results.board import Board
from benchmark.results.leaderboard import build_leaderboard, controls_line
from benchmark.sweep.run import plan
from benchmark.sweep.spec import Sweep
from benchmark.tasks.synth_fundus import SynthFundus
from tests.conftest import TINY_DECODER, TINY_ENCODER
from zoo import UNet


def schedule(**kw) -> Schedule:
    base = dict(steps_per_epoch=1, total=1000, eval_every=25, patience=100, stop_after=200, plateau_share=0.25,
                plateau_margin=1.0)
    return Schedule(**{**base, **kw})


def test_the_plateau_rule_stops_a_flat_run_and_calls_a_rising_one_unconverged():
    plan_ = schedule()
    steps = list(range(25, 401, 25))
    flat = [50.0] * 4 + [60.0] * 12  # no gain over the last 100 steps
    rising = [float(s) / 10 for s in steps]  # +2.5 points a check, to the end
    assert plan_.window(400) == 100 and plan_.window(800) == 200
    assert plan_.gain(400, flat, steps) == 0.0 and plan_.stops(400, 125, flat, steps)
    assert not plan_.stops(150, 125, flat[:6], steps[:6])  # never before stop_after
    assert plan_.gain(400, rising, steps) == pytest.approx(10.0) and not plan_.converged(400, 400, rising, steps)
    assert plan_.gain(25, [1.0], [25]) == math.inf  # nothing before the window yet: not converged
    legacy = schedule(plateau_share=0.0, patience=80)  # the older patience rule
    assert legacy.converged(300, 200, rising, steps) and not legacy.converged(250, 200, rising, steps)


def test_the_cpu_budget_uses_the_plateau_rule_and_old_configs_keep_their_hash():
    cpu = BUDGETS["cpu"]
    assert cpu.finetune_plateau_share > 0 and cpu.finetune_plateau_margin > 0 and cpu.finetune_min_steps >= 800
    old = FinetuneConfig(task="synth-fundus")
    assert "plateau_share" not in old.hashed_fields() and "head_init" not in old.hashed_fields()
    assert "plateau_share" in old.replace(plateau_share=0.25).hashed_fields()


def tiny(**kw) -> FinetuneConfig:
    base = dict(task="synth-fundus", encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=1, min_steps=4,
                batch_size=4, lr=3e-3, patience=2, eval_batch_size=16, image_size=32, eval_every=2)
    return FinetuneConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def task():
    return SynthFundus(None, 32)


def test_the_aa_control_differs_from_random_in_its_weights_only(task):
    a, b = build_model(tiny(init="random", seed=3), task), build_model(tiny(init=AA_CONTROL, seed=3), task)
    def first(net):
        return next(net.encoder.parameters())

    assert not torch.equal(first(a), first(b))
    again = build_model(tiny(init=AA_CONTROL, seed=3), task)
    assert torch.equal(first(b), first(again))  # its own seed stream, reproducible
    ra, rb = (finetune(tiny(init=i, seed=3), task, progress=False) for i in ("random", AA_CONTROL))
    assert ra["n_train"] == rb["n_train"] and ra["config_hash"] == rb["config_hash"]  # same protocol and labels
    every = Sweep.resolve("all", "synth-fundus").methods
    assert "random-aa" in every and "supervised" in every


def test_a_prior_head_starts_at_the_class_prior(task):
    train = task.load("train")
    prior = class_prior(train, "segmentation", 2)
    assert 0.02 < prior[1] < 0.3 and torch.isclose(prior.sum(), torch.tensor(1.0))
    net = build_model(tiny(head_init="prior"), task, prior)
    torch.testing.assert_close(net.head.bias.softmax(0), prior)
    with pytest.raises(Exception, match="head init"):
        tiny(head_init="bogus")


def test_supervised_trains_on_the_pool_and_exports_weights_a_fine_tuning_loads(task, tmp_path):
    cfg = supervised_config(BUDGETS["smoke"], task, "synth-fundus", None)
    assert cfg.extra == {"control": "supervised"} and cfg.min_steps == BUDGETS["smoke"].pretrain_max_steps
    assert task.supervised_split().images.shape[0] == task.sizes["pool"]  # the pool, not a labelled split
    cfg = cfg.replace(encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, eval_batch_size=16)
    export = train_supervised(cfg, task, tmp_path / "sup", progress=False)
    net = UNet.from_pretrained(export)
    assert net.export_info.method == "supervised" and net.export_info.trains_decoder
    assert "supervised_val" in net.export_info.health
    rec = finetune(tiny(init=str(export)), task, progress=False)
    assert rec["pretrain_health"]["supervised_images"] == task.sizes["pool"]


def test_a_smoke_plan_has_the_controls(tmp_path):
    todo = plan(Sweep.resolve(["supervised", "random", AA_CONTROL], "synth-fundus", "smoke", seeds=2), tmp_path / "store")
    assert [str(j) for j in todo.pretrain] == ["pretrain supervised on synth-fundus"]
    assert sorted({j.name for j in todo.finetune}) == ["random", "random-aa", "supervised"]


def record(init: str, seed: int, value: float, converged=True) -> dict:
    return {"task": "t", "init": init, "seed": seed, "label_fraction": 1.0, "budget": "cpu", "metric": "dice",
            "value": value, "config_hash": "h", "trivial": {"all-foreground": 10.0}, "converged": converged}


def test_a_board_states_its_controls_power_and_convergence():
    tower = [70.0, 72.0, 71.0, 69.0, 73.0]
    rand = [60.0, 65.0, 61.0, 64.0, 63.0]
    aa = [61.0, 64.0, 62.0, 63.0, 64.5]
    recs = ([record("tower", s, v) for s, v in enumerate(tower)] + [record("random", s, v) for s, v in enumerate(rand)]
            + [record(AA_CONTROL, s, v, converged=s != 0) for s, v in enumerate(aa)])
    df = build_leaderboard(recs, "t")
    rows = df.set_index("init")
    d = [r - t for r, t in zip(rand, tower)]
    sd = float(torch.tensor(d).std())
    expected = (scipy_stats.t.ppf(1 - 0.005 / 2, 4) + scipy_stats.t.ppf(0.8, 4)) * sd / math.sqrt(5)
    assert rows.loc["random", "mdd"] == pytest.approx(expected)
    assert rows.loc["random", "wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(rand, tower).pvalue)
    assert rows.loc["random", "p_holm"] >= rows.loc["random", "p"]
    assert rows.loc[AA_CONTROL, "converged"] == "4/5" and not rows.loc[AA_CONTROL, "counts"]
    assert "not converged" in rows.loc[AA_CONTROL, "note"]
    aa_cmp = df.attrs["controls"]["A/A control"]
    assert aa_cmp["p"] == pytest.approx(scipy_stats.ttest_rel(aa, rand).pvalue)
    line = controls_line(df)
    assert "A/A control" in line and "minimum detectable difference" in line and "no positive control" in line


def test_a_board_tests_its_positive_control_against_random_init():
    rand = [60.0, 65.0, 61.0, 64.0, 63.0]
    sup = [66.0, 69.5, 67.0, 70.0, 68.0]
    recs = [record("random", s, v) for s, v in enumerate(rand)] + [record(SUPERVISED, s, v) for s, v in enumerate(sup)]
    df = build_leaderboard(recs, "t", reference="random")
    found = df.attrs["controls"]["positive control"]
    assert found["p"] == pytest.approx(scipy_stats.ttest_rel(sup, rand).pvalue)
    assert found["diff"] == pytest.approx(sum(sup) / 5 - sum(rand) / 5)
    line = controls_line(df)
    assert f"positive control ({SUPERVISED} vs random, expected to win): difference +{found['diff']:.2f}" in line
    assert "no A/A control" in line


def test_no_test_against_a_row_of_one_repeated_value():
    cmp = stats.compare({s: 65.0 for s in range(5)}, {s: 60.0 + s for s in range(5)})
    assert math.isnan(cmp.p) and cmp.test == "none" and "zero variance" in cmp.note


def test_exact_wilcoxon_and_seeds_needed_match_scipy():
    a, b = {s: float(v) for s, v in enumerate([3, 1, 4, 1, 5, 9, 2])}, {s: 0.0 for s in range(7)}
    b[3] = 2.0  # one negative difference
    assert stats.wilcoxon_p(a, b) == pytest.approx(scipy_stats.wilcoxon(list(a.values()), list(b.values())).pvalue)
    n = stats.seeds_needed(3.55, 2.0)
    assert stats.min_detectable_difference(2.0, n) <= 3.55 < stats.min_detectable_difference(2.0, n - 1)


def test_rows_that_never_vary_are_compared_by_the_test_sets_bootstrap_not_against_a_constant():
    rng = np.random.default_rng(0)
    boot_random = list(60 + rng.normal(0, 1, 1000))
    boot_tower = [v + 3 + rng.normal(0, 0.5) for v in boot_random]

    def knn(init, value, boot):
        return [{**record(init, s, value), "protocol": "knn", "test_bootstrap": {"seed": 0, "n_test": 400,
                                                                               "values": boot}} for s in range(5)]
    df = build_leaderboard(knn("tower", 63.0, boot_tower) + knn("random", 60.0, boot_random),
                           Board("t", protocol="knn")).set_index("init")
    assert df.loc["random", "test"] == "bootstrap"
    assert df.loc["random", "p"] == pytest.approx(stats.bootstrap_compare(boot_random, boot_tower).p)
    assert df.loc["random", "p"] < 0.01 and "paired bootstrap over test images" in df.loc["random", "note"]
    varied = knn("random", 60.0, boot_random)
    for r in varied:  # a random encoder per seed: the row varies; each resample enters as the seeds' mean
        r["value"] += r["seed"]
        r["test_bootstrap"] = {**r["test_bootstrap"], "values": [v + r["seed"] for v in boot_random]}
    df = build_leaderboard(knn("tower", 63.0, boot_tower) + varied, Board("t", protocol="knn")).set_index("init")
    shifted = [v + 2 for v in boot_random]
    assert df.loc["random", "p"] == pytest.approx(stats.bootstrap_compare(shifted, boot_tower).p)
    assert "their own variance is not in this p" in df.loc["random", "note"]
    drawn_apart = knn("random", 60.0, boot_random)
    for r in drawn_apart:
        r["test_bootstrap"] = {**r["test_bootstrap"], "seed": 1}  # other index sets: nothing to pair
    df = build_leaderboard(knn("tower", 63.0, boot_tower) + drawn_apart, Board("t", protocol="knn")).set_index("init")
    assert df.loc["random", "test"] == "none" and math.isnan(df.loc["random", "p"])


def test_a_rerun_under_another_config_replaces_its_seeds_instead_of_counting_them_twice():
    old = [{**record("random", s, 60.0 + s), "config_hash": "old", "created": "2026-01-01"} for s in range(3)]
    new = [{**record("random", s, 70.0 + s), "config_hash": "new", "created": "2026-02-01"} for s in range(3)]
    rows = build_leaderboard(new + old, "t", reference="random").set_index("init")
    assert rows.loc["random", "n"] == 3 and rows.loc["random", "mean"] == pytest.approx(71.0)
    assert "3 older record(s) of the same seeds (another config) not shown" in rows.loc["random", "note"]


def test_newest_per_seed_keeps_each_label_fraction_and_protocol_apart():
    from benchmark.results.board import newest_per_seed

    recs = [{**record("random", 0, 60.0), "label_fraction": f, "protocol": p, "created": c}
            for f in (0.5, 1.0) for p in ("finetune", "knn") for c in ("2026-01-01", "2026-02-01")]
    kept = newest_per_seed(recs)
    assert len(kept) == 4 and {r["created"] for r in kept} == {"2026-02-01"}
