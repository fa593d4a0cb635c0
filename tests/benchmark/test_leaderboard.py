import math

import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.cli.leaderboard import leaderboard_command
from benchmark.results.leaderboard import Board, build_leaderboard, write_leaderboard
from benchmark.results.reference import paper_value
from benchmark.results.stats import holm, stars
from benchmark.results.store import ResultStore


def records(values: dict[str, list[float]], task="drive", seeds=None, budget="smoke", metric="dice"):
    out = []
    for init, vals in values.items():
        for i, v in enumerate(vals):
            seed = i if seeds is None else seeds[init][i]
            out.append({"task": task, "init": init, "seed": seed, "label_fraction": 1.0, "budget": budget,
                        "config_hash": "abc123", "metric": metric, "value": v})
    return out


def row(df, init):
    return df.set_index("init").loc[init]


def test_p_values_equal_scipy_welch_and_paired():
    vals = {"tower": [80.0, 81.0, 82.0], "random": [70.0, 71.5, 71.0]}
    paired = build_leaderboard(records(vals), "drive")  # same seeds 0,1,2 -> paired
    assert row(paired, "random")["test"] == "paired"
    assert row(paired, "random")["p"] == pytest.approx(sps.ttest_rel(vals["random"], vals["tower"]).pvalue)
    welch = build_leaderboard(records(vals), "drive", paired=False)
    assert row(welch, "random")["p"] == pytest.approx(
        sps.ttest_ind(vals["random"], vals["tower"], equal_var=False).pvalue)
    other_seeds = {"tower": [0, 1, 2], "random": [3, 4, 5]}
    auto = build_leaderboard(records(vals, seeds=other_seeds), "drive")
    assert row(auto, "random")["test"] == "welch"
    assert row(auto, "random")["p"] == pytest.approx(row(welch, "random")["p"])
    ref = row(paired, "tower")
    assert math.isnan(ref["p"]) and ref["stars"] == "" and ref["test"] == "reference"
    for df in (paired, welch):
        assert row(df, "random")["stars"] == stars(row(df, "random")["p"])
    assert row(paired, "tower")["n"] == 3 and row(paired, "tower")["mean"] == pytest.approx(81.0)


def test_changing_numbers_changes_stars():
    far = build_leaderboard(records({"tower": [80.0, 80.1, 79.9, 80.05], "random": [70.0, 70.1, 69.9, 70.02]}),
                            "drive", paired=False)
    close = build_leaderboard(records({"tower": [80.0, 81.0, 82.0, 80.5], "random": [79.5, 81.2, 80.0, 80.7]}),
                              "drive", paired=False)
    assert row(far, "random")["p"] < 1e-4 and row(far, "random")["stars"] == "***"
    assert row(close, "random")["p"] > 0.005 and row(close, "random")["stars"] == ""
    looser = build_leaderboard(records({"tower": [80.0, 81.0, 82.0, 80.5], "random": [79.5, 81.2, 80.0, 80.7]}),
                               "drive", paired=False, thresholds=(0.99,))
    assert row(looser, "random")["stars"] == "*"


def test_bold_best_and_underline_beats_imagenet():
    df = build_leaderboard(records({"tower": [81, 82, 83], "imagenet": [79, 79.5, 80],
                                    "random": [77, 78, 78.5], "byol": [79.8, 80, 80.2]}), "drive")
    assert df["init"].tolist() == ["tower", "byol", "imagenet", "random"]  # sorted by mean
    assert df["bold"].tolist() == [True, False, False, False]
    assert df.set_index("init")["underline"].to_dict() == {"tower": True, "byol": True, "imagenet": False, "random": False}
    no_imagenet = build_leaderboard(records({"tower": [81, 82], "random": [77, 78]}), "drive")
    assert not no_imagenet["underline"].any()


def test_holm_adjusts_against_reference():
    vals = {"tower": [80, 81, 82, 80.5], "a": [79, 80, 81.5, 80], "b": [70, 71, 72, 70.5], "c": [78, 78.5, 80, 79]}
    raw = build_leaderboard(records(vals), "drive", holm=False)
    adj = build_leaderboard(records(vals), "drive")  # Holm is the default
    inits = ["a", "b", "c"]
    assert [row(adj, i)["p"] for i in inits] == [row(raw, i)["p"] for i in inits]  # the raw p stays in "p"
    expected = holm([row(raw, i)["p"] for i in inits])
    assert [row(adj, i)["p_holm"] for i in inits] == pytest.approx(expected)
    # by hand: smallest p times 3
    smallest = min(inits, key=lambda i: row(raw, i)["p"])
    assert row(adj, smallest)["p_holm"] == pytest.approx(min(1.0, 3 * row(raw, smallest)["p"]))
    assert all(row(adj, i)["p_holm"] >= row(raw, i)["p"] for i in inits)
    # the stars follow the adjusted p by default and the raw p with holm=False
    assert [row(adj, i)["stars"] for i in inits] == [stars(row(adj, i)["p_holm"]) for i in inits]
    assert [row(raw, i)["stars"] for i in inits] == [stars(row(raw, i)["p"]) for i in inits]


