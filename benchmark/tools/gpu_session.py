"""One prepared GPU session (issue 17): ``python3 -m benchmark.tools.gpu_session --out DIR`` in one device call.

A lent GPU is 15 minutes of device time for a whole session, so everything that needs it runs in
one call that must always finish and always hand back what it has. In order:

1. machine: GPU, torch, CUDA, driver (``nvidia-smi``) -> machine.txt;
2. cuda-tests: the CUDA-only tests (``pytest -m "not slow" -k cuda``) -> tests.txt;
3. gpu-check: ``benchmark.tools.gpu_check`` at the paper's shapes (ResNet-50 U-Net, 512 px, batch 32) -> gpu_check.md;
4. pretrain-<method>: TOWER, SimCLR and Model Genesis at the ``paper`` budget on DRIVE, each with a
   ``--max-steps`` cap that fits its share of the time left (from gpu_check's measured speed);
5. finetune: every init (the three exports + random) at 3 seeds with the budget's fine-tuning
   protocol, seed-major so an early stop still leaves whole rounds of seeds;
6. board: ``tower-bench leaderboard`` -> drive-paper-h200.{md,csv,png} and records.jsonl;
then summary.md: each step's status, wall seconds and headline numbers.

Every step is a subprocess (its own process group) with a hard deadline carved out of one total
budget (``--budget-s``); a step that runs out of time is killed and recorded as timed out, and the
steps after it still run while time is left (``benchmark.tools.timebox``). This process imports only the
standard library, so nothing a step breaks can stop the summary; the children it starts
(``benchmark.tools.gpu_session_children``) import torch. The device returns at most 8 files, hence $OUT holds
summary.md, machine.txt, gpu_check.md, the board's three files, records.jsonl and session.tar.gz
(everything else: tests.txt, logs, each pretraining's metrics.jsonl and export config, the store;
no weights).

``--dry-run`` takes the same path on the CPU at toy sizes (budget ``smoke``, the embedded
``synth-fundus`` task, 2 seeds, 2 pretraining steps, gpu_check's own ``--dry-run``) so CI proves
the script before a device minute is spent.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import sys
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmark.tools import timebox
from benchmark.tools.gpu_session_children import finetune_child, machine_child, pretrain_child
from benchmark.tools.timebox import REPO, child_env, module
from benchmark.tools.timebox import run_boxed as run_boxed  # part of this script's interface: the tests box a step with it

DATA_CANDIDATES = ("../shared/data/DRIVE", "shared/data/DRIVE")  # beside the checkout here; inside it on the device
PEAK_BF16_TFLOPS = 790.0  # H200 dense bf16 (an 8192^3 matmul measured 788 on the lent machine)
METHODS = ("tower", "simclr", "genesis")
TEST_FILES = {  # CUDA-only tests -> the modules a file imports that the device image may lack
    "tests/tower/test_proxy.py": (),
    "tests/benchmark/test_gpu_check.py": (),
    "tests/benchmark/test_launch.py": ("submitit",),
}
SAFETY = 0.7  # share of a pretraining box planned as steps; the rest absorbs a wrong speed estimate


@dataclass(frozen=True)
class Profile:
    """What differs between the device run and its CPU dry run; the code path is the same."""

    task: str
    budget: str
    seeds: int
    board: str
    gpu_check_args: tuple[str, ...]
    step_ceiling: int  # most pretraining steps: the budget's own length (paper: 2,000 on DRIVE)
    pretrain_batch: int  # images per pretraining step: min(budget batch 32, DRIVE's 16 training images)
    startup_s: float  # a pretraining process's fixed cost: imports, data, CUDA set-up, export
    fallback_steps_per_s: float  # when gpu_check measured nothing
    threads: str | None  # OMP_NUM_THREADS for the children (None: leave as is)


DEVICE = Profile("drive", "paper", 3, "drive-paper-h200", ("--encoder", "resnet50", "--size", "512", "--batch", "32"),
                 2000, 16, 20.0, 3.0, None)
DRY_RUN = Profile("synth-fundus", "smoke", 2, "synth-fundus-smoke-dry-run", ("--dry-run",), 2, 8, 10.0, 1.0, "1")

# Caps as shares of the total budget (540 s: machine 27, tests 81, gpu_check 216, for its torch.compile);
# the board's share is held back from every earlier step; pretraining gets PRETRAIN_SHARE of what is
# left after gpu_check, fine-tuning the rest.
CAPS = {"machine": 0.05, "cuda-tests": 0.15, "gpu-check": 0.40}
BOARD_SHARE = 0.08
PRETRAIN_SHARE = 0.4


class Session(timebox.Session):
    """One GPU session: boxed steps with the board's share held back, and what they run on."""

    def __init__(self, profile: Profile, budget_s: float, work: Path, data_root: Path | None, dry_run: bool):
        super().__init__(budget_s, work, child_env(profile.threads), reserve_s=BOARD_SHARE * budget_s)
        self.profile, self.data_root, self.dry_run = profile, data_root, dry_run


