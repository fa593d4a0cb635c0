"""The evaluation protocols (finetune | linear | knn), their place in the record key, and ``--download``."""
import json
import sys
from pathlib import Path

import pytest
import torch

import benchmark.finetuning.protocols as finetune_module
from benchmark.core.config import FinetuneConfig
from benchmark.core.config import budget as get_budget
from benchmark.finetuning.probe import knn_scores
from benchmark.finetuning.protocols import build_model, finetune
from benchmark.results.leaderboard import Board, build_leaderboard, refresh_leaderboard
from benchmark.results.store import ResultStore, make_record
from benchmark.sweep.run import make_task, run
from benchmark.sweep.spec import Outputs, Sweep
from benchmark.tasks.synth_fundus import SynthFundus
from tests.benchmark.tasks.fixtures import write_medmnist
from tests.conftest import TINY_DECODER, TINY_ENCODER

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "data" / "medmnist" / "retinamnist.npz"


def tiny(task: str, **kw) -> FinetuneConfig:
    base = dict(task=task, encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=2, batch_size=4, lr=3e-3,
                patience=5, eval_batch_size=8)
    return FinetuneConfig(**{**base, **kw})


@pytest.fixture
def retina(tmp_path):
    write_medmnist(tmp_path / "medmnist", "retinamnist", counts=None)  # every class in every split
    return make_task("retinamnist", tmp_path / "medmnist", 32)


@pytest.fixture
def built(monkeypatch):
    """The models ``finetune`` builds, kept for inspection after the run."""
    models = []

    def keep(cfg, task, *args):
        models.append(build_model(cfg, task, *args))
        return models[-1]

    monkeypatch.setattr(finetune_module, "build_model", keep)
    return models


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Every parameter and buffer (BatchNorm running statistics included) equal."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_linear_probe_revision_1_trains_the_head_only_and_leaves_batchnorm_statistics(retina, built):
    """Records made before precise-BN and the logistic head (probe_revision 1) are reproduced as they were."""
    cfg = tiny("retinamnist", protocol="linear", augment=False, probe_revision=1)
    rec = finetune(cfg, retina, progress=False)
    fresh = build_model(cfg, retina)
    assert same_state(built[0].net.encoder, fresh.net.encoder)
    assert not torch.equal(built[0].fc.weight, fresh.fc.weight)  # the head did train
    assert rec["protocol"] == "linear" and rec["curve"] and 0 <= rec["value"] <= 100
    assert rec["config_hash"] != tiny("retinamnist", augment=False).hash()


class TinySynthFundus(SynthFundus):
    sizes = {"train": 8, "val": 4, "test": 4, "pool": 8}


def test_segmentation_linear_trains_decoder_and_head_on_a_frozen_encoder(built):
    task = TinySynthFundus(None, 32)
    cfg = tiny("synth-fundus", protocol="linear", epochs=1)
    rec = finetune(cfg, task, progress=False)
    fresh = build_model(cfg, task)
    assert same_state(built[0].encoder, fresh.encoder)
    assert not same_state(built[0].decoder, fresh.decoder)
    assert rec["metric"] == "dice" and len(rec["per_image"]) == rec["n_test"] and rec["curve"]


def test_knn_trains_nothing_and_scores_a_valid_auc(retina, built, tmp_path):
    rec = finetune(tiny("retinamnist", protocol="knn", probe_revision=2), retina, progress=False)
    fresh = build_model(tiny("retinamnist"), retina)
    params = dict(fresh.named_parameters())
    assert all(torch.equal(p, params[k]) for k, p in built[0].named_parameters())  # no weight trained
    old = finetune(tiny("retinamnist", protocol="knn", probe_revision=1), retina, progress=False)
    assert same_state(built[1], fresh) and old["config_hash"] != rec["config_hash"]  # revision 1: statistics kept
    assert 0 <= rec["value"] <= 100 and rec["knn"] == {"k": len(retina.load("train")), "temperature": 0.07}
    boot = rec["test_bootstrap"]  # the test set's resamples, drawn alike for every init (the board pairs them)
    assert boot["n_test"] == rec["n_test"] and len(boot["values"]) == 1000
    scored = [v for v in boot["values"] if v is not None]  # None: a resample of the tiny test split lacked a class
    assert scored and min(scored) < rec["value"] < max(scored)
    store = ResultStore(tmp_path / "s")
    store.put(rec)
    stored = store.get(rec)
    assert stored["curve"] == [] and stored["protocol"] == "knn" and "trivial" in stored


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_knn_matches_a_brute_force_weighted_vote(kind):
    g = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(30, 6, generator=g), torch.randn(7, 6, generator=g)
    targets = (torch.rand(30, 3, generator=g) < 0.5).float() if kind == "multilabel" else torch.randint(0, 4, (30,),
                                                                                                          generator=g)
    got = knn_scores(bank, targets, queries, kind, 4, k=5, temperature=0.1, chunk=3)  # 3 chunks, the last short
    for q, row in zip(queries, got):
        sims = [float(torch.dot(q, b) / (q.norm() * b.norm())) for b in bank]
        top = sorted(range(30), key=lambda i: -sims[i])[:5]
        weights = {i: torch.exp(torch.tensor(sims[i] / 0.1)) for i in top}
        total = sum(weights.values())
        for c in range(row.numel()):
            has = (lambda i: float(targets[i, c])) if kind == "multilabel" else (lambda i: float(targets[i] == c))
            assert float(row[c]) == pytest.approx(float(sum(w * has(i) for i, w in weights.items()) / total), rel=1e-5)


