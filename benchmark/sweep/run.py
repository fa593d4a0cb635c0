"""``tower-bench run``: pretrain (once per method and budget) -> fine-tune each seed -> store -> leaderboard.

Every step is skipped when its output already exists, so a killed sweep is rerun with the same
command and picks up where it stopped: finished exports and result records are reused, a
pretraining run with a checkpoint resumes.

``plan`` turns a sweep into jobs (what is missing only); a launcher (``benchmark.sweep.launch``:
inline, local submitit workers, SLURM) executes them: pretraining first, then fine-tuning (local
workers start a fine-tuning as soon as the pretraining it needs is done).
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from benchmark.core import registry
from benchmark.core.config import Budget, FinetuneConfig, PretrainConfig
from benchmark.core.names import SUPERVISED
from benchmark.errors import ConfigError, MissingFileError
from benchmark.finetuning import supervised
from benchmark.finetuning.inits import imagenet_weights_reachable
from benchmark.finetuning.protocols import finetune
from benchmark.pretraining.loop import CHECKPOINT, EXPORT, default_out, pretrain, resolve
from benchmark.results.store import ResultStore, hold_claim, key_of
from benchmark.sweep.spec import Outputs, Sweep
from benchmark.tasks.base import DataError, Task
from zoo.io import public_command

console = Console(stderr=True, soft_wrap=True)  # a log line is one line, in a log file too


def command_line() -> str:
    """The command as the user typed it, stamped on every record and board it writes; a path that names this
    machine (absolute, or climbing out of the working folder) by its last name only (``zoo.io.public_path``)."""
    return public_command(shlex.join(["tower-bench", *sys.argv[1:]]))


def make_task(name: str, data_root: Path | None, image_size: int | None, download: bool = False) -> Task:
    """``registry.make_task``; ``download``: fetch missing files (tasks that can: MedMNIST), refused for others."""
    cls = registry.task_class(name)
    if download and not getattr(cls, "downloadable", False):
        raise ConfigError(f"--download: task {name!r} cannot fetch its data; get it from {cls.source}")
    return registry.make_task(name, data_root, image_size, **({"download": True} if download else {}))


def fetch(name: str, data_root: Path | None, image_size: int | None = None) -> None:
    """``--download`` for commands that build their task later: fetch its missing files now (MedMNIST)."""
    make_task(name, data_root, image_size, download=True).load("train")


@dataclass
class ExportJob:
    """A job whose output is a weights folder that fine-tuning starts from: reused once exported. ``task`` is a
    cache for in-process runs and is not pickled; ``own`` says how a worker makes own data again."""

    method: str  # as the board names it: a method, a variant or a control
    cfg: PretrainConfig | FinetuneConfig
    image_size: int | None  # the budget's, to build the task again where the job runs
    task: Task | None = field(default=None, repr=False, compare=False)
    own: tuple[str, dict] | None = None  # own data: how a worker makes the task again (registry.own_spec)

    @property
    def out(self) -> Path:
        raise NotImplementedError

    @property
    def export(self) -> Path:
        return self.out / EXPORT

    def done(self) -> bool:
        return (self.export / "config.json").exists()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "task": None}

    def __str__(self) -> str:
        return f"pretrain {self.method} on {self.cfg.task}"

    def __call__(self, progress: bool = True) -> Path:
        # Two sweeps sharing runs/ that need the same weights: one trains, the other waits for its export
        # (without the claim both trained into one folder, each overwriting the other's checkpoint and export).
        with hold_claim(self.out.with_name(self.out.name + ".lock"), self.done) as todo:
            if not todo:
                console.print(f"[dim]{self.method}: reusing pretrained weights {self.export}[/dim]")
                return self.export
            registry.remake_own(self.own)
            task = self.task or registry.make_task(self.cfg.task, self.cfg.data_root, self.image_size)
            self.train(task, progress)
        return self.export

    def train(self, task: Task, progress: bool) -> None:
        raise NotImplementedError

    def summary(self, export: Path) -> str:
        """One line for the sweep's progress: the export's health check."""
        from zoo.health import describe
        from zoo.hub import load_config

        return f"{self.method} pretrained: {describe(load_config(export).health)}"


class PretrainJob(ExportJob):
    """Pretrain ``method`` on one task; reused when exported, resumed from its checkpoint, else trained.

    ``cfg`` is resolved before the job runs, so its hash (and the export folder) is known when the
    fine-tuning jobs are planned.
    """

    @property
    def out(self) -> Path:
        return default_out(self.cfg)

    def train(self, task: Task, progress: bool) -> None:
        images = task.pretrain_images()
        resume = (self.out / CHECKPOINT).exists()
        console.print(f"[bold]{self.method}[/bold]: {'resuming' if resume else 'pretraining'} on {self.cfg.task} "
                      f"({len(images)} training images) -> {self.out}")
        pretrain(self.cfg.replace(out=str(self.out)), images=images, modality=task.modality, resume=resume,
                 progress=progress)


class SupervisedJob(ExportJob):
    """The positive control (``benchmark.finetuning.supervised``): trained on labels at the pretraining's compute."""

    @property
    def out(self) -> Path:
        return supervised.default_out(self.cfg)

    def train(self, task: Task, progress: bool) -> None:
        console.print(f"[bold]{self.method}[/bold]: training on {task.supervised_note} of {self.cfg.task} -> {self.out}")
        supervised.train_supervised(self.cfg, task, self.out, progress)


