"""Analyses: the annotation-cost computation on hand-made curves, and every command end to end (smoke)."""
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmark.analyses.label_efficiency import annotation_cost, crossing
from benchmark.analyses.mixing import parse_pair
from benchmark.core import registry

FR = [0.1, 0.2, 0.4, 0.6, 1.0]


def test_crossing_linear_curve_at_exactly_30_percent():
    line = [50 + 100 * f for f in FR]  # reaches 80 at f = 0.3, between the measured 0.2 and 0.4
    assert crossing(FR, line, 80.0) == pytest.approx(0.3)


def test_crossing_never_reached_and_already_above():
    assert crossing(FR, [50, 55, 60, 65, 70], 80.0) == math.inf
    assert crossing(FR, [85, 86, 87, 88, 90], 80.0) == 0.1  # not extrapolated below the smallest fraction


def test_crossing_takes_the_first_crossing_and_rejects_bad_input():
    assert crossing(FR, [50, 90, 70, 95, 95], 80.0) == pytest.approx(0.1 + 0.75 * 0.1)
    with pytest.raises(ValueError, match="increasing"):
        crossing([0.5, 0.1], [1, 2], 1.0)


def test_annotation_cost_bootstrap_brackets_the_point_and_reports_not_reached():
    rng = np.random.default_rng(0)
    values = [[50 + 100 * f + e for e in rng.normal(0, 1, 5)] for f in FR]
    cost = annotation_cost(FR, values, [80 + e for e in rng.normal(0, 1, 5)], n_boot=500)
    assert 0.2 < cost.fraction < 0.4 and cost.lo <= cost.fraction <= cost.hi
    assert cost.hi - cost.lo < 0.1 and cost.saving == pytest.approx(1 - cost.fraction)
    exact = annotation_cost(FR, [[50 + 100 * f] * 3 for f in FR], [80.0] * 3, n_boot=100)
    assert (exact.fraction, exact.lo, exact.hi) == pytest.approx((0.3, 0.3, 0.3))  # no seed noise: no spread
    never = annotation_cost(FR, [[60.0, 61.0]] * 5, [80.0, 81.0], n_boot=100)
    assert never.fraction == math.inf and never.hi == math.inf and math.isnan(never.saving)
    edge = annotation_cost(FR, [[79.0, 81.5]] + [[90.0, 91.0]] * 4, [80.0, 80.0], n_boot=400)
    assert edge.lo == 0.1 and 0.1 < edge.hi <= 0.2  # some resamples cross at once, some only later


def test_mean_curve_carries_a_stopped_run_at_its_best():
    from benchmark.analyses.convergence import mean_curve

    mean, std = mean_curve([[10, 30, 20], [10, 20, 30, 40, 50]])
    assert mean.tolist() == [10, 25, 25, 35, 40] and std[0] == 0 and std[-1] > 0


def test_variants_are_tower_presets_and_pairs_parse():
    assert {"gen-translation", "gen-mask", "gen-both", "con-both"} <= set(registry.VARIANTS)
    assert registry.method_spec("con-both") == ("tower", {"generative_weight": 0.0})
    assert registry.method_spec("moco") == ("moco", {})
    with pytest.raises(KeyError, match="unknown method"):
        registry.method_spec("gen-nothing")
    assert parse_pair("con-both+random") == ("con-both", "random") and parse_pair("tower") == ("tower", "tower")
    with pytest.raises(ValueError, match="ENCODER\\+DECODER"):
        parse_pair("a+b+c")


def _read(path):
    return pd.read_csv(path, comment="#")


def test_every_analysis_end_to_end_smoke(tmp_path, monkeypatch):
    """All five commands through the CLI on tiny settings, sharing one store (pretraining is reused)."""
    from benchmark.cli import app

    monkeypatch.chdir(tmp_path)  # pretraining runs go to ./runs/pretrain
    common = ["--budget", "smoke", "--store", "store", "--out", "out"]
    runner = CliRunner()

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["tower-bench", "analyse", *args])  # what the stamp records
        result = runner.invoke(app, ["analyse", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    invoke("ablation", "--task", "synth-fundus", "--seeds", "2", "--inits", "random,imagenet,gen-mask,tower", *common)
    md = (tmp_path / "out" / "ablation-synth-fundus-smoke.md").read_text()
    assert "- **command**: `tower-bench analyse ablation" in md and "**budget**: `smoke`" in md
    assert "| TOWER gen. (mask) | smoke | 2 |" in md and "79.60±0.54" in md  # the paper's Table 2 (DRIVE) beside ours
    table = _read(tmp_path / "out" / "ablation-synth-fundus-smoke.csv")
    assert set(table["init"]) == {"random", "gen-mask", "tower"}  # imagenet skipped offline, with a note
    assert (table["n"] == 2).all() and table["paper_drive"].notna().all()
    shipped = [json.loads(line) for line in (tmp_path / "out" / "ablation-synth-fundus-smoke.records.jsonl").open()]
    assert sorted((r["init"], r["seed"]) for r in shipped) == sorted((i, s) for i in table["init"] for s in (0, 1))
    if "imagenet" not in table["init"].tolist():
        assert "note: imagenet: no results (skipped" in md

    invoke("convergence", "--task", "synth-fundus", "--seeds", "2", "--inits", "random,tower", *common)
    conv = _read(tmp_path / "out" / "convergence-synth-fundus-smoke.csv")
    assert set(conv["init"]) == {"random", "tower"} and (conv["best_epoch_mean"] >= 1).all()

    invoke("mixing", "--task", "synth-fundus", "--seeds", "2", "--pairs", "tower+tower,gen-mask+random", *common)
    mix = _read(tmp_path / "out" / "mixing-synth-fundus-smoke.csv")
    assert set(mix["init"]) == {"tower+tower", "gen-mask+random"}
    from benchmark.results.store import ResultStore

    mixed = ResultStore(tmp_path / "store").records("synth-fundus", init="gen-mask+random")
    assert len(mixed) == 2 and mixed[0]["config"]["init_decoder"] == "random"

    invoke("label-efficiency", "--task", "synth-fundus-grade", "--seeds", "1", "--inits", "random,tower",
           "--references", "random", "--fractions", "0.5,1", "--n-boot", "100", *common)
    costs = _read(tmp_path / "out" / "label-efficiency-synth-fundus-grade-smoke.csv")
    assert list(costs["init"]) == ["tower"] and costs["reference"].iloc[0] == "random @ 100%"
    curves = _read(tmp_path / "out" / "label-efficiency-synth-fundus-grade-smoke-curves.csv")
    assert len(curves) == 4 and (curves["n"] == 1).all()

    invoke("representations", "--task", "synth-fundus-grade", "--inits", "random,tower", "--k", "5", "--budget",
           "smoke", "--out", "out")
    rep = _read(tmp_path / "out" / "representations-synth-fundus-grade-smoke.csv")
    assert list(rep["init"]) == ["random", "tower"] and rep["knn5"].between(0, 100).all()
    for name in ("ablation-synth-fundus", "convergence-synth-fundus", "mixing-synth-fundus",
                 "label-efficiency-synth-fundus-grade", "representations-synth-fundus-grade"):
        for ext in ("md", "csv", "png"):
            assert (tmp_path / "out" / f"{name}-smoke.{ext}").stat().st_size > 0
    assert not (tmp_path / "out" / "synth-fundus-smoke.md").exists()  # analyses leave the main leaderboard alone