def test_segmentation_knn_is_refused_in_one_line(monkeypatch, capsys):
    from benchmark.cli import main

    with pytest.raises(ValueError, match="--protocol knn: synth-fundus is a segmentation task"):
        FinetuneConfig.from_budget(get_budget("smoke"), SynthFundus(None, 32), "synth-fundus", protocol="knn")
    monkeypatch.setattr(sys, "argv", ["tower-bench", "finetune", "--task", "synth-fundus", "--budget", "smoke",
                                      "--protocol", "knn"])
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "segmentation" in err and "--protocol linear" in err


def test_protocol_is_part_of_the_record_key_and_old_records_read_as_finetune(tmp_path):
    store = ResultStore(tmp_path)
    key = {"task": "retinamnist", "init": "random", "seed": 0, "label_fraction": 1.0, "budget": "smoke",
           "config_hash": "abc", "metric": "auc"}
    old = store.put({**key, "value": 60.0})  # a record as written before protocols: no protocol field
    linear = store.put({**key, "value": 70.0, "protocol": "linear"})
    assert old != linear and store.path({**key, "protocol": "finetune"}) == old
    assert [r["value"] for r in store.records(protocol="finetune")] == [60.0]
    assert store.get({**key, "protocol": "linear"})["value"] == 70.0


def test_committed_records_keep_their_config_hash():
    """``FinetuneConfig`` moved to benchmark/core/config.py and gained ``protocol``: the hash of every committed
    record's config is still the one stored beside it, and a finetune record hashes as it did before."""
    lines = [line for path in sorted((REPO / "leaderboards").glob("*.records.jsonl"))
             for line in path.read_text().splitlines()]
    assert lines
    for rec in map(json.loads, lines):
        assert FinetuneConfig(**rec["config"]).hash() == rec["config_hash"]
        if rec["config"].get("protocol", "finetune") == "finetune":  # records from before and after protocols
            legacy = {k: v for k, v in rec["config"].items() if k != "protocol"}
            assert FinetuneConfig(**legacy).hash() == rec["config_hash"]


def test_leaderboard_of_mixed_protocols_has_one_board_per_protocol(tmp_path):
    store = ResultStore(tmp_path / "store")
    for protocol, base in (("finetune", 80.0), ("linear", 60.0), ("knn", 50.0)):
        for init, shift in (("tower", 5.0), ("random", 0.0)):
            for seed in range(3):
                store.put(make_record(task="retinamnist", init=init, seed=seed, label_fraction=1.0, budget="smoke",
                                      config_hash=protocol, metric="auc", value=base + shift + seed,
                                      protocol=protocol, trivial={"class-prior": 50.0}))
    every = store.records()
    assert build_leaderboard(every, Board("retinamnist", protocol="knn")).set_index("init").loc["tower", "mean"] == 56.0
    boards = tmp_path / "boards"
    for protocol in ("finetune", "linear", "knn"):
        refresh_leaderboard(Board("retinamnist", "smoke", protocol=protocol), store.root, boards)
    for name, protocol in (("retinamnist-smoke", "finetune"), ("retinamnist-smoke-linear", "linear"),
                           ("retinamnist-smoke-knn", "knn")):
        recs = [json.loads(x) for x in (boards / f"{name}.records.jsonl").read_text().splitlines()]
        assert len(recs) == 6 and {r["protocol"] for r in recs} == {protocol}
        assert f"- **protocol**: `{protocol}`" in (boards / f"{name}.md").read_text()