def pretrain_job(method: str, task: Task, task_name: str, budget: Budget, data_root: Path | None,
                 device: torch.device | None = None, seed: int = 0) -> PretrainJob:
    """The pretraining of ``method`` (or a variant) on ``task``, resolved for ``device`` (default: CUDA when here).

    ``task`` was made at the budget's image size, so the job rebuilds it at ``task.image_size``."""
    base, hparams = registry.method_spec(method)
    cfg = PretrainConfig.from_budget(budget, task.kind, method=base, hparams=hparams, task=task_name,
                                     data_root=None if data_root is None else str(data_root), seed=seed)
    images = task.pretrain_images()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as pretrain() picks it
    cfg = resolve(cfg, cfg.image_size or int(images.shape[-1]), device, len(images))
    return PretrainJob(method, cfg, task.image_size, task, registry.own_spec(task_name))


def export_job(method: str, task: Task, task_name: str, b: Budget, data_root: Path | None,
               device: torch.device | None = None, seed: int = 0) -> ExportJob:
    """The job whose export ``method`` fine-tunes from: its pretraining, or the ``supervised`` control's training."""
    if method == SUPERVISED:
        return SupervisedJob(method, supervised.supervised_config(b, task, task_name, data_root, seed=seed),
                             task.image_size, task, registry.own_spec(task_name))
    return pretrain_job(method, task, task_name, b, data_root, device, seed)


def method_export(method: str, task: Task, task_name: str, b: Budget, data_root: Path | None) -> Path:
    """``finetune --init <method>``: the export ``run`` made (or would make) of ``method`` on this task and budget."""
    job = export_job(method, task, task_name, b, data_root)
    if not job.done():
        raise MissingFileError(f"--init {method}: no {method} pretraining of {task_name} at budget {b.name} yet "
                               f"(it would be {job.export}); run `tower-bench run --method {method} --task "
                               f"{task_name} --budget {b.name}` or `tower-bench pretrain` first, or pass its folder")
    return job.export


def pretrained_init(method: str, task: Task, task_name: str, budget: Budget, data_root: Path | None,
                    progress: bool) -> tuple[str, str]:
    """(weights folder, pretraining hash) for ``method`` (or a variant) on ``task``: reused, resumed or trained."""
    job = pretrain_job(method, task, task_name, budget, data_root)
    return str(job(progress)), job.cfg.hash()


