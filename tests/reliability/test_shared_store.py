"""A store a lab shares: files get the user's umask, and two runs on one store never compute a job twice at once."""
from __future__ import annotations

import json
import os
import platform
import re
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmark.results.store import ResultStore
from tests.reliability.common import subprocess_env

RECORD = {"task": "drive", "init": "random", "seed": 0, "label_fraction": 1.0, "budget": "smoke",
          "config_hash": "abc", "metric": "dice", "value": 50.0}

WRITE_EVERYTHING = """
from typer.testing import CliRunner
from benchmark.cli import app
for args in (["pretrain", "--budget", "smoke", "--out", "run", "--checkpoint-every", "1"],
             ["finetune", "--budget", "smoke", "--task", "synth-fundus", "--store", "store"]):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
"""


def test_records_checkpoints_and_exports_follow_the_umask(tmp_path):
    subprocess.run([sys.executable, "-c", WRITE_EVERYTHING], cwd=tmp_path, env=subprocess_env(), check=True,
                   capture_output=True, timeout=300, preexec_fn=lambda: os.umask(0o002))
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"checkpoint.pt", "metrics.jsonl", "model.safetensors", "decoder.safetensors", "config.json",
            "README.md"} <= names
    assert any(p.suffix == ".json" and p.parent.parent.name == "store" for p in files), "no record written"
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o664"}, modes


# ----------------------------------------------------------------------------- claims


def _lock(store: ResultStore, host: str, pid: int, age_s: float = 0.0) -> Path:
    lock = store.lock_path(RECORD)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"host": host, "pid": pid, "time": time.time() - age_s}))
    return lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    store = ResultStore(tmp_path)
    lock = _lock(store, platform.node(), _dead_pid())
    start = time.monotonic()
    with store.claim(RECORD, poll_s=0.05) as todo:
        assert todo
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 5
    assert not lock.exists(), "the claim outlived its job"


def test_old_claim_of_another_host_is_taken_over_and_a_young_one_is_waited_for(tmp_path):
    store = ResultStore(tmp_path)
    _lock(store, "elsewhere", 1, age_s=120)
    with store.claim(RECORD, poll_s=0.05, stale_after_s=60) as todo:
        assert todo
    _lock(store, "elsewhere", 1, age_s=1)
    writer = threading.Timer(0.5, lambda: store.put(RECORD))
    writer.start()
    start = time.monotonic()
    with store.claim(RECORD, poll_s=0.05, stale_after_s=60) as todo:
        assert not todo, "computed a job another live run holds"
    assert time.monotonic() - start >= 0.4
    writer.join()


def test_claim_is_released_when_the_job_fails(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.claim(RECORD) as todo:
            assert todo
            raise RuntimeError("the job failed")
    assert not store.lock_path(RECORD).exists()


SEEDS = 3


def test_two_runs_on_one_store_compute_every_job_once(tmp_path):
    args = ["-m", "benchmark", "run", "--budget", "smoke", "--task", "synth-fundus", "--method", "random",
            "--seeds", str(SEEDS), "--store", str(tmp_path / "store"), "--no-progress"]
    procs = [subprocess.Popen([sys.executable, *args, "--out", str(tmp_path / f"boards{i}")], cwd=tmp_path,
                              env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    # finetune_stored prints one line per job it fine-tuned itself: "synth-fundus random finetune seed N fraction 1.0: ..."
    done = Counter(int(m) for _, err in outputs for m in re.findall(r"synth-fundus random finetune seed (\d+) fraction", err))
    assert done == Counter(range(SEEDS)), f"fine-tuning runs per seed: {dict(done)}"
    assert len(ResultStore(tmp_path / "store").records()) == SEEDS
    assert not list((tmp_path / "store").rglob("*.lock"))