def test_run_writes_a_board_per_protocol(tmp_path):
    write_medmnist(tmp_path / "data", "retinamnist", counts=None)
    sweep = Sweep.resolve("random", "retinamnist", "smoke", seeds=2, data_root=tmp_path / "data")
    outputs = Outputs(tmp_path / "store", tmp_path / "boards", "test")
    knn = run(sweep.replace(protocol="knn"), outputs, reference="random")
    linear = run(sweep.replace(protocol="linear"), outputs, reference="random")
    assert {p.name for p in knn} >= {"retinamnist-smoke-knn.md"} and {p.name for p in linear} >= {
        "retinamnist-smoke-linear.md"}
    assert {r["protocol"] for r in ResultStore(tmp_path / "store").records()} == {"knn", "linear"}


def fake_download(flag: str, counts=None):
    """A stand-in for a medmnist dataset class with download=True: writes the fixture where medmnist would."""
    def dataset(split, download, root, size):
        assert download
        write_medmnist(Path(root), flag, counts=counts, size=size)

    return dataset


def test_download_fetches_through_medmnist_from_the_cli(tmp_path, monkeypatch, capsys):
    import medmnist

    from benchmark.cli import main

    monkeypatch.setattr(medmnist, "RetinaMNIST", fake_download("retinamnist"))
    args = ["tower-bench", "finetune", "--task", "retinamnist", "--budget", "smoke", "--protocol", "knn",
            "--data-root", str(tmp_path / "mm"), "--store", str(tmp_path / "store")]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit):  # without --download: the missing file, and the option that fetches it
        main()
    assert "--download" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", args + ["--download"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert (tmp_path / "mm" / "retinamnist_64.npz").is_file()  # the smallest official size >= smoke's 32 px
    assert len(ResultStore(tmp_path / "store").records("retinamnist", protocol="knn")) == 1


def test_download_offline_is_one_line_naming_file_and_url(tmp_path, monkeypatch, capsys):
    import medmnist

    from benchmark.cli import main

    def offline(**kwargs):
        raise RuntimeError("Automatic download failed!\nPlease check your network.")

    monkeypatch.setattr(medmnist, "RetinaMNIST", offline)
    monkeypatch.setattr(sys, "argv", ["tower-bench", "run", "--task", "retinamnist", "--method", "random",
                                      "--budget", "smoke", "--data-root", str(tmp_path), "--download",
                                      "--store", str(tmp_path / "store"), "--out", str(tmp_path / "boards")])
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "retinamnist_64.npz" in err and "zenodo.org/records/10519652/files/retinamnist_64" in err


def test_download_is_refused_for_a_task_that_cannot_fetch():
    with pytest.raises(ValueError, match="--download: task 'drive' cannot fetch its data"):
        make_task("drive", None, 32, download=True)


@pytest.mark.skipif(not REAL.is_file(), reason=f"{REAL} absent")
@pytest.mark.parametrize("protocol", ["finetune", "linear", "knn"])
def test_real_retinamnist_one_epoch_of_each_protocol(protocol):
    b = get_budget("smoke")
    task = make_task("retinamnist", REAL.parent, b.image_size)
    cfg = FinetuneConfig.from_budget(b, task, "retinamnist", protocol=protocol, epochs=1, batch_size=64,
                                     data_root=REAL.parent)
    rec = finetune(cfg, task, progress=False)
    assert rec["n_train"] == 1080 and rec["n_test"] == 400 and 0 < rec["value"] < 100
    assert (protocol == "finetune") == ("curve" in rec)  # the probes fit a logistic regression or nothing



def test_fetch_downloads_the_file_commands_that_build_their_task_later_need(tmp_path, monkeypatch):
    import medmnist

    from benchmark.sweep.run import fetch

    monkeypatch.setattr(medmnist, "RetinaMNIST", fake_download("retinamnist"))
    fetch("retinamnist", tmp_path / "mm", 32)
    assert (tmp_path / "mm" / "retinamnist_64.npz").is_file()


@pytest.mark.parametrize("command", ["run", "pretrain", "finetune", "show-views", "analyse label-efficiency",
                                     "analyse representations"])
def test_every_command_that_loads_data_offers_download(command, capsys):
    from ..reliability.common import cli

    res = cli(capsys, *command.split(), "--help")
    assert res.code == 0 and "--download" in res.out, res.out[-500:]
