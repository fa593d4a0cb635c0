"""SIGKILL at the worst moments: inside a step, inside a checkpoint write, in the middle of a sweep.

A killed pretraining run continues with ``--resume`` to exactly the uninterrupted result (CPU,
deterministic); a checkpoint is never half-written; a killed ``tower-bench run`` keeps its finished
records and its rerun fine-tunes only the missing ones. (tests/benchmark/test_pretrain.py already
kills a run at a random moment after its first checkpoint; these add the other kill points.)
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.pretraining.checkpoint import load_checkpoint
from benchmark.pretraining.loop import CHECKPOINT, EXPORT, pretrain
from benchmark.results.store import ResultStore
from tests.benchmark.test_pretrain import TOY, read_metrics, tiny_cfg, tiny_images
from tests.reliability.common import REPO, cli, snapshot, subprocess_env

# 16 images, batch 8: 2 steps per epoch; 9 steps with checkpoints after steps 3, 6 and 9.
RUN = dict(max_steps=9, epochs=5, checkpoint_every=3)

_HANGING_RUN = """
import sys, time
from pathlib import Path
from benchmark.core import registry
registry.METHODS["toy"] = {toy!r}
import benchmark.pretraining.loop as bp
from tests.benchmark.test_pretrain import tiny_cfg, tiny_images

out, mode, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
marker = out.parent / (out.name + ".hanging")
if mode == "step":  # hang inside step `at`, after its optimizer update, before it is counted
    cls = registry.method_class("toy")
    after_step = cls.after_step
    def hanging_after_step(self, step, total):
        after_step(self, step, total)
        if step + 1 == at:
            marker.write_text("in step")
            time.sleep(600)
    cls.after_step = hanging_after_step
else:  # hang inside checkpoint write number `at`, after its temporary file is fully written
    atomic_write, count = bp.atomic_write, [0]
    def hanging_atomic_write(path, write):
        def slow_write(tmp):
            write(tmp)
            count[0] += 1
            if count[0] == at:
                marker.write_text(str(tmp))
                time.sleep(600)
        return atomic_write(path, slow_write)
    bp.atomic_write = hanging_atomic_write
