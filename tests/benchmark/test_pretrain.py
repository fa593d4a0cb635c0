"""The pretraining loop: every method trains, exports, resumes exactly, and stops cleanly on NaN."""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.core import registry
from benchmark.core.config import BUDGETS, PretrainConfig
from benchmark.core.schedule import cosine_lr
from benchmark.pretraining.batches import plan
from benchmark.pretraining.build import build_method
from benchmark.pretraining.loop import CHECKPOINT, METRICS, NonFiniteLossError, pretrain, resolve
from tests.conftest import TINY_DECODER, TINY_ENCODER
from zoo import PretrainMethod, UNet, info_nce, projection_head

REPO = Path(__file__).resolve().parents[2]
TOY = "tests.benchmark.test_pretrain:Toy"


class Toy(PretrainMethod):
    """Contract-following stand-in: InfoNCE on two noisy views + MSE restoration of the second.

    ``nan_at``: the loss of that (1-based) step is NaN. ``TOY_STEP_DELAY`` (seconds per step, from
    the environment so it stays out of the config hash) slows a run down enough to kill it mid-way.
    """

    name = "toy"
    trains_decoder = True

    @dataclass(frozen=True)
    class Hparams:
        noise: float = 0.1
        nan_at: int = 0

    def __init__(self, net, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        self.noise, self.nan_at = self.hp.noise, self.hp.nan_at
        self.proj = projection_head(net.num_features, 32, 16)
        self.register_buffer("done", torch.zeros((), dtype=torch.long))

    def views(self, images, generator=None):
        noise = torch.randn((2, *images.shape), generator=generator, device=images.device)
        return {"view1": (images + self.noise * noise[0]).clamp(0, 1), "view2": (images + self.noise * noise[1]).clamp(0, 1)}

    def loss(self, images, views):
        con = info_nce(self.proj(self.net.forward_pooled(views["view1"])), self.proj(self.net.forward_pooled(views["view2"])))
        gen = F.mse_loss(torch.sigmoid(self.net(views["view2"])), images)
        total = con + gen
        if self.nan_at and int(self.done) + 1 >= self.nan_at:
            total = total * float("nan")
        return {"loss": total, "contrastive": con, "restoration": gen}

    def after_step(self, step, total_steps):
        self.done.fill_(step + 1)
        time.sleep(float(os.environ.get("TOY_STEP_DELAY", 0)))


def available_methods() -> list:
    """Every registered method; one whose module is not written yet is skipped, not failed."""
    out = []
    for name, spec in registry.METHODS.items():
        try:
            importlib.import_module(spec.split(":")[0])
            out.append(name)
        except ModuleNotFoundError as err:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=f"{spec}: {err}")))
    return out


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "toy", TOY)


