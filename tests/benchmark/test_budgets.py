"""A budget at another input size is named for it (``cpu-28px``), so its records and boards never pool with
the budget's own size; ``--image-size`` on ``run`` and ``finetune`` and ``--budget cpu-28px`` mean the same."""
import json

import pytest

from benchmark.core.config import BUDGETS, budget, sized
from benchmark.errors import ConfigError, UnknownNameError

from ..reliability.common import cli


def test_a_sized_budget_is_the_budget_at_that_size_under_its_own_name():
    b = budget("cpu-28px")
    assert (b.name, b.image_size) == ("cpu-28px", 28)
    assert b.encoder == BUDGETS["cpu"].encoder and b.pretrain_min_steps == BUDGETS["cpu"].pretrain_min_steps
    assert sized(BUDGETS["cpu"], 28) == b and sized(b, 40).name == "cpu-40px"
    assert sized(BUDGETS["cpu"], None) is BUDGETS["cpu"] and sized(BUDGETS["cpu"], 64) is BUDGETS["cpu"]


@pytest.mark.parametrize("name", ["cpu-px", "cpu-28", "gpu-28px", "cpu-x28px"])
def test_malformed_sized_names_are_unknown_budgets(name):
    with pytest.raises(UnknownNameError, match="cpu-28px"):
        budget(name)


def test_too_small_an_image_is_refused():
    with pytest.raises(ConfigError, match="at least 8 px"):
        sized(BUDGETS["cpu"], 4)


def test_run_with_image_size_names_records_and_board_for_the_size(capsys, tmp_path):
    res = cli(capsys, "run", "--method", "random", "--task", "synth-fundus", "--budget", "smoke", "--image-size", "40",
              "--seeds", "1", "--store", tmp_path / "results", "--out", tmp_path / "boards", "--no-progress")
    assert res.code == 0, res.err
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("*.json")]
    assert [(r["budget"], r["config"]["image_size"]) for r in records] == [("smoke-40px", 40)]
    assert (tmp_path / "boards" / "synth-fundus-smoke-40px.md").is_file()
    assert records[0]["command"].startswith("tower-bench run --method random")  # what the model card lists
