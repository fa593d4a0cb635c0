"""Where ``tower-bench run``'s planned jobs execute: in this process, or as submitit jobs.

``benchmark.sweep.run.plan`` turns a sweep into jobs: each is a picklable callable that writes its own
output (a pretraining export, a store record), so a launcher only starts jobs and waits.

- ``inline`` (default): one after the other in this process.
- ``local``: submitit's LocalExecutor on this machine: one worker process per GPU of ``--gpus``
  (each sees only its GPU through CUDA_VISIBLE_DEVICES), or, without GPUs, ``--workers`` CPU
  processes sharing the cores. The workers draw from one queue (a folder of claim files), so a
  long job on one worker never holds back jobs another could run.
- ``slurm``: submitit's AutoExecutor: one array task per job; partition, time, memory, GPUs per
  job and array parallelism go to ``update_parameters``. The launching process waits (polling).

Pretraining comes first, one job per (method, task) that has no export yet. ``inline`` and ``slurm``
start fine-tuning when all of them have ended; ``local`` workers take the fine-tuning jobs that wait for
no pretraining (random init) or for one already done while the last pretrainings still run, so no
worker idles at the phase boundary. A failed job does not stop the others (a fine-tuning whose
pretraining failed is skipped); the launcher then raises ``JobsFailedError`` naming the first
failure and where the logs are.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from rich.console import Console

from benchmark.errors import ConfigError

LAUNCHERS = ("inline", "local", "slurm")
DEFAULT_JOBS_DIR = Path("runs/submitit")
console = Console(stderr=True, soft_wrap=True)  # a log line is one line, in a log file too

Job = Callable[..., Any]  # job(progress=bool): runs one planned step and writes its output


class JobsFailedError(RuntimeError):
    """Some submitted jobs failed; the others' outputs are kept and a rerun retries only the failed ones."""