def finetune_config(sweep: Sweep, task: Task, task_name: str, init: str, seed: int, label_fraction: float,
                    data_root: Path | None, pretrained: tuple[str, int] | None = None) -> FinetuneConfig:
    """One fine-tuning of ``sweep``; ``pretrained``: (hash, seed) of the pretraining ``init`` is the export of."""
    extra = {} if pretrained is None else {"pretrain_hash": pretrained[0], "pretrain_seed": pretrained[1]}
    return FinetuneConfig.from_budget(
        sweep.budget, task, task_name, init=init, seed=seed, label_fraction=label_fraction, data_root=data_root,
        imagenet_weights=sweep.imagenet_weights if init == "imagenet" else None, extra=extra,
        protocol=sweep.protocol)


def record_key(cfg: FinetuneConfig, name: str) -> dict:
    return key_of({"task": cfg.task, "init": name, "seed": cfg.seed, "label_fraction": cfg.label_fraction,
                   "budget": cfg.budget, "config_hash": cfg.hash(), "protocol": cfg.protocol})


def finetune_stored(store: ResultStore, cfg: FinetuneConfig, task: Task | None, name: str, progress: bool,
                    command: str | None = None) -> dict:
    """The record of ``cfg`` stored under init ``name``: read from the store, or fine-tuned and stored with the
    ``command`` that made it (default: this process's), which a model card lists."""
    key = record_key(cfg, name)
    with store.claim(key) as todo:  # another run computing the same key: wait for its record
        if not todo:
            return store.get(key)
        record = finetune(cfg, task, progress=progress)
        record["init"] = name
        record["command"] = command or command_line()
        store.put(record)
    trained = f"{record['steps_run']} steps, best at {record['best_step']}, " if "steps_run" in record else ""
    console.print(f"{cfg.task} {name} {cfg.protocol} seed {cfg.seed} fraction {cfg.label_fraction}: "
                  f"{record['metric']} {record['value']:.2f} ({trained}{record['wall_time_s']:.0f} s)")
    return record


@dataclass
class FinetuneJob:
    """Fine-tune one (init, seed, label fraction) and store its record, unless the store has it."""

    name: str  # the init as the leaderboard names it
    cfg: FinetuneConfig
    store: str
    task: Task | None = field(default=None, repr=False, compare=False)  # in-process cache, not pickled
    command: str | None = None  # the sweep's command line, stored in the record (workers have their own argv)
    own: tuple[str, dict] | None = None  # own data: how a worker makes the task again (registry.own_spec)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "task": None}

    def __str__(self) -> str:
        return f"fine-tune {self.cfg.task} {self.name} seed {self.cfg.seed} fraction {self.cfg.label_fraction}"

    def __call__(self, progress: bool = True) -> dict:
        registry.remake_own(self.own)
        return finetune_stored(ResultStore(self.store), self.cfg, self.task, self.name, progress, self.command)

    def summary(self, record: dict) -> str:
        """One line for the sweep's progress: init, seed, score, the selected step and whether the run converged."""
        trained = (f", best step {record['best_step']} of {record['steps_run']}"
                   f"{'' if record.get('converged', True) else ', NOT converged'}" if "steps_run" in record else "")
        health = record.get("pretrain_health")
        return (f"{self.name} seed {self.cfg.seed}"
                f"{'' if self.cfg.label_fraction == 1 else f' fraction {self.cfg.label_fraction:g}'}: "
                f"{record['metric']} {record['value']:.2f}{trained}"
                f"{'' if not health else ', pretraining ' + ('healthy' if health.get('passed') else 'UNHEALTHY')}")


@dataclass
class Plan:
    """What a sweep still has to do; jobs whose output exists are left out."""

    pretrain: list[PretrainJob] = field(default_factory=list)
    finetune: list[FinetuneJob] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # tasks with data: their leaderboards are refreshed
    stored: int = 0  # fine-tuning records already in the store
    after: list[int | None] = field(default_factory=list)  # per fine-tuning job: the pretraining it waits for

    def order(self) -> None:
        """Fine-tuning jobs that wait for no pretraining of this plan first, then by the one they wait for,
        so workers that finish pretraining early have work that is ready."""
        exports = {str(job.export): i for i, job in enumerate(self.pretrain)}
        waits = [exports.get(job.cfg.init) for job in self.finetune]
        order = sorted(range(len(self.finetune)), key=lambda j: -1 if waits[j] is None else waits[j])
        self.finetune = [self.finetune[j] for j in order]
        self.after = [waits[j] for j in order]