def tiny_images(n: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images (upsampled noise): structure a small net can learn."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return (F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)


def tiny_cfg(out: Path, method: str = "toy", **kw) -> PretrainConfig:
    base = dict(method=method, encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, batch_size=8, lr=1e-3, epochs=1,
                threads=1, deterministic=True, out=str(out))
    return PretrainConfig(**{**base, **kw})


def read_metrics(run: Path) -> list[dict]:
    """Per-step rows without the wall-clock speed, which legitimately differs between runs."""
    rows = [json.loads(line) for line in (run / METRICS).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


def fixed_batch_loss(method: PretrainMethod, images: torch.Tensor) -> float:
    """The method's loss on a fixed batch with fixed views, BatchNorm statistics left untouched."""
    snapshot = {k: v.clone() for k, v in method.state_dict().items()}
    x = images.float() / 255
    with torch.no_grad():
        views = method.views(x, torch.Generator().manual_seed(123))
        value = float(method.loss(x, views)["loss"])
    method.load_state_dict(snapshot)
    return value


# ----------------------------------------------------------------------------- config


def test_budgets_define_every_pretrain_size():
    for name, b in BUDGETS.items():
        for kind in ("segmentation", "multiclass"):
            cfg = PretrainConfig.from_budget(name, kind, task="drive")
            assert cfg.encoder == b.encoder and cfg.batch_size == b.pretrain_optim(kind).batch_size
    paper = BUDGETS["paper"]
    assert (paper.pretrain_segmentation.batch_size, paper.pretrain_segmentation.lr) == (32, 1e-2)
    assert (paper.pretrain_classification.batch_size, paper.pretrain_classification.lr) == (128, 1e-3)
    # the paper's fine-tuning protocol (PAPER.md): classification lr 2e-4 / 100 epochs, segmentation lr 1e-3 / 200
    assert (paper.finetune_classification.lr, paper.finetune_epochs("multiclass")) == (2e-4, 100)
    assert (paper.finetune_segmentation.lr, paper.finetune_epochs("segmentation"), paper.finetune_patience) == (1e-3, 200, 30)
    with pytest.raises(KeyError, match="valid budgets: " + ", ".join(BUDGETS)):
        PretrainConfig.from_budget("huge", "binary")


def test_config_hash_ignores_where_and_how_fast_but_not_what():
    cfg = PretrainConfig()
    assert cfg.hash() == cfg.replace(out="elsewhere", threads=7, checkpoint_every=3, data_root="/x").hash()
    assert cfg.hash() != cfg.replace(lr=2e-3).hash()
    assert cfg.hash() != cfg.replace(hparams={"temperature": 0.2}).hash()
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        PretrainConfig(batch_size=0)


def test_a_method_revision_renames_its_runs_but_revision_1_keeps_old_hashes():
    """A code change that changes what a method computes bumps ``revision``: its runs get a new hash, so
    ``run`` never reuses (nor ``--resume`` continues) a run made by the older code."""
    cfg = PretrainConfig(method="tower", health_holdout=64)
    assert cfg.hash() == "6b847fb4206e"  # the hash this config had before revisions (and the 512-image holdout)
    assert PretrainConfig(method="tower").hash() != cfg.hash()  # today's holdout trains on other images
    assert cfg.replace(method_revision=2).hash() != cfg.hash()
    assert resolve(cfg, 32).method_revision == registry.method_class("tower").revision == 2
    assert resolve(cfg.replace(method="simclr"), 32).method_revision == 1
    resolved = resolve(cfg, 32)
    assert resolve(resolved, 32) == resolved  # idempotent
    assert PretrainConfig.from_dict(resolved.to_dict()).hash() == resolved.hash()


def test_plan_splits_the_global_batch_and_handles_tiny_splits():
    cfg = PretrainConfig(batch_size=8, epochs=3)
    assert plan(20, cfg, 1) == (8, 2, 6)
    assert plan(20, cfg.replace(min_steps=10), 2) == (8, 2, 10)
    assert plan(20, cfg.replace(max_steps=4), 2) == (8, 2, 4)
    assert plan(5, cfg, 2) == (4, 1, 3)  # fewer images than the batch: all of them, per-rank equal
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        plan(20, cfg, 3)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    assert [cosine_lr(s, 10, 2) for s in (0, 1)] == [0.5, 1.0]
    assert cosine_lr(2, 10, 2) == 1.0 and cosine_lr(10, 10, 2) == pytest.approx(0.0)
    assert cosine_lr(6, 10, 2) == pytest.approx(0.5)


def test_unknown_method_and_hparam_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="valid methods: .*toy"):
        build_method(tiny_cfg(tmp_path, method="nope"), 3, "fundus")
    with pytest.raises(ValueError, match="unknown hyper-parameter.*bogus.*valid: noise, nan_at"):
        build_method(tiny_cfg(tmp_path, hparams={"bogus": 1}), 3, "fundus")


# ----------------------------------------------------------------------------- every method trains


@pytest.mark.parametrize("name", ["toy", *available_methods()])
def test_every_method_learns_and_exports(name, tmp_path):
    pytest.importorskip("zoo.hub")
    images = tiny_images(8)
    cfg = tiny_cfg(tmp_path / "run", method=name, lr=1e-2, max_steps=24, checkpoint_every=24, epochs=24)
    fitted = resolve(cfg, 32, torch.device("cpu"), len(images))  # hparams fitted to 8 images (MoCo's queue)
    export = pretrain(cfg, images=images, modality="fundus", progress=False)

    fresh, trained = build_method(fitted, 3, "fundus"), build_method(fitted, 3, "fundus")
    ckpt = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert ckpt["config"]["hparams"] == fitted.hparams  # the run's config records what ran
    trained.load_state_dict(ckpt["method"])
    if hasattr(fresh, "queue"):  # MoCo: the same (initial, random) negatives before and after; the trained
        trained.queue.copy_(fresh.queue)  # queue holds keys of these very 8 images, which 24 steps cannot separate
    before, after = fixed_batch_loss(fresh, images), fixed_batch_loss(trained, images)
    assert after < 0.95 * before, f"{name}: loss on a fixed batch went {before:.4f} -> {after:.4f}"

    net = UNet.from_pretrained(export)
    exported = trained.export().state_dict()
    assert set(net.state_dict()) == set(exported)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, exported[k], msg=f"{name}: exported {k} differs from the trained one")
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 25))
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)


