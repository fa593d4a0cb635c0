"""Sweep launchers: submitit's LocalExecutor on CPU for real; the SLURM path up to the submission."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import submitit
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.results.store import ResultStore
from benchmark.sweep.launch import (
    InlineLauncher,
    JobsFailedError,
    LocalLauncher,
    SlurmLauncher,
    SlurmOptions,
    execute,
    make_launcher,
    parse_gpus,
)
from benchmark.sweep.run import ExportJob, FinetuneJob, PretrainJob, plan, run
from benchmark.sweep.spec import Outputs, Sweep
from tests.benchmark.test_pretrain import REPO

SWEEP = Sweep.resolve(["tower", "random"], "synth-fundus", "smoke", seeds=2)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Exports go to runs/pretrain under the cwd; workers import the repo from PYTHONPATH."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def _forbid_submissions(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a rerun submitted a job")

    for cls in (submitit.LocalExecutor, submitit.AutoExecutor):
        monkeypatch.setattr(cls, "submit", refuse)
        monkeypatch.setattr(cls, "map_array", refuse)


@pytest.mark.slow
def test_local_sweep_two_cpu_workers_then_a_rerun_submits_nothing(workdir, monkeypatch):
    store, boards, jobs_dir = workdir / "store", workdir / "boards", workdir / "jobs"
    written = run(SWEEP, Outputs(store, boards, "test"), launcher=LocalLauncher(jobs_dir, gpus=[], workers=2, timeout_min=10))

    records = ResultStore(store).records()
    assert sorted((r["init"], r["seed"]) for r in records) == [("random", 0), ("random", 1), ("tower", 0), ("tower", 1)]
    assert all(r["budget"] == "smoke" and r["task"] == "synth-fundus" for r in records)
    tower_hash = {r["config"]["extra"]["pretrain_hash"] for r in records if r["init"] == "tower"}
    assert len(tower_hash) == 1
    exports = list(Path("runs/pretrain").glob(f"tower-synth-fundus-{tower_hash.pop()}/export/config.json"))
    assert len(exports) == 1, "the pretraining job did not export where the fine-tuning jobs were planned to look"
    # one queue for the pretraining and the 4 fine-tuning runs, shared by 2 worker processes
    job_logs = sorted(jobs_dir.glob("*/*_result.pkl"))
    assert len(job_logs) == 2, [p.name for p in job_logs]
    assert len({r["config"]["seed"] for r in records}) == 2
    assert any(p.suffix == ".md" for p in written)
    assert "random" in (boards / "synth-fundus-smoke.md").read_text()

    before = {p: p.stat().st_mtime_ns for p in store.rglob("*.json")}
    _forbid_submissions(monkeypatch)
    todo = plan(SWEEP, store, LocalLauncher().device)
    assert (todo.pretrain, todo.finetune, todo.stored) == ([], [], 4)
    run(SWEEP, Outputs(store, boards, "test"), launcher=LocalLauncher(jobs_dir, gpus=[], workers=2))
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*.json")} == before


def test_local_workers_get_one_gpu_each_and_draw_from_one_queue(monkeypatch, tmp_path):
    """Without GPUs here: capture what each worker would be started with."""
    calls = []

    class Done:
        job_id = "0"
        paths = None  # a real job's log files; none here

        def done(self):
            return True

        def result(self):
            return []

    def submit(self, fn, jobs, threads, queue, after=None):
        calls.append((dict(self.parameters), jobs, threads, queue))
        return Done()

    monkeypatch.setattr(submitit.LocalExecutor, "submit", submit)
    launcher = make_launcher("local", gpus="2,3", folder=tmp_path)
    assert launcher.device.type == "cuda"
    launcher.run(list("abcde"), "finetune")
    assert [c[0]["visible_gpus"] for c in calls] == [[2], [3]]
    assert all(c[0]["gpus_per_node"] == 1 for c in calls)
    assert [c[1] for c in calls] == [list("abcde")] * 2  # every worker walks the list, taking what is unclaimed
    assert calls[0][3] == calls[1][3] and calls[0][3].is_dir() and not any(calls[0][3].iterdir())
    calls.clear()
    make_launcher("local", workers=3, folder=tmp_path).run(list("ab"), "finetune")
    assert [(c[0]["visible_gpus"], c[0]["gpus_per_node"], c[1]) for c in calls] == [((), 0, ["a", "b"])] * 2
    assert calls[0][2] == max(1, (os.cpu_count() or 1) // 2)


def test_slurm_options_reach_submitit_and_sbatch(monkeypatch, workdir):
    """``--launcher slurm`` builds the AutoExecutor with the CLI's resources; the array is captured, not sent."""
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    arrays = []

    class Inline:
        """Stands in for a SLURM array task: runs its job here when its result is asked for."""

        def __init__(self, args):
            self.args, self.job_id = args, f"42_{len(arrays)}"

        def result(self):
            return execute(*self.args)

    def map_array(self, fn, jobs, threads):
        assert fn is execute
        arrays.append((self, jobs, threads))
        return [Inline(args) for args in zip(jobs, threads)]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    result = CliRunner().invoke(app, [
        "run", "--method", "random", "--seeds", "1", "--budget", "smoke", "--store", "store", "--out", "boards",
        "--no-progress", "--launcher", "slurm", "--jobs-dir", "jobs", "--partition", "gpu", "--timeout-min", "120",
        "--mem-gb", "32", "--gpus-per-job", "1", "--cpus-per-job", "8", "--array-parallelism", "4",
        "--slurm-option", "account=abc"])
    assert result.exit_code == 0, f"{result.output[-2000:]}{result.exception!r}"
    assert len(arrays) == 1, "random init needs no pretraining: one array, of fine-tuning jobs"
    executor, jobs, threads = arrays[0]
    assert len(jobs) == 1 and isinstance(jobs[0][0], FinetuneJob) and threads == [8]
    params = executor._executor.parameters
    assert params["partition"] == "gpu" and params["array_parallelism"] == 4 and params["job_name"] == "tower-bench-finetune"
    assert params["additional_parameters"] == {"account": "abc"}
    sbatch = executor._executor._make_submission_file_text("python -m submitit.core._submit jobs", "uid")
    for line in ("--partition=gpu", "--time=120", "--mem=32GB", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--account=abc", "--ntasks-per-node=1", "--nodes=1"):
        assert f"#SBATCH {line}\n" in sbatch, line
    assert len(ResultStore(workdir / "store").records()) == 1


def test_slurm_plans_pretraining_for_the_jobs_gpus(workdir):
    """The login node has no GPU, the jobs do: exports are named by the config the GPU jobs will use."""
    one = Sweep.resolve("tower", "synth-fundus", "smoke", seeds=1)
    gpu = plan(one, workdir / "s", SlurmLauncher(options=SlurmOptions(gpus_per_job=1)).device)
    cpu = plan(one, workdir / "s", SlurmLauncher(options=SlurmOptions(gpus_per_job=0)).device)
    assert gpu.pretrain[0].cfg.bf16 and not cpu.pretrain[0].cfg.bf16
    assert gpu.finetune[0].cfg.init == str(gpu.pretrain[0].export) != cpu.finetune[0].cfg.init


def test_jobs_pickle_without_their_task_cache(workdir):
    import pickle

    todo = plan(Sweep.resolve("tower", "synth-fundus", "smoke", seeds=1), workdir / "s")
    job = todo.pretrain[0]
    assert isinstance(job, PretrainJob) and job.task is not None
    copy = pickle.loads(pickle.dumps(job))
    assert copy.task is None and copy.cfg == job.cfg and copy.export == job.export
    assert str(todo.finetune[0]) == "fine-tune synth-fundus tower seed 0 fraction 1.0"


def test_workers_sharing_a_queue_run_every_job_exactly_once(tmp_path):
    """Two workers over the same list: the one that is free takes the next job, none runs twice. Job 0 holds its
    worker until every other job has ended (an event, not a sleep), so the other worker must take them all."""
    import threading

    ran: list[tuple[str, int]] = []
    rest_done = threading.Event()

    class Job:
        def __init__(self, i):
            self.i = i

        def __call__(self, progress):
            ran.append((threading.current_thread().name, self.i))
            if self.i == 0:
                assert rest_done.wait(timeout=60), "the other worker never took the rest"
            elif {i for _, i in ran} >= set(range(1, 8)):
                rest_done.set()

    jobs = [Job(i) for i in range(8)]
    failures: list[str] = []
    workers = [threading.Thread(target=lambda: failures.extend(execute(jobs, None, tmp_path)), name=f"w{w}")
               for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=90)
    assert failures == [] and sorted(i for _, i in ran) == list(range(8))
    long_worker = next(name for name, i in ran if i == 0)
    assert [i for name, i in ran if name == long_worker] == [0]
    assert execute(jobs, None, tmp_path) == [] and len(ran) == 8  # all claimed: a third worker finds nothing


class _Gated:
    """A job that logs its start and end (``log``: shared by the worker threads) and, with ``until``, holds its
    worker until those jobs have ended: orderings are forced by events, never by sleeping."""

    def __init__(self, name, log, ended, until=(), fail=False):
        self.name, self.log, self.ended, self.until, self.fail = name, log, ended, until, fail

    def __str__(self):
        return self.name

    def __call__(self, progress):
        self.log.append(("start", self.name))
        try:
            for other in self.until:
                assert self.ended[other].wait(timeout=60), f"{self.name} waited for {other} in vain"
            if self.fail:
                raise RuntimeError("diverged")
        finally:
            self.log.append(("end", self.name))
            self.ended[self.name].set()


def _gated(log, names, until=None, fail=()):
    import threading

    ended = {n: threading.Event() for n in names}
    return [_Gated(n, log, ended, (until or {}).get(n, ()), n in fail) for n in names]


def _two_workers(jobs, after, queue):
    import threading

    failures = []
    workers = [threading.Thread(target=lambda: failures.extend(execute(jobs, None, queue, after))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=90)
    assert not any(w.is_alive() for w in workers), "a worker still waits"
    return failures


def test_fine_tuning_waits_only_for_its_own_pretraining(tmp_path):
    """Two workers, pretrainings P0 and P1: P1 cannot end before random init and P0's fine-tuning have ended, so
    the sweep finishes only if they run while P1 still pretrains; P1's fine-tuning starts after P1 ended."""
    log: list[tuple[str, str]] = []
    jobs = _gated(log, ["P0", "P1", "random", "ft-P0", "ft-P1"], until={"P1": ["random", "ft-P0"]})
    assert _two_workers(jobs, [None, None, None, 0, 1], tmp_path) == []
    order = log.index
    assert order(("start", "ft-P0")) > order(("end", "P0")) and order(("start", "ft-P1")) > order(("end", "P1"))
    assert order(("end", "random")) < order(("end", "P1")) and order(("end", "ft-P0")) < order(("end", "P1"))


def test_a_failed_pretraining_skips_its_fine_tuning_and_a_dead_worker_blocks_nobody(tmp_path):
    log: list[tuple[str, str]] = []
    jobs = _gated(log, ["P0", "random", "ft-P0"], fail={"P0"})
    (tmp_path / "q1").mkdir()
    failures = _two_workers(jobs, [None, None, 0], tmp_path / "q1")
    assert sorted(failures) == ["P0: RuntimeError: diverged", "ft-P0: skipped: P0 failed"]
    assert sorted(name for kind, name in log if kind == "start") == ["P0", "random"]  # ft-P0 never started
    # a worker killed while pretraining leaves a claim with its pid and no end: the waiter goes on
    import subprocess
    import sys

    queue = tmp_path / "q2"
    queue.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (queue / "job-0").write_text(dead.stdout.strip())
    assert execute(_gated(log, ["P0", "ft-P0"]), None, queue, [None, 0]) == ["ft-P0: skipped: P0 failed"]


def test_plan_orders_fine_tuning_by_the_pretraining_it_waits_for(workdir):
    todo = plan(SWEEP, workdir / "store", LocalLauncher().device)
    assert [j.name for j in todo.finetune] == ["random", "random", "tower", "tower"] and todo.after == [None, None, 0, 0]
    assert todo.finetune[2].cfg.init == str(todo.pretrain[0].export)


def test_execute_runs_the_rest_after_a_failure_and_the_launcher_names_it(tmp_path):
    ran = []

    class Job:
        def __init__(self, name, fail=False):
            self.name, self.fail = name, fail

        def __str__(self):
            return self.name

        def __call__(self, progress):
            ran.append(self.name)
            if self.fail:
                raise FloatingPointError("loss is nan")

    assert execute([Job("a", fail=True), Job("b")]) == ["a: FloatingPointError: loss is nan"]
    assert ran == ["a", "b"]

    class Result:
        job_id, paths = "7", None

        def result(self):
            return ["a: FloatingPointError: loss is nan"]

    from benchmark.sweep.launch import _wait

    with pytest.raises(JobsFailedError, match=r"1 finetune job\(s\) failed .*first: a: FloatingPointError"):
        _wait([Result()], "finetune", tmp_path)


@pytest.mark.parametrize("args, message", [
    (("inline",), None),
    (("inline", "0,1"), "add --launcher local"),
    (("slurm", "0"), "--gpus-per-job"),
    (("local", "0,x"), "comma-separated GPU indices"),
    (("local", "1,1"), "once"),
    (("pbs",), "unknown --launcher 'pbs'"),
])
def test_launcher_choices_fail_in_one_line(args, message):
    if message is None:
        assert isinstance(make_launcher(*args[:1]), InlineLauncher)
        return
    with pytest.raises(ValueError, match=message):
        make_launcher(args[0], gpus=args[1] if len(args) > 1 else "")


def test_parse_gpus():
    assert parse_gpus("0,1, 2,3") == [0, 1, 2, 3] and parse_gpus("") == []


def test_weights_another_run_is_training_are_waited_for_not_trained_twice(tmp_path):
    """Two sweeps sharing runs/ need one pretraining: the second waits on the first's claim and reuses its export
    (before the claim, both trained into one folder). Events order the two threads; nothing depends on timing."""
    a_training, b_waiting = threading.Event(), threading.Event()
    trained = []

    @dataclass
    class Weights(ExportJob):
        @property
        def out(self) -> Path:
            return tmp_path / "pretrain" / "w"

        def done(self) -> bool:
            if threading.current_thread().name == "b":
                b_waiting.set()  # b polls while a holds the claim
            return super().done()

        def train(self, task, progress: bool) -> None:
            trained.append(threading.current_thread().name)
            a_training.set()
            assert b_waiting.wait(30)
            self.export.mkdir(parents=True)
            (self.export / "config.json").write_text("{}")

    results = {}

    def call(name):
        results[name] = Weights("m", None, None, task=object())(progress=False)

    a = threading.Thread(target=call, args=("a",), name="a")
    a.start()
    assert a_training.wait(30)
    b = threading.Thread(target=call, args=("b",), name="b")
    b.start()
    a.join(60)
    b.join(60)
    assert trained == ["a"] and results == {"a": tmp_path / "pretrain" / "w" / "export", "b": results["a"]}
    assert not (tmp_path / "pretrain" / "w.lock").exists()