bp.pretrain(tiny_cfg(out, **{run!r}), images=tiny_images(), progress=False)
"""

KILL_POINTS = {  # name: (mode, at, checkpoint step left on disk)
    "inside step 2, before any checkpoint": ("step", 2, None),
    "inside step 5, after the step-3 checkpoint": ("step", 5, 3),
    "inside the first checkpoint write": ("ckpt", 1, None),
    "inside the second checkpoint write": ("ckpt", 2, 3),
}


@pytest.mark.slow
def test_pretraining_killed_anywhere_resumes_to_the_uninterrupted_result(tmp_path):
    # Start every victim at once (each pays a torch import), then build the reference while they run.
    procs = {}
    for i, (name, (mode, at, _)) in enumerate(KILL_POINTS.items()):
        out = tmp_path / f"killed{i}"
        procs[name] = (out, subprocess.Popen(
            [sys.executable, "-c", _HANGING_RUN.format(toy=TOY, run=RUN), str(out), mode, str(at)],
            cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    from benchmark.core import registry

    registry.METHODS["toy"] = TOY
    try:
        reference = pretrain(tiny_cfg(tmp_path / "reference", **RUN), images=tiny_images(), progress=False)
        for name, (out, proc) in procs.items():
            mode, at, left = KILL_POINTS[name]
            marker = out.parent / (out.name + ".hanging")
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert proc.poll() is None, f"{name}: the run ended before the kill:\n{proc.stdout.read().decode()}"
                assert time.monotonic() < deadline, f"{name}: never reached the kill point"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL

            ckpt = out / CHECKPOINT
            if left is None:
                assert not ckpt.exists(), f"{name}: a checkpoint appeared before its write finished"
            else:  # the previous checkpoint is whole and loadable, never half of the new one
                assert load_checkpoint(ckpt)["step"] == left, name
            if mode == "ckpt":
                assert Path(marker.read_text()).exists(), f"{name}: the cut write's temp file is gone"
            assert not (out / EXPORT).exists()

            pretrain(tiny_cfg(out, **RUN), images=tiny_images(), resume=True, progress=False)
            assert read_metrics(out) == read_metrics(tmp_path / "reference"), f"{name}: losses differ after resume"
            for f in ("model.safetensors", "decoder.safetensors"):
                assert (out / EXPORT / f).read_bytes() == (reference / f).read_bytes(), f"{name}: {f} differs"
            assert not list(out.glob("*.tmp")), f"{name}: a stale checkpoint temp file was left behind"
    finally:
        registry.METHODS.pop("toy", None)
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ----------------------------------------------------------------------------- a killed sweep

SWEEP = ("run", "--budget", "smoke", "--task", "synth-fundus", "--method", "tower,simclr", "--seeds", "2",
         "--store", "store", "--out", "leaderboards", "--no-progress")


@pytest.mark.slow
def test_killed_sweep_keeps_finished_records_and_the_rerun_does_only_the_rest(tmp_path, capsys, monkeypatch):
    import benchmark.finetuning.protocols
    import benchmark.pretraining.loop

    records = tmp_path / "store" / "synth-fundus"
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *SWEEP], cwd=tmp_path, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not (records.is_dir() and list(records.glob("*.json"))):
            assert proc.poll() is None, f"the sweep ended before the kill:\n{proc.stdout.read().decode()}"
            assert time.monotonic() < deadline, "no record within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # the killed job's claim (<record>.lock) stays behind: the rerun takes it over, its owner's pid being gone
    finished = {k: v for k, v in snapshot(records).items() if k.endswith(".json")}
    done = {(r["init"], r["seed"]) for r in ResultStore(tmp_path / "store").records("synth-fundus")}
    assert 1 <= len(done) < 4 and len(finished) == len(done)

    # The rerun, in this process so that what it trains can be watched.
    fine_tuned, pretrained = [], []
    build_model, pretrain_impl = benchmark.finetuning.protocols.build_model, benchmark.pretraining.loop._pretrain

    def watch_build_model(cfg, task, *args):
        fine_tuned.append((cfg.init, cfg.seed))
        return build_model(cfg, task, *args)

    def watch_pretrain(cfg, *args, **kwargs):
        pretrained.append(cfg.method)
        return pretrain_impl(cfg, *args, **kwargs)

    monkeypatch.setattr(benchmark.finetuning.protocols, "build_model", watch_build_model)
    monkeypatch.setattr(benchmark.pretraining.loop, "_pretrain", watch_pretrain)
    res = cli(capsys, *SWEEP)
    assert res.code == 0, res.err

    store = ResultStore(tmp_path / "store").records("synth-fundus")
    assert sorted((r["init"], r["seed"]) for r in store) == [("simclr", 0), ("simclr", 1), ("tower", 0), ("tower", 1)]
    after = snapshot(records)
    assert {k: after[k] for k in finished} == finished, "a finished record was rewritten by the rerun"
    assert len(fine_tuned) == 4 - len(done), f"the rerun fine-tuned {fine_tuned}; already done: {done}"
    assert "tower" not in pretrained, "tower's finished export was trained again"
    for r in store:
        assert r["seed"] == r["config"]["seed"], "a record's seed differs from its config's"
    assert (tmp_path / "leaderboards" / "synth-fundus-smoke.csv").exists()
    rows = (tmp_path / "leaderboards" / "synth-fundus-smoke.csv").read_text()
    assert "simclr" in rows and "tower" in rows
    assert not list((tmp_path / "store").rglob("*.tmp"))
    assert not list((tmp_path / "store").rglob("*.lock")), "a claim outlived the rerun"
    json.loads(next(iter(records.glob("*.json"))).read_text())  # records stay whole JSON
