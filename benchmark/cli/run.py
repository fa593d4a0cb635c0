"""``tower-bench run``: the whole sweep, pretrain -> fine-tune every seed -> store -> leaderboard."""
from __future__ import annotations

from pathlib import Path

import typer

from benchmark.cli.options import (
    DEFAULT_BOARDS,
    DEFAULT_BUDGET,
    DEFAULT_STORE,
    ArrayParallelism,
    Boards,
    Budget,
    CpusPerJob,
    DataRoot,
    Download,
    GpusPerJob,
    ImagenetWeights,
    ImageSize,
    JobsDir,
    LabelFractions,
    Launcher,
    MemGb,
    Methods,
    Modality,
    NumClasses,
    Partition,
    PretrainSeeds,
    Progress,
    Protocol,
    Reference,
    Seeds,
    SlurmOption,
    SplitSeed,
    Store,
    SweepFile,
    Tasks,
    TimeoutMin,
    WorkerGpus,
    Workers,
    resolve_tasks,
)
from benchmark.errors import ConfigError, UserError


def read_sweep(path: Path, params: dict) -> dict:
    """``--config sweep.toml``: the same fields as the options (``method = "tower,random"`` or a list, ``seeds = 5``,
    ``label-fraction = [1.0, 0.25]`` ...); an unknown key is one line naming the file and the closest option."""
    import tomllib

    from benchmark.core.names import did_you_mean

    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path}: not TOML ({err})") from None
    out = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in params or name == "config":
            options = sorted(k.replace("_", "-") for k in params if k != "config")
            raise UserError(f"--config {path}: unknown field {key!r}{did_you_mean(key, options)}; fields: "
                            f"{', '.join(options)}")
        if isinstance(value, list) and not isinstance(params[name], list):
            value = ",".join(map(str, value))  # method = ["tower", "random"]
        if isinstance(params[name], Path) or name in ("data_root", "store", "out", "jobs_dir", "imagenet_weights"):
            value = Path(value)
        out[name] = [float(v) for v in value] if name == "label_fraction" else value
    return out


def run_command(
    ctx: typer.Context,
    method: Methods = "tower",
    task: Tasks = "synth-fundus",
    seeds: Seeds = 3,
    pretrain_seeds: PretrainSeeds = 1,
    budget: Budget = DEFAULT_BUDGET,
    data_root: DataRoot = None,
    label_fraction: LabelFractions = [1.0],
    store: Store = DEFAULT_STORE,
    out: Boards = DEFAULT_BOARDS,
    reference: Reference = "tower",
    imagenet_weights: ImagenetWeights = None,
    progress: Progress = True,
    launcher: Launcher = "inline",
    gpus: WorkerGpus = "",
    workers: Workers = None,
    jobs_dir: JobsDir = Path("runs/submitit"),
    timeout_min: TimeoutMin = 24 * 60,
    partition: Partition = None,
    mem_gb: MemGb = None,
    gpus_per_job: GpusPerJob = 1,
    cpus_per_job: CpusPerJob = None,
    array_parallelism: ArrayParallelism = None,
    slurm_option: SlurmOption = [],
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    protocol: Protocol = "finetune",
    download: Download = False,
    image_size: ImageSize = None,
    config: SweepFile = None,
) -> None:
    """Pretrain -> fine-tune every seed -> store -> leaderboard; a rerun skips what is done."""
    if config is not None:  # the file's fields, except options given on the command line
        def given(name: str) -> bool:  # by name: typer may carry its own copy of click's enum
            source = ctx.get_parameter_source(name)
            return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


        fields = {k: v for k, v in read_sweep(config, ctx.params).items() if not given(k)}
        return run_command(ctx, **{**ctx.params, **fields, "config": None})
    from benchmark.sweep.spec import Outputs, Sweep

    # every name first, before torch is imported: a typo answers in a second with what was meant
    sweep = Sweep.resolve(method, resolve_tasks(task, modality, num_classes, split_seed, image_size), budget,
                          image_size=image_size, label_fractions=label_fraction, data_root=data_root,
                          imagenet_weights=imagenet_weights, seeds=seeds, pretrain_seeds=pretrain_seeds,
                          protocol=protocol, download=download)
    from benchmark.sweep.launch import JobsFailedError, SlurmOptions, make_launcher
    from benchmark.sweep.run import command_line, console, run

    extra = dict(o.split("=", 1) for o in slurm_option if "=" in o)
    if len(extra) != len(slurm_option):
        raise ConfigError(f"--slurm-option expects KEY=VALUE, got {[o for o in slurm_option if '=' not in o]}")
    slurm = SlurmOptions(partition, timeout_min, mem_gb, gpus_per_job, cpus_per_job, array_parallelism, extra)
    chosen = make_launcher(launcher, gpus=gpus, workers=workers, folder=jobs_dir, slurm=slurm,
                           timeout_min=timeout_min, progress=progress)
    try:
        paths = run(sweep, Outputs(store, out, command_line(), progress), reference, chosen)
    except JobsFailedError as err:  # one line; the logs hold the tracebacks
        raise UserError(str(err)) from err
    if not paths:
        console.print("no leaderboard written (no task had data)")