# ----------------------------------------------------------------------------- the steps

def machine_step(s: Session) -> dict:
    step, _ = s.run("machine", module("benchmark.tools.gpu_session", "--child", "machine", "--work", str(s.work)),
                    min(CAPS["machine"] * s.budget_s, s.left()))
    path = s.work / "machine.json"
    info = json.loads(path.read_text()) if path.exists() else {}
    if info:
        step.headline = (f"{info.get('gpu') or 'no GPU'}, torch {info['torch']}, CUDA {info['cuda'] or 'none'}, "
                         f"driver {info.get('driver') or 'unknown'}")
    return info


def tests_step(s: Session, cuda: bool | None) -> None:
    name = "cuda-tests"
    if cuda is False:
        s.skip(name, "no CUDA")
        return
    import importlib.util

    files = [f for f, needs in TEST_FILES.items() if all(importlib.util.find_spec(m) for m in needs)]
    left_out = [f"{f} (needs {', '.join(needs)})" for f, needs in TEST_FILES.items() if f not in files]
    cmd = module("pytest", "-rs", "-p", "no:cacheprovider", "-m", "not slow", "-k", "cuda", *files)
    step, _ = s.run(name, cmd, min(CAPS[name] * s.budget_s, s.left()))
    if step.status.startswith("skipped"):
        return
    text = s.log(name).read_text()
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error|deselected)", ln)]
    step.headline = lines[-1].strip("= ") if lines else "no pytest summary line"
    note = f"not collected here: {'; '.join(left_out)}\n" if left_out else ""
    (s.work / "tests.txt").write_text(f"{step.status}: {step.headline}\n{note}\n{text}")


def gpu_check_step(s: Session) -> float | None:
    """Runs the check; returns its measured bf16 + channels_last images/s (None when it measured nothing)."""
    name = "gpu-check"
    step, rc = s.run(name, module("benchmark.tools.gpu_check", *s.profile.gpu_check_args),
                     min(CAPS[name] * s.budget_s, s.left()))
    if step.status.startswith("skipped"):
        return None
    text = s.log(name).read_text()
    rows = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln}
    head = [ln for ln in text.splitlines() if ln.startswith(("command:", "torch ", "device:", "TOWER step:"))]
    if "bf16 + channels_last" not in rows:
        step.headline = "no table (see logs/gpu-check.log)"
        return None
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    (s.work / "gpu_check.md").write_text("\n".join(head + [""] + table) + "\n")
    if rc == 1:  # gpu_check's own verdict: the table is complete, a target was missed
        step.status = "ok: a target missed"
    fast = rows["bf16 + channels_last"]
    img_s = float(re.search(r"\| ([\d.]+) img/s", fast).group(1))
    speedup = _first(r"\(([\d.]+)x\)", fast)
    tflops = _first(r"\| ([\d.]+) \(", rows.get("achieved TFLOP/s", ""))
    peak = "?" if tflops == "?" else f"{100 * float(tflops) / PEAK_BF16_TFLOPS:.1f}"
    proxy = _first(r"\| ([\d.]+)% \(", rows.get("proxy share of step", ""))
    busy = _first(r"\| (\d+)% of wall", rows.get("GPU busy", ""))
    step.headline = (f"bf16+cl {img_s:.0f} img/s ({speedup}x fp32), {tflops} TFLOP/s ({peak}% of "
                     f"{PEAK_BF16_TFLOPS:g}), proxy {proxy}% of a step, busy {busy}%")
    return img_s


