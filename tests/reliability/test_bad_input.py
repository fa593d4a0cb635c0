"""Bad input through the CLI: one line naming the file or option and what was expected, exit code 2,
no traceback, and nothing already written destroyed (a results store, a checkpoint, its metrics)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmark.core import registry
from benchmark.results.store import ResultStore
from tests.benchmark.tasks.fixtures import write_drive, write_medmnist
from tests.conftest import TINY_DECODER, TINY_ENCODER
from tests.reliability.common import assert_one_line_error, cli, cli_subprocess, snapshot

SMOKE = ("--budget", "smoke")


@pytest.fixture
def store(tmp_path) -> Path:
    """A results store that already holds one record: every failure below must leave it as it is."""
    root = tmp_path / "store"
    ResultStore(root).put({"task": "drive", "init": "random", "seed": 0, "label_fraction": 1.0, "budget": "smoke",
                           "config_hash": "abc", "metric": "dice", "value": 50.0})
    return root


@pytest.fixture
def drive(tmp_path) -> Path:
    return write_drive(tmp_path / "DRIVE")


def finetune(capsys, store: Path, *args: str):
    before = snapshot(store)
    res = cli(capsys, "finetune", *SMOKE, "--store", store, *args)
    assert snapshot(store) == before, "a failed fine-tune changed the results store"
    return res


# ----------------------------------------------------------------------------- data


def test_truncated_drive_image(capsys, store, drive):
    tif = drive / "training" / "images" / "22_training.tif"
    tif.write_bytes(tif.read_bytes()[: tif.stat().st_size // 3])
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive)
    assert_one_line_error(res, str(tif), "unreadable or truncated image")


def test_drive_without_masks_folder(capsys, store, drive):
    for f in (drive / "training" / "mask").iterdir():
        f.unlink()
    (drive / "training" / "mask").rmdir()
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive)
    assert_one_line_error(res, str(drive / "training" / "mask"), "missing folder")
    assert "training/mask/NN_training_mask.gif" in res.err  # the expected layout follows the line


def test_drive_mask_count_differs_from_images(capsys, store, drive):
    (drive / "training" / "1st_manual" / "23_manual1.gif").unlink()
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive)
    assert_one_line_error(res, str(drive / "training" / "1st_manual"), "4 files do not match the 5 images",
                          "missing ids ['23']")


def test_truncated_medmnist_npz(capsys, store, tmp_path):
    npz = write_medmnist(tmp_path / "mm", "breastmnist", size=64)
    npz.write_bytes(npz.read_bytes()[:200])
    res = finetune(capsys, store, "--task", "breastmnist", "--data-root", tmp_path / "mm")
    assert_one_line_error(res, str(npz), "unreadable or truncated npz")


def test_medmnist_npz_with_wrong_keys(capsys, store, tmp_path):
    (tmp_path / "mm").mkdir()
    npz = tmp_path / "mm" / "breastmnist_64.npz"
    np.savez(npz, images=np.zeros((4, 64, 64), np.uint8), labels=np.zeros((4, 1), np.uint8))
    res = finetune(capsys, store, "--task", "breastmnist", "--data-root", tmp_path / "mm")
    assert_one_line_error(res, str(npz), "npz has keys ['images', 'labels'], expected ['train_images', 'train_labels']")


def test_empty_medmnist_split(capsys, store, tmp_path):
    (tmp_path / "mm").mkdir()
    npz = tmp_path / "mm" / "breastmnist_64.npz"
    arrays = {}
    for split, n in (("train", 6), ("val", 0), ("test", 3)):
        arrays[f"{split}_images"] = np.zeros((n, 64, 64), np.uint8)
        arrays[f"{split}_labels"] = np.zeros((n, 1), np.uint8)
    np.savez(npz, **arrays)
    res = finetune(capsys, store, "--task", "breastmnist", "--data-root", tmp_path / "mm")
    assert_one_line_error(res, str(npz), "val_images is empty", "expected at least one sample")


def test_empty_drive_validation_split(capsys, store, tmp_path):
    root = write_drive(tmp_path / "DRIVE", n_train=1)  # 1 training image: nothing left for validation
    res = finetune(capsys, store, "--task", "drive", "--data-root", root)
    assert_one_line_error(res, "drive", "val split", str(root), "expected at least one sample")


# ----------------------------------------------------------------------------- options


def test_label_fraction_zero_for_finetune(capsys, store, drive):
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--label-fraction", "0")
    assert_one_line_error(res, "--label-fraction must be in (0, 1], got 0.0")


def test_label_fraction_above_one_for_run(capsys, store):
    before = snapshot(store)
    res = cli(capsys, "run", *SMOKE, "--store", store, "--label-fraction", "1.5")
    assert_one_line_error(res, "--label-fraction must be in (0, 1], got 1.5")
    assert snapshot(store) == before
    assert not Path("runs").exists(), "run started working before checking its options"


@pytest.mark.parametrize("args, fragments", [
    (("run", "--method", "tower,bogus"), ("unknown method 'bogus'", "tower, simclr", "random, random-aa, imagenet")),
    (("run", "--task", "bogus"), ("unknown task 'bogus'", "drive", "synth-fundus")),
    (("finetune", "--task", "bogus"), ("unknown task 'bogus'", "breastmnist", "drive")),
    (("pretrain", "--method", "bogus"), ("unknown method 'bogus'", "byol, genesis, moco, simclr, tower")),
    (("pretrain", "--task", "bogus"), ("unknown task 'bogus'", "drive")),
], ids=["run-method", "run-task", "finetune-task", "pretrain-method", "pretrain-task"])
def test_unknown_method_or_task_lists_the_valid_names(capsys, args, fragments):
    res = cli(capsys, *args, *SMOKE)
    assert_one_line_error(res, *fragments)


# ----------------------------------------------------------------------------- weights


@pytest.fixture
def weights(tmp_path) -> Path:
    """A smoke-budget weights folder (the encoder and decoder fine-tuning with --budget smoke builds)."""
    from zoo import UNet
    from zoo.hub import save_pretrained

    torch.manual_seed(0)
    net = UNet(TINY_ENCODER, 3, 3, TINY_DECODER)
    return save_pretrained(net, tmp_path / "weights", method="tower", trains_decoder=True)


def _edit_encoder(folder: Path, edit) -> Path:
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("damage, expected", [
    (lambda t: t.pop("conv1.0.weight"), "missing keys: conv1.0.weight"),
    (lambda t: t.__setitem__("extra.weight", torch.zeros(2)), "unexpected keys: extra.weight"),
    (lambda t: t.__setitem__("conv1.0.weight", torch.zeros(1, 1, 1, 1)), "shape mismatches: conv1.0.weight (file (1, 1, 1, 1)"),
], ids=["missing", "unexpected", "shape"])
def test_weights_that_do_not_match_the_model(capsys, store, drive, weights, damage, expected):
    path = _edit_encoder(weights, damage)
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--init", weights)
    assert_one_line_error(res, str(path), "does not match the model", expected)


def test_pickle_weights_folder_is_refused(capsys, store, drive, weights):
    tensors = load_file(str(weights / "model.safetensors"))
    (weights / "model.safetensors").unlink()
    torch.save(tensors, weights / "pytorch_model.bin")
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--init", weights)
    assert_one_line_error(res, str(weights), "pytorch_model.bin", "loads safetensors only")


def test_pickle_file_as_init_is_refused(capsys, store, drive, tmp_path):
    pt = tmp_path / "weights.pt"
    torch.save({"conv1.0.weight": torch.zeros(1)}, pt)
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--init", pt)
    assert_one_line_error(res, str(pt), "expected a folder with config.json and model.safetensors", "safetensors only")


def test_diverging_weights_stop_finetuning_with_a_message(capsys, store, drive, weights):
    _edit_encoder(weights, lambda t: t.__setitem__("conv1.0.weight", torch.full_like(t["conv1.0.weight"], float("nan"))))
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--init", weights)
    assert_one_line_error(res, "fine-tuning loss is nan at step 1", str(weights))


def test_missing_hub_id_offline_fails_fast_in_one_line(tmp_path):
    start = time.monotonic()
    res = cli_subprocess("finetune", *SMOKE, "--task", "synth-fundus", "--init", "nobody-here/no-such-weights",
                         "--store", tmp_path / "store", cwd=tmp_path, timeout=120,
                         HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    elapsed = time.monotonic() - start
    assert_one_line_error(res, "--init nobody-here/no-such-weights", "HF_HUB_OFFLINE is set", "Hugging Face cache",
                          "a weights folder")
    assert elapsed < 90, f"an offline miss took {elapsed:.0f} s (network retries?)"
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1  # the real console entry point: one line
    assert not (tmp_path / "store").exists()


# ----------------------------------------------------------------------------- checkpoints and losses


class Arbitrary:
    """Any class: unpickling it would import and run this module's code."""


