"""Steps as subprocesses with hard deadlines carved out of one total budget (what ``benchmark.tools.gpu_session`` runs).

A step that runs out of time is killed with its whole process group and recorded as timed out; the steps after
it still run while time is left. Standard library only, so nothing a step breaks can stop the caller.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIN_BOX_S = 2.0  # a step given less than this is skipped, not started


@dataclass
class Step:
    name: str
    status: str = "interrupted (see the traceback)"
    wall_s: float = 0.0
    headline: str = ""


class Session:
    """The clock, the log folder and the step records of one run; ``reserve_s`` is held back from every step."""

    def __init__(self, budget_s: float, work: Path, env: dict[str, str], reserve_s: float = 0.0):
        self.budget_s, self.work, self.env, self.reserve_s = budget_s, work, env, reserve_s
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        self.steps: list[Step] = []
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        """Seconds until the deadline, less the reserve."""
        return self.deadline - time.monotonic() - self.reserve_s

    def say(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.0f} s] {msg}", flush=True)

    def add(self, name: str) -> Step:
        step = Step(name)
        self.steps.append(step)
        return step

    def skip(self, name: str, why: str) -> Step:
        step = self.add(name)
        step.status = f"skipped: {why}"
        self.say(f"{name}: {step.status}")
        return step

    def run(self, name: str, cmd: list[str], box: float, cwd: Path = REPO) -> tuple[Step, int | None]:
        """Run ``cmd`` with at most ``box`` seconds; (its step, exit code or None when skipped or killed)."""
        if box < MIN_BOX_S:
            return self.skip(name, f"no time left ({max(box, 0):.1f} s)"), None
        step = self.add(name)
        self.say(f"{name}: started, {box:.0f} s at most")
        rc, step.wall_s = run_boxed(cmd, box, self.log(name), cwd, self.env)
        step.status = f"timed out after {box:.0f} s" if rc is None else ("ok" if rc == 0 else f"failed (exit {rc})")
        if rc:  # the error, so the summary says why without the archive
            lines = [ln for ln in self.log(name).read_text().splitlines() if ln.strip()]
            errors = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception)\b", ln)]
            step.headline = (errors or lines)[-1][:200]
        self.say(f"{name}: {step.status} ({step.wall_s:.0f} s)")
        return step, rc

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def child_env(threads: str | None) -> dict[str, str]:
    """The children import this tree (PYTHONPATH first) and write their logs unbuffered."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", threads)
    return env


def run_boxed(cmd: list[str], box: float, log: Path, cwd: Path, env: dict[str, str]) -> tuple[int | None, float]:
    """(exit code, or None when killed at ``box`` seconds; wall seconds). Output goes to ``log``.

    The child leads its own process group, and the whole group is killed afterwards, so helpers
    it started (torch.compile's workers, say) never outlive it.
    """
    t0 = time.monotonic()
    with open(log, "w") as out:
        out.write(f"$ {shlex.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=box)
        except subprocess.TimeoutExpired:
            rc = None
            out.write(f"\n[gpu_session: killed at its {box:.0f} s limit]\n")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return rc, time.monotonic() - t0


def module(*args: str) -> list[str]:
    """A child command running this interpreter on this tree."""
    return [sys.executable, "-m", *args]
