"""tower-bench publish: the card's model-index comes from the results store, with the commands that made it."""
import json
import shlex
import shutil
import statistics
from unittest import mock

import pytest
from huggingface_hub import HfApi, ModelCard
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.core.config import PretrainConfig
from benchmark.results.store import ResultStore
from zoo import UNet
from zoo.hub import CARD_FILE, CONFIG_FILE, FILES

from ..conftest import TINY_DECODER, TINY_ENCODER

HEALTH = {"passed": True, "n": 4, "restoration_mse": 0.0123, "mean_image_mse": 0.0456, "identity_mse": 0.0789}
RUN_COMMAND = "tower-bench run --method tower --task drive --budget smoke --seeds 3"


@pytest.fixture
def export(tiny_unet, tmp_path):
    """A saved export as pretraining writes it: protocol config, its hash, the health check; one own result."""
    cfg = PretrainConfig.from_budget("smoke", "segmentation", method="tower", task="drive")
    info = {"config": cfg.protocol(), "hash": cfg.hash(), "task": "drive", "health": HEALTH}
    net = tiny_unet(3)
    net.save_pretrained(tmp_path / "run" / "export", method="tower", trains_decoder=True, pretrain=info,
                        results=[{"task": "drive", "metric": "dice", "value": 79.5, "dataset_name": "DRIVE"}])
    return tmp_path / "run" / "export", cfg


def put(store: ResultStore, task: str, seed: int, value: float, config: dict, **extra) -> None:
    store.put({"task": task, "init": "tower", "seed": seed, "label_fraction": extra.pop("label_fraction", 1.0),
               "budget": "smoke", "config_hash": extra.pop("config_hash", "ft1"), "metric": extra.pop("metric", "dice"),
               "value": value, "config": config, **extra})


def stored(tmp_path, path, cfg) -> ResultStore:
    store = ResultStore(tmp_path / "results")
    for seed, v in enumerate([80.0, 82.5]):
        put(store, "drive", seed, v, {"init": str(path), "extra": {"pretrain_hash": cfg.hash()}}, command=RUN_COMMAND)
    return store


def publish(path, store) -> str:
    with mock.patch.object(HfApi, "create_repo", side_effect=AssertionError("network")), \
            mock.patch.object(HfApi, "upload_folder", side_effect=AssertionError("network")):
        res = CliRunner().invoke(app, ["publish", str(path), "--repo-id", "org/name", "--dry-run",
                                       "--store", str(store)])
    assert res.exit_code == 0, res.output
    return res.output


def test_dry_run_card_lists_every_stored_result_of_this_export(export, tmp_path):
    path, cfg = export
    store = ResultStore(tmp_path / "results")
    by_hash = {"init": "runs/elsewhere/export", "extra": {"pretrain_hash": cfg.hash()}}  # as `run` stores it
    by_folder = {"init": str(path)}  # as `finetune --init RUN/export` stores it
    full = [80.0, 82.5, 81.0]
    for seed, v in enumerate(full):
        put(store, "drive", seed, v, by_hash, command=RUN_COMMAND)
    for seed, v in enumerate([70.0, 73.0]):
        put(store, "drive", seed, v, by_folder, label_fraction=0.25)
    put(store, "retinamnist", 0, 61.0, by_folder, metric="auc", protocol="linear", config_hash="ft2")
    # not this export's (another config hash each, so as not to replace the records above):
    put(store, "drive", 0, 50.0, {"init": "random"}, config_hash="x1")
    put(store, "drive", 1, 90.0, {"init": str(path), "init_decoder": "random"}, config_hash="x2")  # another decoder
    put(store, "drive", 2, 88.0, {"init": "runs/other/export", "extra": {"pretrain_hash": "0" * 12}}, config_hash="x3")

    out = publish(path, store.root)
    card = ModelCard(out.split(f"--- {CARD_FILE} as it would be uploaded to org/name ---\n")[1].split("dry run:")[0])
    got = {(r.task_name, r.metric_type, r.metric_value, r.metric_config) for r in card.data.eval_results}
    assert got == {
        ("drive", "dice", 79.5, None),  # the folder's own
        ("drive", "dice", round(statistics.mean(full), 2), "finetune, 100% labels, smoke budget"),
        ("drive", "dice", 71.5, "finetune, 25% labels, smoke budget"),
        ("retinamnist", "auc", 61.0, "linear, 100% labels, smoke budget"),
    }
    (full_row,) = [r for r in card.data.eval_results if r.metric_config == "finetune, 100% labels, smoke budget"]
    assert full_row.metric_name == "Dice"  # a clean name; how it was measured is in the fields
    assert full_row.metric_args == {"protocol": "finetune", "label_fraction": 1.0, "budget": "smoke", "seeds": 3,
                                    "std": round(statistics.stdev(full), 2)}
    assert card.data.datasets is None and card.data.license == "mit"  # task names are no Hub dataset ids
    assert "restoration MSE 0.0123 (mean image 0.0456, identity 0.0789)" in card.text and "on 4 images" in card.text
    assert RUN_COMMAND in card.text and "# 3 fine-tuning record(s) name no command" in card.text
    assert "3 stored result(s)" in out  # the groups from the store; the folder's own is not counted


def test_the_cards_pretrain_command_reproduces_the_export(export, tmp_path):
    path, cfg = export
    card = publish(path, tmp_path / "no-store")
    (line,) = [s for s in card.splitlines() if s.startswith("tower-bench pretrain ")]
    with mock.patch("benchmark.pretraining.loop.pretrain") as pretrain:
        res = CliRunner().invoke(app, shlex.split(line)[1:])
    assert res.exit_code == 0, res.output
    ran = pretrain.call_args.args[0]
    assert ran.protocol() == cfg.protocol() and ran.hash() == cfg.hash()
    assert (ran.encoder, tuple(ran.decoder_channels)) == (TINY_ENCODER, TINY_DECODER)


def test_publish_uploads_the_card_and_config_with_the_stored_results(export, tmp_path):
    path, cfg = export
    store = stored(tmp_path, path, cfg)
    dry = publish(path, store.root).split(f"--- {CARD_FILE} as it would be uploaded to org/name ---\n")[1]
    kept = tmp_path / "uploaded"

    def upload_folder(**kw):
        shutil.copytree(kw["folder_path"], kept)
        return mock.Mock(commit_url="https://huggingface.co/org/name/commit/abc")

    with mock.patch.object(HfApi, "create_repo"), mock.patch.object(HfApi, "upload_folder", side_effect=upload_folder):
        res = CliRunner().invoke(app, ["publish", str(path), "--repo-id", "org/name", "--store", str(store.root)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in kept.iterdir()) == sorted(FILES)
    assert (kept / CARD_FILE).read_text().strip() == dry.split("dry run:")[0].strip()
    results = json.loads((kept / CONFIG_FILE).read_text())["tower_bench"]["results"]
    own, from_store = results
    assert own == {"task": "drive", "metric": "dice", "value": 79.5, "dataset_name": "DRIVE"}
    assert (from_store["value"], from_store["std"], from_store["n"], from_store["seeds"]) == \
        (81.25, round(statistics.stdev([80.0, 82.5]), 2), 2, [0, 1])
    assert UNet.from_pretrained(kept).export_info.results == tuple(results)
    assert "## Downstream results" in (path / CARD_FILE).read_text() and "81.25" not in (path / CARD_FILE).read_text()