def test_paper_column_and_small_n_note():
    df = build_leaderboard(records({"tower": [80.0, 81.0], "genesis": [79.0], "mine": [75.0, 76.0]}), "drive")
    assert row(df, "tower")["paper"] == "80.38±0.41"
    assert row(df, "genesis")["paper"] == str(paper_value("drive", "genesis")) == "79.22±0.30"
    assert row(df, "mine")["paper"] == "" and math.isnan(row(df, "mine")["paper_mean"])
    assert "n<2" in row(df, "genesis")["note"] and row(df, "genesis")["stars"] == ""


def test_filters_and_errors():
    recs = records({"tower": [80, 81]}) + records({"tower": [60, 61]}, budget="paper")
    assert set(build_leaderboard(recs, "drive")["budget"]) == {"smoke", "paper"}
    assert build_leaderboard(recs, Board("drive", "paper"))["mean"].tolist() == [60.5]
    with pytest.raises(ValueError, match="no results for task 'lits'"):
        build_leaderboard(recs, "lits")
    with pytest.raises(ValueError, match="several metrics"):
        build_leaderboard(records({"tower": [80]}) + records({"random": [0.8]}, metric="auc"), "drive")
    with pytest.raises(ValueError, match="random vs tower: .*seeds differ"):
        build_leaderboard(records({"tower": [1, 2], "random": [1, 2]}, seeds={"tower": [0, 1], "random": [0, 2]}),
                          "drive", paired=True)
    no_ref = build_leaderboard(records({"random": [1, 2]}), "drive")
    assert "no 'tower' results" in no_ref["note"].iloc[0]


def test_write_files_round_trip(tmp_path):
    df = build_leaderboard(records({"tower": [80.0, 81.1, 82.3], "imagenet": [79.0, 79.4, 80.1],
                                    "random": [70.0, 71.0, 72.0]}), "drive")
    stamp = {"command": "tower-bench leaderboard drive", "budget": "smoke", "config hashes": "abc123"}
    paths = write_leaderboard(df, tmp_path, "drive-test", stamp)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = pd.read_csv(paths["csv"])
    assert csv["mean"].tolist() == df["mean"].tolist() and csv["init"].tolist() == df["init"].tolist()
    md = paths["md"].read_text()
    assert "`tower-bench leaderboard drive`" in md and "abc123" in md
    best = row(df, "tower")
    assert best["bold"] and f"**{best['mean']:.2f} ± {best['std']:.2f}**" in md
    random_line = next(line for line in md.splitlines() if line.startswith("| random"))
    assert random_line.count("\\*") == len(row(df, "random")["stars"]) > 0
    assert "| 3 |" in random_line and str(paper_value("drive", "random")) in random_line
    assert "<u>" not in random_line and f"<u>**{best['mean']:.2f}" in md


def test_leaderboard_command_end_to_end(tmp_path, capsys):
    store = ResultStore(tmp_path / "results")
    for r in records({"tower": [80.0, 81.0, 82.0], "random": [70.0, 71.0, 72.5]}):
        fast = r["init"] == "tower"
        store.put({**r, "config": {"data_root": "/data/DRIVE", "fast": fast}, "config_hash": "abc123"})
    leaderboard_command("drive", store=store.root, out=tmp_path / "lb")  # Holm by default
    md = (tmp_path / "lb" / "drive-smoke.md").read_text()  # named as run names it: task and budget
    assert "--no-holm" not in md and "6 records of drive from DRIVE" in md and "/data/DRIVE" not in md and "Holm-adjusted" in md
    assert "**fine-tuning precision**: `bf16 + channels_last, fp32`" in md  # how the rows ran, both named
    assert (tmp_path / "lb" / "drive-smoke.png").is_file()
    printed = capsys.readouterr().out
    assert "drive leaderboard" in printed and "drive-smoke.csv" in printed
    with pytest.raises(ValueError, match="no results for task 'lits' .*tasks there: drive"):
        leaderboard_command("lits", store=store.root, out=tmp_path / "lb")
    with pytest.raises(FileNotFoundError, match="results store"):
        leaderboard_command("drive", store=tmp_path / "missing", out=tmp_path / "lb")


def test_paper_values_map_our_init_names():
    assert paper_value("drive", "tower") == (80.38, 0.41)  # Table 1 before the ablation's 80.38±0.30
    assert paper_value("pathmnist", "moco") == (96.93, 0.66)
    assert paper_value("DRIVE", "simclr") == (79.00, 0.18)
    assert paper_value("drive", "swav") == (79.65, 0.14)
    assert paper_value("lits", "imagenet") == (94.19, 0.18) and paper_value("lits", "tower").std == 0.05
    assert paper_value("retinamnist", "con-both") == (72.61, 0.58)
    assert paper_value("drive", "mine") is None and paper_value("pathmnist", "byol") is None
