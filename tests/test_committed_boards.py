"""Every committed leaderboard ships its per-seed records, and its numbers recompute from them with scipy.

Independent of benchmark.results.stats on purpose: a bug there must not be able to confirm itself.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

BOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
MARGIN = 5.0  # benchmark.core.config.TRIVIAL_MARGIN, restated: the rule is part of what is checked


ANALYSES = ("ablation-", "convergence-", "label-efficiency-", "mixing-", "representations-")  # tables built on boards


def boards() -> list[Path]:
    return sorted(p for p in BOARDS.glob("*.csv") if not p.name.startswith(ANALYSES))


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def resampled(records: list[dict], init: str) -> np.ndarray:
    """A row's score on each bootstrap resample of the test set: the mean over its records."""
    boots = [[np.nan if v is None else v for v in r["test_bootstrap"]["values"]] for r in records if r["init"] == init]
    return np.array(boots, dtype=float).mean(axis=0)


@pytest.mark.parametrize("csv", boards(), ids=lambda p: p.stem)
def test_board_recomputes_from_its_records(csv):
    records_path = csv.with_suffix(".records.jsonl")
    assert records_path.is_file(), f"{csv.name} has no records beside it ({records_path.name})"
    records = [json.loads(line) for line in records_path.read_text().splitlines()]
    board = pd.read_csv(csv)
    assert set(board["kind"]) >= {"init", "trivial"}, "every board has a trivial row"
    rows = board[board["kind"] == "init"]
    by_init = {}
    for _, row in rows.iterrows():
        recs = [r for r in records if r["init"] == row["init"] and r["budget"] == row["budget"]
                and float(r["label_fraction"]) == float(row["label_fraction"])]
        values = {int(r["seed"]): float(r["value"]) for r in recs}
        by_init[row["init"]] = values
        x = np.array(list(values.values()))
        assert len(x) == row["n"] and close(float(x.mean()), row["mean"]), row["init"]
        assert close(float(x.std(ddof=1)) if len(x) > 1 else math.nan, row["std"]), row["init"]
    reference = rows.loc[rows["test"] == "reference", "init"]
    for _, row in rows.iterrows():
        if reference.empty or row["test"] in ("reference", "none"):
            continue
        a, b = by_init[row["init"]], by_init[reference.iloc[0]]
        if row["test"] == "bootstrap":  # the paired bootstrap over test images, from the records' resamples
            d = resampled(records, row["init"]) - resampled(records, reference.iloc[0])
            d = d[np.isfinite(d)]
            p = min(1.0, 2 * (min((d <= 0).sum(), (d >= 0).sum()) + 1) / (len(d) + 1))
        elif row["test"] == "paired":
            seeds = sorted(a)
            p = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue
        else:
            p = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
        assert close(float(p), row["p"]), (row["init"], p, row["p"])
    trivial = {r["init"].removeprefix("trivial: "): r["mean"] for _, r in board[board["kind"] == "trivial"].iterrows()}
    for r in records:
        assert all(close(r["trivial"][k], v) for k, v in trivial.items()), "trivial rows come from the records"
    for _, row in rows.iterrows():
        healthy = all(r["pretrain_health"]["passed"] for r in records
                      if r["init"] == row["init"] and r.get("pretrain_health"))
        beats = min(by_init[row["init"]].values()) > max(trivial.values()) + MARGIN
        # records made before the plateau rule have no "converged" (unknown: not held against the row)
        converged = all(r.get("converged") is not False for r in records if r["init"] == row["init"]
                        and r["budget"] == row["budget"] and float(r["label_fraction"]) == float(row["label_fraction"]))
        assert bool(row["counts"]) == (beats and healthy and converged), row["init"]
    if "mdd" not in board:  # boards written before the minimum detectable difference
        return
    for _, row in rows.iterrows():  # the MDD: (t_{1-alpha/2} + t_power) * paired sd / sqrt(n), alpha 0.005, power 0.8
        if row["test"] != "paired":
            continue
        a, b = by_init[row["init"]], by_init[reference.iloc[0]]
        d = np.array([a[s] - b[s] for s in sorted(a)])
        n = len(d)
        mdd = (stats.t.ppf(1 - 0.005 / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * d.std(ddof=1) / math.sqrt(n)
        assert close(float(mdd), row["mdd"]), (row["init"], mdd, row["mdd"])


def committed_files() -> list[Path]:
    return sorted(p for p in BOARDS.iterdir() if p.suffix in (".md", ".csv", ".tex", ".html", ".svg", ".jsonl"))


@pytest.mark.parametrize("path", committed_files(), ids=lambda p: p.name)
def test_no_committed_file_names_a_machine_path(path):
    """Boards, figures and records name data by folder name, never by where it lay on the machine that ran them."""
    text = path.read_text()
    assert "../" not in text, f"{path.name}: a path climbing out of the working folder"
    for prefix in ("/work/", "/home/", "/root/", "/tmp/", "/Users/"):
        assert prefix not in text, f"{path.name}: an absolute path ({prefix}...)"


@pytest.mark.parametrize("csv", boards(), ids=lambda p: p.stem)
def test_at_least_90_percent_of_each_boards_runs_converged(csv):
    """The protocol's promise: a board ranks what inits reach, not how fast they start. Fine-tuning records made
    before the plateau rule have no ``converged`` field and fail here until their board is rerun; a linear probe's
    says whether its logistic regression converged; kNN trains nothing."""
    records = [json.loads(line) for line in csv.with_suffix(".records.jsonl").read_text().splitlines()]
    trained = [r for r in records if r.get("protocol", "finetune") == "finetune" or "converged" in r]
    if not trained:
        pytest.skip("kNN: nothing to converge")
    converged = sum(bool(r.get("converged")) for r in trained)
    assert converged >= 0.9 * len(trained), f"{converged} of {len(trained)} runs converged"
