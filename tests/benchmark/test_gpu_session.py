"""The GPU session script: its dry run takes every step on the CPU, and any budget still ends in a summary."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.core.names import display_name
from benchmark.tools import gpu_session

REPO = Path(__file__).resolve().parents[2]
STEPS = ("machine", "cuda-tests", "gpu-check", "pretrain-tower", "pretrain-simclr", "pretrain-genesis", "finetune",
         "board")
ABSENT_ON_DEVICE = ("medmnist", "submitit", "nibabel")


def session(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the script as the device would; (the process, step -> status from summary.md)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("OUT", None)
    proc = subprocess.run([sys.executable, "-m", "benchmark.tools.gpu_session", "--work", str(tmp_path / "work"),
                           "--out", str(tmp_path / "out"), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [ln.split("|") for ln in (tmp_path / "out" / "summary.md").read_text().splitlines() if ln.startswith("| ")]
    return proc, {r[1].strip(): r[2].strip() for r in rows[1:]}


@pytest.mark.slow
def test_dry_run_takes_every_step_and_hands_back_the_board(tmp_path):
    _, status = session(tmp_path, "--dry-run")
    out = tmp_path / "out"
    board = gpu_session.DRY_RUN.board
    assert list(status) == list(STEPS)
    cuda = json.loads((tmp_path / "work" / "machine.json").read_text())["cuda_available"]
    expected = {name: "ok" for name in STEPS} | ({} if cuda else {"cuda-tests": "skipped: no CUDA"})
    assert status == expected
    names = {p.name for p in out.iterdir()}
    assert {"summary.md", "machine.txt", "gpu_check.md", "records.jsonl", "session.tar.gz",
            f"{board}.md", f"{board}.csv", f"{board}.png"} == names  # the device returns 8 files at most
    records = [json.loads(ln) for ln in (out / "records.jsonl").read_text().splitlines()]
    seeds = {init: sorted(r["seed"] for r in records if r["init"] == init) for init in {r["init"] for r in records}}
    assert seeds == {init: [0, 1] for init in ("tower", "simclr", "genesis", "random")}
    # the pretrained inits really came from this run's exports, at the capped step count
    assert all(r["config"]["init"].endswith(f"pretrain/{r['init']}/export") for r in records if r["init"] != "random")
    assert "| bf16 + channels_last |" in (out / "gpu_check.md").read_text()
    assert all(f"| {display_name(init)} |" in (out / f"{board}.md").read_text() for init in seeds)
    assert "torch: " in (out / "machine.txt").read_text()


def test_a_budget_too_small_for_anything_still_exits_0_with_a_summary(tmp_path):
    t0 = time.monotonic()
    proc, status = session(tmp_path, "--dry-run", "--budget-s", "1")
    assert time.monotonic() - t0 < 20, "nothing should have started"
    assert list(status) == list(STEPS)
    assert all(s.startswith(("skipped", "timed out")) for s in status.values()), status
    assert "skipped: no fine-tuning records" == status["board"]
    assert (tmp_path / "out" / "session.tar.gz").exists() and "| machine |" in proc.stdout


def test_a_step_past_its_box_is_killed_with_its_children(tmp_path):
    """The process group goes: a helper the step started (a compile worker, say) does not outlive it."""
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "print(p.pid, flush=True); time.sleep(60)")
    log = tmp_path / "step.log"
    rc, wall = gpu_session.run_boxed([sys.executable, "-c", code], 1.5, log, tmp_path, dict(os.environ))
    assert rc is None and 1.5 <= wall < 10
    lines = log.read_text().splitlines()
    assert lines[-1] == "[gpu_session: killed at its 2 s limit]"
    helper = int(next(ln for ln in lines if ln.isdigit()))
    time.sleep(0.2)
    state = Path(f"/proc/{helper}/stat")
    assert not state.exists() or state.read_text().split(")")[-1].split()[0] in ("Z", "X"), "helper still running"
    assert gpu_session.run_boxed([sys.executable, "-c", "raise SystemExit(3)"], 30, log, tmp_path,
                                 dict(os.environ))[0] == 3


def test_importing_it_and_its_children_needs_nothing_the_device_lacks():
    modules = ("benchmark.tools.gpu_session", "benchmark.pretraining.loop", "benchmark.sweep.run", "benchmark.cli",
               "benchmark.tools.gpu_check", "benchmark.tasks.drive", "benchmark.tasks.synth_fundus")
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
            f"print([m for m in {ABSENT_ON_DEVICE!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"