def claim(path: Path) -> bool:
    """Whether this process is the first to claim ``path`` (created atomically, holding its pid; never removed)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    return True


def _alive(claim_file: Path) -> bool:
    """Whether the process that claimed a job still runs (an empty file: it is writing its pid now)."""
    text = claim_file.read_text().strip()
    if not text:
        return True
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process we may not signal holds that pid: alive
    return True


def _ended(queue: Path, i: int, ok: bool, line: str = "") -> None:
    """Mark job ``i`` ended: its status on the first line, its one-line result (or error) on the second."""
    tmp = queue / f".ended-{i}.{os.getpid()}"
    tmp.write_text(("ok" if ok else "failed") + "\n" + line)
    os.replace(tmp, queue / f"ended-{i}")


def _ok(ended: Path) -> bool:
    return ended.read_text().split("\n", 1)[0] == "ok"


def _succeeded(queue: Path, i: int, poll_s: float = 0.5) -> bool:
    """Wait until job ``i`` of the queue has ended; whether it succeeded (a dead worker's job did not)."""
    ended = queue / f"ended-{i}"
    while not ended.exists():
        if not _alive(queue / f"job-{i}"):
            return ended.exists() and _ok(ended)
        time.sleep(poll_s)
    return _ok(ended)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class SweepProgress:
    """What a person watching a sweep needs: jobs done / total, elapsed time and an ETA, and each finished job's
    one-line result as it lands (a failed one names its log). A live bar on a terminal, plain lines in a log."""

    def __init__(self, total: int, phase: str):
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.bar = None
        if console.is_terminal:
            from rich import progress as bars

            self.bar = bars.Progress(bars.TextColumn(phase), bars.BarColumn(), bars.MofNCompleteColumn(),
                                     bars.TimeElapsedColumn(), bars.TextColumn("ETA"), bars.TimeRemainingColumn(),
                                     console=console)
            self.task = self.bar.add_task(phase, total=total)
            self.bar.start()

    def status(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = _clock(elapsed / self.done * (self.total - self.done)) if self.done else "?"
        return f"[{self.done}/{self.total} {_clock(elapsed)} ETA {eta}]"

    def landed(self, line: str, ok: bool = True) -> None:
        self.done += 1
        text = f"{self.status()} {'' if ok else 'FAILED: '}{line}"
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(job: Job, result: Any) -> str:
    return job.summary(result) if hasattr(job, "summary") else str(job)


def execute(jobs: Sequence[Job], threads: int | None = None, queue: Path | None = None,
            after: Sequence[int | None] | None = None) -> list[str]:
    """What a submitted job runs: ``jobs`` one after another; one line per failure, the rest still run.

    With ``queue`` (a folder the workers share) a job runs only on the worker that claims it first, so
    every worker walks the whole list and takes the next job nobody has taken. ``after[i]``: the index
    of an earlier job that job ``i`` needs; its worker waits for it and skips job ``i`` if it failed.
    """
    if threads:
        torch.set_num_threads(threads)
    failures = []
    for i, job in enumerate(jobs):
        if queue is not None and not claim(queue / f"job-{i}"):
            continue
        needed = after[i] if after is not None and queue is not None else None
        ok, line = False, ""
        try:
            if needed is not None and not _succeeded(queue, needed):
                failures.append(line := f"{job}: skipped: {jobs[needed]} failed")
                console.print(f"[red]{failures[-1]}[/red]")
                continue
            line = _summary(job, job(progress=False))
            ok = True
        except Exception as err:  # noqa: BLE001 - reported to the launcher, the other jobs go on
            failures.append(line := f"{job}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
            console.print(f"[red]failed: {failures[-1]}[/red]")
        finally:
            if queue is not None:
                _ended(queue, i, ok, line)
    return failures


def _follow(submitted: list, queue: Path, total: int, phase: str, poll_s: float = 1.0) -> None:
    """While the workers run, report each job of the queue as it ends; a failed one names its worker's log (a local
    worker's job id is its pid, which its claim files hold)."""
    logs = {str(job.job_id): job.paths.stderr for job in submitted if job.paths is not None}
    report, seen = SweepProgress(total, phase), set()
    try:
        while True:
            running = not all(job.done() for job in submitted)
            for ended in sorted(queue.glob("ended-*"), key=lambda p: p.stat().st_mtime_ns):
                if ended.name in seen:
                    continue
                seen.add(ended.name)
                status, _, line = ended.read_text().partition("\n")
                claimer = (queue / f"job-{ended.name.split('-')[1]}").read_text().strip()
                log = "" if status == "ok" else f" (log {logs.get(claimer, queue)})"
                report.landed(line + log, status == "ok")
            if not running:
                return
            time.sleep(poll_s)
    finally:
        report.close()


def parse_gpus(spec: str) -> list[int]:
    """``"0,1,2,3"`` -> [0, 1, 2, 3]; ``""`` -> [] (CPU workers)."""
    try:
        gpus = [int(g) for g in spec.split(",") if g.strip()]
    except ValueError:
        raise ConfigError(f"--gpus expects comma-separated GPU indices such as 0,1,2,3, got {spec!r}") from None
    if len(set(gpus)) != len(gpus) or any(g < 0 for g in gpus):
        raise ConfigError(f"--gpus lists each GPU index once and none negative, got {spec!r}")
    return gpus


def _wait(submitted: list, phase: str, folder: Path) -> None:
    """Block until every submitit job ended; raise one line when any job failed."""
    failures: list[str] = []
    for job in submitted:
        try:
            failures += job.result()
        except Exception as err:  # noqa: BLE001 - submitit's FailedJobError / UncompletedJobError
            lines = [line for line in str(err).splitlines() if line.strip()]
            failures.append(f"job {job.job_id} ({lines[-1].strip() if lines else type(err).__name__}); "
                            f"log {job.paths.stderr}")
    if failures:
        raise JobsFailedError(f"{len(failures)} {phase} job(s) failed (logs in {folder}); first: {failures[0]}")


class PhasedSweep:
    """A sweep in two phases: every pretraining has ended before the first fine-tuning starts."""

    def run_sweep(self, pretrain: Sequence[Job], finetune: Sequence[Job], after: Sequence[int | None]) -> None:
        self.run(pretrain, "pretrain")
        self.run(finetune, "finetune")


class InlineLauncher(PhasedSweep):
    """Jobs run here, in order; an error propagates at once (what tests and notebooks want)."""

    name = "inline"

    def __init__(self, progress: bool = True):
        self.progress = progress

    @property
    def device(self) -> torch.device | None:
        return None  # this process's own choice: CUDA when present

    def run(self, jobs: Sequence[Job], phase: str) -> None:
        report = SweepProgress(len(jobs), phase) if jobs else None
        try:
            for job in jobs:
                report.landed(_summary(job, job(progress=self.progress)))
        finally:
            if report is not None:
                report.close()


class LocalLauncher:
    """submitit's LocalExecutor: ``workers`` processes, worker i on GPU ``gpus[i % len(gpus)]`` or on CPU."""

    name = "local"

    def __init__(self, folder: Path = DEFAULT_JOBS_DIR, gpus: Sequence[int] = (), workers: int | None = None,
                 timeout_min: int = 24 * 60):
        self.folder, self.gpus, self.timeout_min = Path(folder), list(gpus), timeout_min
        self.workers = workers or max(1, len(self.gpus))
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.gpus else "cpu")

    def run(self, jobs: Sequence[Job], phase: str, after: Sequence[int | None] | None = None) -> None:
        if not jobs:
            return
        import submitit

        executor = submitit.LocalExecutor(folder=self.folder / "%j")
        n = min(self.workers, len(jobs))
        # CPU workers split the cores; a GPU worker keeps torch's default for its few CPU ops
        threads = None if self.gpus else max(1, (os.cpu_count() or 1) // n)
        where = f"GPUs {self.gpus}" if self.gpus else f"CPU, {threads} thread(s) each"
        console.print(f"{phase}: {len(jobs)} job(s) on {n} local worker(s) ({where}); logs in {self.folder}")
        queue = self.folder / f"queue-{phase.split()[0]}-{os.getpid()}-{time.time_ns()}"
        queue.mkdir(parents=True)
        submitted = []
        for i in range(n):
            gpu = {"visible_gpus": [self.gpus[i % len(self.gpus)]], "gpus_per_node": 1} if self.gpus else \
                {"visible_gpus": (), "gpus_per_node": 0}
            executor.update_parameters(timeout_min=self.timeout_min, **gpu)
            submitted.append(executor.submit(execute, list(jobs), threads, queue, after))
        _follow(submitted, queue, len(jobs), phase)
        _wait(submitted, phase, self.folder)

    def run_sweep(self, pretrain: Sequence[Job], finetune: Sequence[Job], after: Sequence[int | None]) -> None:
        """One queue: the pretrainings, then the fine-tunings, each waiting for ``after[j]`` (an index into
        ``pretrain``) when it needs one."""
        if not pretrain:
            return self.run(finetune, "finetune")
        self.run([*pretrain, *finetune], f"pretrain + finetune ({len(pretrain)} + {len(finetune)})",
                 [None] * len(pretrain) + list(after))


@dataclass
class SlurmOptions:
    """What each SLURM job asks for; None leaves the cluster's default."""

    partition: str | None = None
    timeout_min: int = 24 * 60
    mem_gb: int | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    array_parallelism: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # more sbatch options: account, qos, constraint ...

    def parameters(self) -> dict[str, Any]:
        """submitit AutoExecutor parameters (generic names, slurm_ prefix for the SLURM-only ones)."""
        params = {"timeout_min": self.timeout_min, "gpus_per_node": self.gpus_per_job, "tasks_per_node": 1,
                  "nodes": 1, "mem_gb": self.mem_gb, "cpus_per_task": self.cpus_per_job,
                  "slurm_partition": self.partition, "slurm_array_parallelism": self.array_parallelism,
                  "slurm_additional_parameters": dict(self.extra) or None}
        return {k: v for k, v in params.items() if v is not None}


class SlurmLauncher(PhasedSweep):
    """submitit's AutoExecutor on SLURM: each job is one array task with ``options``' resources."""

    name = "slurm"

    def __init__(self, folder: Path = DEFAULT_JOBS_DIR, options: SlurmOptions | None = None):
        self.folder, self.options = Path(folder), options or SlurmOptions()

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.options.gpus_per_job else "cpu")

    def executor(self, phase: str):
        import submitit

        executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster="slurm")
        executor.update_parameters(name=f"tower-bench-{phase}", **self.options.parameters())
        return executor

    def run(self, jobs: Sequence[Job], phase: str) -> None:
        if not jobs:
            return
        executor = self.executor(phase)
        submitted = executor.map_array(execute, [[job] for job in jobs], [self.options.cpus_per_job] * len(jobs))
        console.print(f"{phase}: {len(jobs)} SLURM array task(s), job {submitted[0].job_id.split('_')[0]}; "
                      f"logs in {self.folder}; waiting")
        _wait(submitted, phase, self.folder)


def make_launcher(name: str, *, gpus: str = "", workers: int | None = None, folder: Path = DEFAULT_JOBS_DIR,
                  slurm: SlurmOptions | None = None, timeout_min: int = 24 * 60, progress: bool = True):
    """The launcher the CLI options name; a wrong combination is one line, before anything starts."""
    if name not in LAUNCHERS:
        raise ConfigError(f"unknown --launcher {name!r}; valid: {', '.join(LAUNCHERS)}")
    gpu_list = parse_gpus(gpus)
    if name == "inline":
        if gpu_list or workers:
            raise ConfigError("--gpus and --workers spread jobs over processes: add --launcher local")
        return InlineLauncher(progress)
    if name == "local":
        return LocalLauncher(folder, gpu_list, workers, timeout_min)
    if gpu_list or workers:
        raise ConfigError("with --launcher slurm, SLURM places the jobs: use --gpus-per-job and --array-parallelism "
                          "instead of --gpus/--workers")
    return SlurmLauncher(folder, slurm)
