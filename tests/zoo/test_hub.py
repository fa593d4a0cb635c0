"""zoo.hub: the weights folder round-trips, loads in plain timm, from the HF cache offline, and never via pickle."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import timm
import torch
from huggingface_hub import HfApi, ModelCard, ModelHubMixin
from safetensors.torch import load_file, save_file

from zoo import UNet
from zoo.hub import (
    CARD_FILE,
    CONFIG_FILE,
    DECODER_FILE,
    ENCODER_FILE,
    FILES,
    REPO_PLACEHOLDER,
    load_config,
    push_to_hub,
    save_pretrained,
)
from zoo.io import stable_hash
from zoo.unet import from_pretrained

from ..conftest import TINY_ENCODER

ROOT = Path(__file__).resolve().parents[2]
PRETRAIN = {"task": "drive", "data": {"split": "train", "n": 20}, "config": {"epochs": 1, "lr": 1e-3}}
RESULTS = [{"task": "drive", "metric": "dice", "value": 80.1, "std": 0.4, "n": 10, "dataset_name": "DRIVE"}]


def randomise_bn(net: torch.nn.Module) -> None:
    """Non-default BatchNorm statistics, so a round trip that dropped buffers would show."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(7)


def make_saved(tiny_unet, path: Path, in_chans: int = 1, out_chans: int | None = None, trains_decoder: bool = True,
               seed: int = 0):
    net = tiny_unet(in_chans, out_chans, seed=seed)
    randomise_bn(net)
    save_pretrained(net, path, method="tower", trains_decoder=trains_decoder, pretrain=PRETRAIN, results=RESULTS)
    return net.eval()


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture
def saved(tiny_unet, tmp_path):
    return make_saved(tiny_unet, tmp_path / "tower"), tmp_path / "tower"


def test_round_trip_restores_every_tensor_and_config(saved):
    net, path = saved
    assert sorted(p.name for p in path.iterdir()) == sorted(FILES)  # no temporary files left behind
    loaded = from_pretrained(path).eval()
    assert_same_state(net, loaded)
    x = torch.rand(2, 1, 48, 40)
    assert torch.equal(net(x), loaded(x))
    info = loaded.export_info
    assert info.unet == net.config.to_dict() and info.unet["encoder"] == TINY_ENCODER and info.unet["in_chans"] == 1
    assert (info.method, info.trains_decoder, info.pretrain) == ("tower", True, PRETRAIN)
    assert info.protocol_hash == stable_hash(PRETRAIN) and info.version and info.format == 1
    assert load_config(path) == info and info.results == tuple(RESULTS)
    tb = json.loads((path / CONFIG_FILE).read_text())["tower_bench"]  # the on-disk section keeps format 1's keys
    assert tb == info.to_dict() and tb["protocol_hash"] == stable_hash(PRETRAIN) and "encoder_only" not in tb
    assert set(load_file(str(path / DECODER_FILE))) == {k for k in net.state_dict() if k.startswith(("decoder.", "head."))}