def plan(sweep: Sweep, store_root: Path, device: torch.device | None = None) -> Plan:
    """The jobs of ``sweep`` still to run, pretraining resolved for ``device`` (where the jobs will run; default:
    here). With several tasks, a task without data is skipped with a note, and ``download`` applies to those that
    can fetch their data."""
    store = ResultStore(store_root)
    b, several = sweep.budget, len(sweep.tasks) > 1
    out = Plan()
    for task_name in map(registry.resolve_task, sweep.tasks):  # own data given as a path: its task name
        root = sweep.task_root(task_name)
        fetch = sweep.download and (not several or getattr(registry.task_class(task_name), "downloadable", False))
        task = make_task(task_name, root, b.image_size, fetch)
        root = registry.own_manifest(task_name) or root  # own data: rebuilt from its manifest where jobs run
        try:
            task.load("train")
        except DataError as err:
            if not several:
                raise
            console.print(f"[yellow]skipping {task_name}: {err}[/yellow]")
            continue
        out.tasks.append(task_name)
        for method in sweep.methods:
            if method == "imagenet" and sweep.imagenet_weights is None and not imagenet_weights_reachable(b.encoder):
                if len(sweep.methods) == 1:
                    raise MissingFileError(f"--init imagenet: timm's ImageNet weights for {b.encoder} are not in the "
                                           "Hugging Face cache and the Hub is unreachable; pass --imagenet-weights FILE")
                console.print(f"[yellow]skipping imagenet init: timm's weights for {b.encoder} are not cached and the "
                              "Hub is unreachable (pass --imagenet-weights FILE.safetensors)[/yellow]")
                continue
            exported = method in registry.METHODS or method in registry.VARIANTS or method == SUPERVISED
            for k in range(sweep.pretrain_seeds):
                init, pretrained = method, None
                if exported:
                    job = export_job(method, task, task_name, b, root, device, seed=k)
                    init, pretrained = str(job.export), (job.cfg.hash(), k)
                    if not job.done():
                        out.pretrain.append(job)
                for fraction in sweep.label_fractions:
                    for seed in range(k * sweep.seeds, (k + 1) * sweep.seeds):
                        cfg = finetune_config(sweep, task, task_name, init, seed, fraction, root, pretrained)
                        if store.has(record_key(cfg, method)):
                            out.stored += 1
                        else:
                            out.finetune.append(FinetuneJob(method, cfg, str(store_root), task,
                                                            own=registry.own_spec(task_name)))
    out.order()
    return out


def run(sweep: Sweep, outputs: Outputs, reference: str = "tower", launcher=None) -> list[Path]:
    """The whole benchmark; returns the leaderboard files written (none when ``outputs.boards`` is None), one per
    task and label fraction (named ``<task>-<budget>[-<pct>pct][-<protocol>]``), p-values against ``reference``.

    ``launcher`` (``benchmark.sweep.launch``) executes the jobs; default: inline, in this process.
    """
    from benchmark.results.leaderboard import Board, refresh_leaderboard
    from benchmark.results.report.terminal import show
    from benchmark.sweep.launch import InlineLauncher

    launcher = launcher or InlineLauncher(outputs.progress)
    todo = plan(sweep, outputs.store, launcher.device)
    console.print(f"{launcher.name}: {len(todo.pretrain)} pretraining and {len(todo.finetune)} fine-tuning job(s) "
                  f"to run, {todo.stored} result(s) already stored")
    for job in todo.finetune:
        job.command = outputs.command
    launcher.run_sweep(todo.pretrain, todo.finetune, todo.after)
    written: list[Path] = []
    budget = sweep.budget.name
    for task_name in todo.tasks if outputs.boards is not None else ():
        for fraction in sweep.label_fractions:
            board = refresh_leaderboard(Board(task_name, budget, fraction, sweep.protocol), outputs.store,
                                        outputs.boards, reference=reference, command=outputs.command)
            show(board)
            written += board.paths
    return written