def _first(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    return m.group(1) if m else "?"


def pretrain_steps(s: Session, img_s: float | None) -> list[dict]:
    """Pretrain each method with a step cap that fits its share of the time; returns the exports made."""
    p = s.profile
    steps_per_s = img_s / p.pretrain_batch if img_s else p.fallback_steps_per_s
    pool = PRETRAIN_SHARE * s.left()
    pool_end = time.monotonic() + pool
    exports = []
    for i, method in enumerate(METHODS):
        name = f"pretrain-{method}"
        box = min((pool_end - time.monotonic()) / (len(METHODS) - i), s.left())
        cap = min(p.step_ceiling, int((box - p.startup_s) * steps_per_s * SAFETY))
        if cap < 1:
            s.skip(name, f"no time left for one step ({max(box, 0):.1f} s box)")
            continue
        out = s.work / "pretrain" / method
        cmd = module("benchmark.tools.gpu_session", "--child", "pretrain", "--method", method, "--task", p.task,
                     "--budget", p.budget, "--max-steps", str(cap), "--out", str(out))
        if s.data_root is not None:
            cmd += ["--data-root", str(s.data_root)]
        step, _ = s.run(name, cmd, box)
        config = out / "export" / "config.json"
        if not config.exists():
            continue
        meta = json.loads(config.read_text())["tower_bench"]["pretrain"]
        speeds = [json.loads(ln)["images_per_s"] for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
        speed = f"{statistics.median(speeds):.0f}" if speeds else "?"
        health = meta.get("health")
        verdict = "absent" if health is None else ("passed" if health.get("passed") else "FAILED")
        step.headline = (f"{meta['steps']} steps (cap {cap}, budget {p.step_ceiling}), final loss "
                         f"{meta['final_loss']:.4g}, {speed} img/s; health {verdict}")
        exports.append({"name": method, "init": str(out / "export"), "pretrain_hash": meta["hash"], "health": health})
    return exports


def finetune_step(s: Session, exports: list[dict]) -> list[dict]:
    """Fine-tune every init at every seed in one child; returns the records stored, whatever stopped it."""
    p = s.profile
    inits = exports + [{"name": "random", "init": "random", "pretrain_hash": None}]
    store = s.work / "store"
    spec = {"task": p.task, "budget": p.budget, "data_root": None if s.data_root is None else str(s.data_root),
            "store": str(store), "seeds": p.seeds, "inits": [{k: i[k] for k in ("name", "init", "pretrain_hash")}
                                                             for i in inits]}
    spec_path = s.work / "finetune.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    step, _ = s.run("finetune", module("benchmark.tools.gpu_session", "--child", "finetune", "--work", str(s.work)),
                    s.left())
    records = [json.loads(f.read_text()) for f in sorted((store / p.task).glob("*.json"))]
    if not step.status.startswith("skipped"):
        count = {i["name"]: sum(r["init"] == i["name"] for r in records) for i in inits}
        error = step.headline
        step.headline = (f"{len(records)} of {len(inits) * p.seeds} runs: "
                         + ", ".join(f"{k} {v}" for k, v in count.items()))
        if records:
            step.headline += (f"; {statistics.mean(r['wall_time_s'] for r in records):.0f} s and "
                              f"{statistics.mean(r['epochs_run'] for r in records):.0f} epochs per run")
        step.headline += f"; {error}" if error else ""
    return records


def board_step(s: Session, records: list[dict]) -> None:
    name, p = "board", s.profile
    if not records:
        s.skip(name, "no fine-tuning records")
        return
    board = s.work / "board"
    board.mkdir(exist_ok=True)
    with open(board / "records.jsonl", "w") as f:
        f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)
    reference = "tower" if any(r["init"] == "tower" for r in records) else "random"
    cmd = module("benchmark", "leaderboard", p.task, "--store", "store", "--out", "board", "--budget", p.budget,
                 "--name", p.board, "--reference", reference)
    step, _ = s.run(name, cmd, s.deadline - time.monotonic(), cwd=s.work)
    by_init: dict[str, list[float]] = {}
    for r in records:
        by_init.setdefault(r["init"], []).append(float(r["value"]))
    metric = records[0]["metric"]
    step.headline = f"test {metric}: " + ", ".join(
        f"{init} {statistics.mean(v):.2f}" + (f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else "") + f" (n {len(v)})"
        for init, v in sorted(by_init.items(), key=lambda kv: -statistics.mean(kv[1])))


# ----------------------------------------------------------------------------- summary and hand-back

def summary(s: Session, argv: list[str], exports: list[dict]) -> str:
    p = s.profile
    lines = [f"# GPU session{' (dry run)' if s.dry_run else ''}", "",
             f"- command: `{shlex.join(['python3', '-m', 'benchmark.tools.gpu_session', *argv])}`",
             f"- finished: {datetime.now(timezone.utc).isoformat(timespec='seconds')}, "
             f"{time.monotonic() - s.t0:.0f} s of a {s.budget_s:.0f} s budget",
             f"- task {p.task}, budget {p.budget}, data {s.data_root or 'embedded'}, {p.seeds} seeds per init, "
             f"pretraining capped by time (the budget's full length: {p.step_ceiling} steps)",
             "", "| step | status | wall s | headline |", "|---|---|---:|---|"]
    lines += [f"| {st.name} | {st.status} | {st.wall_s:.0f} | {st.headline.replace('|', '/')} |" for st in s.steps]
    if exports:
        lines += ["", "## Pretraining health", ""]
        for e in exports:
            health = e["health"]
            lines.append(f"- {e['name']}: " + ("no health section in its export" if health is None
                                               else f"passed={health.get('passed')} `{json.dumps(health)}`"))
    lines += ["", "Logs of every step, tests.txt, each pretraining's metrics.jsonl and export config, and the "
              "result store are in session.tar.gz."]
    return "\n".join(lines) + "\n"