@pytest.mark.parametrize("in_chans", [1, 3])
def test_plain_timm_loads_the_encoder(tiny_unet, tmp_path, in_chans):
    net = make_saved(tiny_unet, tmp_path, in_chans)
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    assert model.num_classes == 0
    assert set(model.state_dict()) == set(load_file(str(tmp_path / ENCODER_FILE)))
    data = timm.data.resolve_data_config(model=model)  # what a timm user normalises with
    mean, std = (torch.tensor(data[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    x = torch.rand(2, in_chans, 64, 64)  # a multiple of the stride: UNet does not pad
    with torch.no_grad():
        assert torch.allclose(model.forward_features((x - mean) / std), net.forward_features(x)[-1], atol=1e-6)
        assert torch.allclose(model((x - mean) / std), net.forward_pooled(x), atol=1e-6)


def test_the_timm_config_describes_these_weights_not_imagenets(tiny_unet, tmp_path):
    """resolve_data_config on an export gives the size it was trained at, bilinear, no crop, no ImageNet source."""
    net = tiny_unet(3, None)
    save_pretrained(net, tmp_path, method="tower", trains_decoder=True,
                    pretrain={**PRETRAIN, "config": {**PRETRAIN["config"], "image_size": 64}})
    pcfg = json.loads((tmp_path / CONFIG_FILE).read_text())["pretrained_cfg"]
    assert not {"url", "hf_hub_id", "origin_url", "paper_ids", "test_input_size", "test_crop_pct"} & set(pcfg)
    assert pcfg["tag"] == "tower"
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True)
    data = timm.data.resolve_data_config(model=model)
    assert data["input_size"] == (3, 64, 64) and data["interpolation"] == "bilinear" and data["crop_pct"] == 1.0
    assert data["mean"] == pytest.approx(tuple(net.mean.flatten().tolist()))
    overlay = timm.create_model(TINY_ENCODER, pretrained=False, num_classes=0, pretrained_cfg_overlay=pcfg)
    assert tuple(timm.data.resolve_data_config(model=overlay)["input_size"]) == (3, 64, 64)


def _populate_hf_cache(folder: Path, cache: Path, repo_id: str) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "snapshots" / commit).mkdir(parents=True)
    for f in FILES:
        shutil.copy(folder / f, repo / "snapshots" / commit / f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def _run_offline(code: str, home: Path) -> subprocess.CompletedProcess:
    # HF_HUB_OFFLINE is read when huggingface_hub is imported: only a fresh process sees it.
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_hub_id_loads_from_the_offline_cache(saved, tmp_path):
    _, path = saved
    home = tmp_path / "hf"
    _populate_hf_cache(path, home / "hub", "org/name")
    code = f"""
import timm, torch
from zoo.unet import from_pretrained
from zoo import UNet
a, b = from_pretrained("org/name").eval(), from_pretrained({str(path)!r}).eval()
assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
c = UNet.from_pretrained("hf-hub:org/name").eval()  # the method, as huggingface_hub's mixins spell it
assert all(torch.equal(c.state_dict()[k], v) for k, v in b.state_dict().items())
assert a.export_info.method == "tower"
m = timm.create_model("hf-hub:org/name", pretrained=True).eval()
x = torch.rand(1, 1, 64, 64)
assert torch.allclose(m.forward_features((x - 0.5) / 0.5), a.forward_features(x)[-1], atol=1e-6)
print("OK", flush=True)
from_pretrained("org/missing")  # not in the cache: must fail with a clear message
"""
    proc = _run_offline(code, home)
    assert proc.stdout.strip() == "OK", proc.stderr[-2000:]
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("zoo.errors.MissingFileError") and "'org/missing'" in last
    assert "offline" in last and "local folder" in last


def test_from_pretrained_takes_the_arguments_of_every_hub_model(saved, tmp_path):
    """cache_dir + local_files_only read a Hub cache in process (no environment variable); map_location places the
    net; an uncached repo under local_files_only names that reason."""
    net, path = saved
    _populate_hf_cache(path, tmp_path / "cache", "org/name")
    loaded = UNet.from_pretrained("org/name", cache_dir=tmp_path / "cache", local_files_only=True, revision="main",
                                  map_location="meta")
    assert isinstance(loaded, ModelHubMixin) and loaded.export_info.method == "tower"
    assert {p.device.type for p in loaded.parameters()} == {"meta"}
    assert_same_state(net, UNet.from_pretrained("org/name", cache_dir=tmp_path / "cache", local_files_only=True))
    with pytest.raises(FileNotFoundError, match=r"'org/missing'.*local_files_only=True"):
        UNet.from_pretrained("org/missing", cache_dir=tmp_path / "cache", local_files_only=True)


def test_hub_arguments_reach_the_download(saved, tmp_path):
    """token, revision, force_download and cache_dir go to hf_hub_download unchanged, for every file read."""
    net, path = saved
    calls = []

    def download(repo_id, filename, **kw):
        calls.append((repo_id, filename, kw))
        return str(path / filename)

    with mock.patch("huggingface_hub.hf_hub_download", side_effect=download):
        loaded = UNet.from_pretrained("org/name", token="hf_x", revision="v2", force_download=True,
                                      cache_dir=tmp_path / "c")
    assert_same_state(net, loaded)
    assert [f for _, f, _ in calls] == [CONFIG_FILE, ENCODER_FILE, DECODER_FILE]
    want = {"token": "hf_x", "revision": "v2", "force_download": True, "cache_dir": tmp_path / "c",
            "local_files_only": False}
    assert all(repo == "org/name" and kw == want for repo, _, kw in calls)


def test_save_pretrained_pushes_like_the_mixin(tiny_unet, tmp_path, fake_hub):
    seen, create_repo, _, _ = fake_hub
    net = tiny_unet(1)
    net.save_pretrained(tmp_path / "my-unet", method="tower", push_to_hub=True, private=True)
    create_repo.assert_called_once_with("my-unet", private=True, exist_ok=True)  # the folder's name, as the mixin
    assert seen["files"] == sorted(FILES)
    assert_same_state(net, UNet.from_pretrained(seen["uploaded"]))


def _corrupt(file: Path) -> tuple[str, str]:
    """Drop one conv weight, reshape another, add an extra key; returns (dropped, reshaped)."""
    tensors = load_file(str(file))
    dropped, reshaped = sorted(k for k, v in tensors.items() if v.ndim == 4)[:2]  # random init: differs from the file
    del tensors[dropped]
    tensors[reshaped] = torch.zeros(tensors[reshaped].numel() + 1)
    tensors["extra.weight"] = torch.ones(3)
    save_file(tensors, str(file))
    return dropped, reshaped


@pytest.mark.parametrize("file", [ENCODER_FILE, DECODER_FILE])
def test_strict_load_lists_missing_unexpected_and_misshaped_keys(saved, file):
    net, path = saved
    dropped, reshaped = _corrupt(path / file)
    with pytest.raises(ValueError) as info:
        from_pretrained(path)
    msg = str(info.value)
    assert file in msg and "missing keys: " in msg and "unexpected keys: extra.weight" in msg and "shape mismatches: " in msg
    assert dropped in msg and reshaped in msg
    with pytest.warns(UserWarning, match="loaded the matching tensors only"):
        loaded = from_pretrained(path, strict=False)
    own = (net.encoder if file == ENCODER_FILE else net).state_dict()
    got = (loaded.encoder if file == ENCODER_FILE else loaded).state_dict()
    intact = [k for k in load_file(str(path / file)) if k in own and k != reshaped]
    assert len(intact) > 5 and all(torch.equal(own[k], got[k]) for k in intact)
    assert not torch.equal(own[dropped], got[dropped]) and not torch.equal(own[reshaped], got[reshaped])


def test_methods_round_trip_like_a_hub_mixin(tiny_unet, tmp_path):
    net = tiny_unet(1, 2)
    randomise_bn(net)
    assert net.export_info is None  # not loaded: nothing to describe
    assert net.save_pretrained(tmp_path / "m", method="byol", pretrain=PRETRAIN) == tmp_path / "m"
    loaded = UNet.from_pretrained(tmp_path / "m")
    assert type(loaded) is UNet and loaded.config == net.config
    assert_same_state(net, loaded)
    assert (loaded.export_info.method, loaded.export_info.trains_decoder) == ("byol", False)
    assert loaded.export_info == load_config(tmp_path / "m")


def test_missing_decoder_file_is_an_error_unless_not_strict(saved):
    _, path = saved
    (path / DECODER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=DECODER_FILE):
        from_pretrained(path)
    with pytest.warns(UserWarning, match="freshly initialised"):
        from_pretrained(path, strict=False)


@pytest.mark.parametrize("keep_config", [False, True])
def test_pickle_files_are_refused(saved, tmp_path, keep_config, monkeypatch):
    _, path = saved
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    if keep_config:
        shutil.copy(path / CONFIG_FILE, folder / CONFIG_FILE)
    monkeypatch.setattr(torch, "load", mock.Mock(side_effect=AssertionError("torch.load must not be called")))
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*safetensors only"):
        from_pretrained(folder)


def test_missing_folder_and_plain_timm_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        load_config(tmp_path / "nope")
    torch.manual_seed(0)
    model = timm.create_model(TINY_ENCODER)  # with its 1000-class fc
    timm.models.save_for_hf(model, str(tmp_path / "timm"), safe_serialization=True)
    with pytest.raises(ValueError, match=r"no 'tower_bench' section.*allow_encoder_only=True"):
        from_pretrained(tmp_path / "timm")
    with pytest.warns(UserWarning, match="plain timm folder"):
        net = from_pretrained(tmp_path / "timm", allow_encoder_only=True)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(net.encoder.state_dict()[k], v) for k, v in expected.items())
    assert net.config.in_chans == 3 and net.export_info.method is None and net.export_info.encoder_only


@pytest.fixture
def fake_hub(tmp_path):
    """Patch only the network calls; upload_folder records what it was given and keeps a copy (the folder is
    temporary) in ``seen["uploaded"]``."""
    seen = {}

    def upload_folder(**kw):
        seen.update(kw, files=sorted(os.listdir(kw["folder_path"])), card=(Path(kw["folder_path"]) / CARD_FILE).read_text(),
                    uploaded=Path(shutil.copytree(kw["folder_path"], tmp_path / "uploaded", dirs_exist_ok=True)))
        return mock.Mock(commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/abc")

    with mock.patch.object(HfApi, "create_repo") as create_repo, \
            mock.patch.object(HfApi, "create_branch") as create_branch, \
            mock.patch.object(HfApi, "upload_folder", side_effect=upload_folder) as upload:
        yield seen, create_repo, create_branch, upload


def test_push_to_hub_uploads_exactly_the_folder(saved, fake_hub):
    _, path = saved
    (path / "stray.pt").write_bytes(b"x")
    seen, create_repo, create_branch, upload = fake_hub
    url = push_to_hub(path, "org/name", private=True)
    assert url == "https://huggingface.co/org/name/commit/abc"
    create_repo.assert_called_once_with("org/name", private=True, exist_ok=True)
    create_branch.assert_not_called()
    assert seen["repo_id"] == "org/name" and seen["files"] == sorted(FILES)
    assert 'hf-hub:org/name"' in seen["card"] and REPO_PLACEHOLDER not in seen["card"]
    assert REPO_PLACEHOLDER in (path / CARD_FILE).read_text()  # the local folder is left as it was


def test_push_to_hub_method_uploads_what_loads_back(tiny_unet, fake_hub):
    seen, create_repo, create_branch, upload = fake_hub
    net = tiny_unet(1).eval()
    randomise_bn(net)
    assert net.push_to_hub("org/net", private=True, method="tower", trains_decoder=True) == \
        "https://huggingface.co/org/net/commit/abc"
    create_repo.assert_called_once_with("org/net", private=True, exist_ok=True)
    assert seen["repo_id"] == "org/net" and seen["files"] == sorted(FILES) and 'hf-hub:org/net"' in seen["card"]
    assert_same_state(net, UNet.from_pretrained(seen["uploaded"]))


def test_push_to_hub_saves_a_net_first_and_validates(tiny_unet, tmp_path, fake_hub):
    seen, create_repo, create_branch, upload = fake_hub
    push_to_hub(tiny_unet(1), "org/net", revision="v1", method="simclr", pretrain=PRETRAIN)
    create_branch.assert_called_once_with("org/net", branch="v1", exist_ok=True)
    assert seen["files"] == sorted(FILES) and seen["revision"] == "v1" and "simclr" in seen["card"]
    upload.reset_mock()
    make_saved(tiny_unet, tmp_path / "broken")
    (tmp_path / "broken" / DECODER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=DECODER_FILE):
        push_to_hub(tmp_path / "broken", "org/name")
    upload.assert_not_called()


def test_model_card_has_the_results(saved):
    _, path = saved
    card = ModelCard.load(path / CARD_FILE)
    (result,) = card.data.eval_results
    assert (result.task_name, result.dataset_name, result.metric_type, result.metric_value) == ("drive", "DRIVE", "dice", 80.1)
    assert card.data.library_name == "timm" and "tower" in card.data.tags
    assert stable_hash(PRETRAIN) in card.text and "local-dir:" in card.text and "from_pretrained" in card.text
    for section in ("## Intended use", "## Limitations", "## Training data and procedure", "## Citation"):
        assert section in card.text, section
    assert "Not validated for clinical use" in card.text and "@article{chen_tower" in card.text
    assert "Pretrained on task `drive`" in card.text  # from the pretraining record


def test_publish_dry_run_touches_no_network(saved):
    from typer.testing import CliRunner

    from benchmark.cli import app

    _, path = saved
    with mock.patch.object(HfApi, "create_repo", side_effect=AssertionError("network")), \
            mock.patch.object(HfApi, "upload_folder", side_effect=AssertionError("network")):
        res = CliRunner().invoke(app, ["publish", str(path), "--repo-id", "org/name", "--dry-run",
                                       "--store", str(path.parent / "no-store")])
    assert res.exit_code == 0, res.output
    assert all(f in res.output for f in FILES) and 'hf-hub:org/name"' in res.output and "model-index" in res.output
    assert "dry run: nothing uploaded to org/name" in res.output