@pytest.mark.parametrize("content", ["pickled-object", "truncated"])
def test_resume_refuses_unsafe_or_damaged_checkpoint(capsys, tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "checkpoint.pt"
    if content == "pickled-object":
        torch.save({"step": 1, "config_hash": "x", "method": {}, "rng": [], "payload": Arbitrary()}, ckpt)
        expected = ("refused to resume", "objects other than tensors", "Arbitrary")
    else:
        torch.save({"step": 1, "w": torch.zeros(1000)}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:300])
        expected = ("unreadable or truncated checkpoint",)
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    before = snapshot(run)
    res = cli(capsys, "pretrain", *SMOKE, "--out", run, "--resume")
    assert_one_line_error(res, str(ckpt), *expected)
    assert snapshot(run) == before, "a refused checkpoint (or its metrics) was changed"


TOY = "tests.benchmark.test_pretrain:Toy"


def test_nan_loss_stops_pretraining_and_keeps_the_last_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.METHODS, "toy", TOY)
    run = tmp_path / "run"
    res = cli(capsys, "pretrain", *SMOKE, "--method", "toy", "--hparam", "nan_at=4", "--max-steps", "6",
              "--checkpoint-every", "2", "--out", run)
    assert_one_line_error(res, "non-finite loss at step 4", "loss=nan", f"last good checkpoint: {run / 'checkpoint.pt'}")
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not (run / "export").exists()


def _raise_oom(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_in_pretraining_names_a_smaller_batch(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.METHODS, "toy", TOY)
    cls = registry.method_class("toy")
    calls = {"n": 0}
    loss = cls.loss

    def loss_until_oom(self, images, views):
        calls["n"] += 1
        if calls["n"] == 3:
            _raise_oom()
        return loss(self, images, views)

    monkeypatch.setattr(cls, "loss", loss_until_oom)
    run = tmp_path / "run"
    res = cli(capsys, "pretrain", *SMOKE, "--method", "toy", "--batch-size", "8", "--max-steps", "4",
              "--checkpoint-every", "2", "--out", run)
    assert_one_line_error(res, "out of memory during pretraining at batch size 8", "step 3", "try --batch-size 4",
                          str(run / "checkpoint.pt"))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_out_of_memory_in_finetuning_names_a_smaller_batch(capsys, store, drive, monkeypatch):
    import benchmark.finetuning.training

    monkeypatch.setattr(benchmark.finetuning.training, "_loss", _raise_oom)
    res = finetune(capsys, store, "--task", "drive", "--data-root", drive, "--batch-size", "6")
    assert_one_line_error(res, "out of memory during fine-tuning at batch size 6", "try --batch-size 3")