def hand_back(s: Session, out: Path) -> list[Path]:
    """Copy the top files and one archive of the rest (no weights) to ``out``: the device returns 8 files at most."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    board = s.work / "board"
    picked = [s.work / "summary.md", s.work / "machine.txt", s.work / "gpu_check.md", board / "records.jsonl"]
    picked += [board / f"{s.profile.board}.{ext}" for ext in ("md", "csv", "png")]
    copied = [Path(shutil.copy2(f, out)) for f in picked if f.exists()]
    inside = f"gpu-session/{out.relative_to(s.work).as_posix()}" if out.is_relative_to(s.work) else None

    def keep(t: tarfile.TarInfo) -> tarfile.TarInfo | None:  # no weights, and not the archive itself
        left_out = t.name.endswith((".pt", ".safetensors")) or (inside and (t.name + "/").startswith(inside + "/"))
        return None if left_out else t

    with tarfile.open(out / "session.tar.gz", "w:gz") as tar:
        tar.add(s.work, arcname="gpu-session", filter=keep)
    return copied + [out / "session.tar.gz"]


def data_candidates(given: Path | None) -> list[Path]:
    return [given.resolve()] if given is not None else [(REPO / rel).resolve() for rel in DATA_CANDIDATES]


def find_data_root(given: Path | None) -> Path | None:
    """The first candidate with DRIVE's training/ folder: checked here, before any device minute goes on it."""
    return next((root for root in data_candidates(given) if (root / "training").is_dir()), None)


def session(args: argparse.Namespace, argv: list[str]) -> int:
    profile = DRY_RUN if args.dry_run else DEVICE
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = (args.work or REPO / "runs" / "gpu-session" / stamp).resolve()
    out = Path(args.out or os.environ.get("OUT") or work / "out").resolve()
    if out == work:
        raise ValueError(f"--out {out} must differ from --work: the work folder is archived into it")
    data_root = None if args.dry_run else find_data_root(args.data_root)
    s = Session(profile, args.budget_s, work, data_root, args.dry_run)
    s.say(f"gpu session{' (dry run)' if args.dry_run else ''}: budget {args.budget_s:.0f} s, work {work}, out {out}")
    exports: list[dict] = []
    try:
        cuda = machine_step(s).get("cuda_available")
        tests_step(s, cuda)
        training = (*(f"pretrain-{m}" for m in METHODS), "finetune", "board")
        if not args.dry_run and cuda is not True:
            why = "no CUDA (a CPU takes --dry-run)" if cuda is False else "CUDA unknown (no machine step result)"
            for name in ("gpu-check", *training):
                s.skip(name, why)
        else:
            img_s = gpu_check_step(s)
            if args.dry_run or data_root is not None:
                exports = pretrain_steps(s, img_s)
                board_step(s, finetune_step(s, exports))
            else:
                where = " or ".join(str(root) for root in data_candidates(args.data_root))
                for name in training:
                    s.skip(name, f"no DRIVE (a training/ folder) at {where}")
    finally:  # a bug in this script still leaves a summary of what ran
        text = summary(s, argv, exports)
        (work / "summary.md").write_text(text)
        files = hand_back(s, out)
        print(text)
        print("handed back: " + ", ".join(f.name for f in files))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--child", "pretrain"]:  # the rest are tower-bench pretrain's own options
        pretrain_child(argv[2:])  # Typer exits with the command's exit code
        return 0
    p = argparse.ArgumentParser(prog="python3 -m benchmark.tools.gpu_session", description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at toy sizes (for CI)")
    p.add_argument("--out", type=Path, help="where the results are handed back (default: $OUT, else WORK/out)")
    p.add_argument("--budget-s", type=float, default=540.0, help="total seconds of work; every step fits inside")
    p.add_argument("--data-root", type=Path,
                   help=f"DRIVE folder (default: the first of {', '.join(DATA_CANDIDATES)} beside this checkout)")
    p.add_argument("--work", type=Path, help="working folder (default: runs/gpu-session/<UTC time>)")
    p.add_argument("--child", choices=("machine", "finetune"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.budget_s <= 0:
        p.error(f"--budget-s must be > 0, got {args.budget_s:g}")
    if args.child == "machine":
        machine_child(args.work)
    elif args.child == "finetune":
        finetune_child(args.work)
    else:
        return session(args, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