# ----------------------------------------------------------------------------- resume


def _stop_after_step(monkeypatch, name: str, stop: int) -> None:
    """Simulate a crash: raise inside the step after ``stop``, i.e. after ``stop``'s checkpoint was written."""
    cls = registry.method_class(name)
    original = cls.after_step

    def after_step(self, step, total):
        original(self, step, total)
        if step == stop:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(cls, "after_step", after_step)


@pytest.mark.parametrize("name", ["toy", *available_methods()])
def test_resume_continues_exactly(name, tmp_path, monkeypatch):
    images = tiny_images()
    cfg = tiny_cfg(tmp_path / "full", method=name, max_steps=6, epochs=3, checkpoint_every=3)
    pytest.importorskip("zoo.hub")
    pretrain(cfg, images=images, progress=False)

    part = cfg.replace(out=str(tmp_path / "part"))
    with monkeypatch.context() as m:
        _stop_after_step(m, name, 3)
        with pytest.raises(KeyboardInterrupt):
            pretrain(part, images=images, progress=False)
    assert torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["step"] == 3
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(part, images=images, progress=False)
    pretrain(part, images=images, resume=True, progress=False)

    assert read_metrics(tmp_path / "part") == read_metrics(tmp_path / "full")
    a = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)["method"]
    b = torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["method"]
    for k in a:
        assert torch.equal(a[k], b[k]), f"{name}: {k} differs after resume"


def test_resume_refuses_another_config(tmp_path):
    pytest.importorskip("zoo.hub")
    cfg = tiny_cfg(tmp_path, max_steps=2)
    pretrain(cfg, images=tiny_images(), progress=False)
    with pytest.raises(ValueError, match="belongs to config"):
        pretrain(cfg.replace(lr=5e-3), images=tiny_images(), resume=True, progress=False)


_KILLED_RUN = """
import sys
from benchmark.core import registry
registry.METHODS["toy"] = {toy!r}
from benchmark.pretraining.loop import pretrain
from tests.benchmark.test_pretrain import tiny_cfg, tiny_images
from pathlib import Path
pretrain(tiny_cfg(Path(sys.argv[1]), max_steps=12, epochs=6, checkpoint_every=3), images=tiny_images(), progress=False)
"""


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_matches_uninterrupted(tmp_path):
    pytest.importorskip("zoo.hub")
    cfg = tiny_cfg(tmp_path / "full", max_steps=12, epochs=6, checkpoint_every=3)
    pretrain(cfg, images=tiny_images(), progress=False)

    run = tmp_path / "killed"
    env = {**os.environ, "TOY_STEP_DELAY": "0.25", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN.format(toy=TOY), str(run)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (run / CHECKPOINT).exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    step = torch.load(run / CHECKPOINT, weights_only=True)["step"]
    assert 3 <= step < 12
    assert not (run / "export").exists()

    pretrain(cfg.replace(out=str(run)), images=tiny_images(), resume=True, progress=False)
    assert read_metrics(run) == read_metrics(tmp_path / "full")


# ----------------------------------------------------------------------------- NaN guard


def test_nan_loss_stops_without_touching_the_last_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=8, epochs=4, checkpoint_every=2, hparams={"nan_at": 6})
    with pytest.raises(NonFiniteLossError, match=r"step 6 \(contrastive=.*loss=nan.*last good checkpoint: .*checkpoint.pt"):
        pretrain(cfg, images=tiny_images(), progress=False)
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["method"].values() if v.is_floating_point())
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
    assert not (tmp_path / "export").exists()


def test_resume_drops_metrics_past_the_checkpoint_and_a_line_cut_by_a_kill(tmp_path):
    from benchmark.pretraining.checkpoint import truncate_metrics

    path = tmp_path / METRICS
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "loss": 1.2}\n{"step": 4, "lo')
    truncate_metrics(path, 2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
