"""``--deterministic`` on CPU: two runs are bit-identical; every result records its seed."""
from __future__ import annotations

import json

import torch

from benchmark.results.store import ResultStore
from tests.benchmark.tasks.fixtures import write_drive
from tests.reliability.common import cli


def test_two_deterministic_pretraining_runs_are_bit_identical(capsys, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        res = cli(capsys, "pretrain", "--budget", "smoke", "--method", "tower", "--deterministic", "--seed", "3",
                  "--max-steps", "3", "--out", out)
        assert res.code == 0, res.err
    for name in ("model.safetensors", "decoder.safetensors"):
        assert (runs[0] / "export" / name).read_bytes() == (runs[1] / "export" / name).read_bytes(), name
    losses = [[json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()] for out in runs]
    assert losses[0] == losses[1] and len(losses[0]) == 3
    for out in runs:  # the seed travels with the weights and the checkpoint
        config = json.loads((out / "export" / "config.json").read_text())["tower_bench"]["pretrain"]["config"]
        assert config["seed"] == 3
        assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["seed"] == 3


def test_two_finetuning_runs_give_identical_records_with_their_seed(capsys, tmp_path):
    drive = write_drive(tmp_path / "DRIVE")
    records = []
    for store in ("s1", "s2"):
        res = cli(capsys, "finetune", "--budget", "smoke", "--task", "drive", "--data-root", drive, "--seed", "2",
                  "--store", tmp_path / store)
        assert res.code == 0, res.err
        (record,) = ResultStore(tmp_path / store).records("drive")
        records.append(record)
    a, b = records
    for field in ("value", "curve", "val_best", "best_epoch", "epochs_run", "n_train", "config", "config_hash"):
        assert a[field] == b[field], field
    assert len(a["curve"]) == 2
    assert a["seed"] == 2 and a["config"]["seed"] == 2
