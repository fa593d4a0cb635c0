"""Every ``tower-bench`` option, declared once as an ``Annotated`` type that commands take as parameters.

Adding an option to a command is one line here (when the option is new) and one parameter there; a
default lives in the command's signature, the shared ones are named below so that every command
agrees. Nothing here imports torch, so ``tower-bench --help`` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from benchmark.core.config import BUDGET_HELP
from benchmark.errors import ConfigError

DEFAULT_BUDGET = "cpu"
DEFAULT_STORE = Path("runs/results")
# user runs write here; the committed reference boards under leaderboards/ change only with an explicit --out
DEFAULT_BOARDS = Path("runs/leaderboards")


def split_list(spec: str, cast: Callable[[str], Any] = str) -> list:
    """``"a,b , c"`` -> ``["a", "b", "c"]`` (cast each); an item the cast refuses is the user's typo: one line."""
    try:
        return [cast(s.strip()) for s in spec.split(",") if s.strip()]
    except ValueError as err:
        raise ConfigError(f"{spec!r} is not a comma-separated list of {cast.__name__} values ({err})") from None


def _print_version(value: bool) -> None:
    if value:
        from zoo.io import package_version

        typer.echo(f"tower-bench {package_version()}")
        raise typer.Exit()


Version = Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                       help="print tower-bench's version and exit")]
Debug = Annotated[bool, typer.Option(
    "--debug", help="show the traceback of user errors too (bad options, names or files), not only of bugs")]

# ----------------------------------------------------------------------------- shared
Budget = Annotated[str, typer.Option("--budget", help=BUDGET_HELP)]
Seeds = Annotated[int, typer.Option("--seeds", min=1, help="fine-tuning seeds per init (the paper: 10)")]
PretrainSeeds = Annotated[int, typer.Option(
    "--pretrain-seeds", min=1,
    help="pretraining runs per method; each is fine-tuned with --seeds seeds and rows pool them (default 1: the "
         "std is fine-tuning variance only)")]
PairedSeeds = Annotated[int, typer.Option("--seeds", min=2, help="fine-tuning seeds per init (>= 2 for p-values)")]
Seed = Annotated[int, typer.Option("--seed", help="random seed (initialisation, batch order, views)")]
Task = Annotated[str, typer.Option("--task", help="a task (tower-bench tasks), a CSV manifest or a data folder")]
Method = Annotated[str, typer.Option("--method", help="pretraining method (tower-bench methods)")]
Store = Annotated[Path, typer.Option("--store", help="results store (one JSON file per record)")]
Boards = Annotated[Path, typer.Option(
    "--out", help="folder the board files are written to (default runs/leaderboards; the committed reference boards: "
                  "--out leaderboards)")]
DataRoot = Annotated[Optional[Path], typer.Option(
    "--data-root", help="the task's data folder (with several tasks: a parent of one folder per task)")]
ImagenetWeights = Annotated[Optional[Path], typer.Option(
    "--imagenet-weights", help="timm ImageNet weights (.safetensors) for offline machines")]
Protocol = Annotated[str, typer.Option(
    "--protocol", help="finetune (the paper: everything trained) | linear (frozen encoder, linear head; segmentation: "
                       "decoder and head) | knn (frozen encoder, k=20 cosine kNN; classification only)")]
Download = Annotated[bool, typer.Option(
    "--download/--no-download", help="fetch missing MedMNIST files through the medmnist package into --data-root")]
LabelFraction = Annotated[float, typer.Option("--label-fraction", help="fraction of training labels, in (0, 1]")]
LabelFractions = Annotated[list[float], typer.Option(
    "--label-fraction", help="fraction of training labels, in (0, 1]; repeat for several")]
Reference = Annotated[str, typer.Option("--reference", help="the init that significance marks compare against")]
SweepFile = Annotated[Optional[Path], typer.Option(
    "--config", help="a TOML file with the options' fields (method, task, seeds, budget, label-fraction ...); "
                     "options given on the command line win")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="show progress bars")]
ImageSize = Annotated[Optional[int], typer.Option(
    "--image-size", help="input side length (default: the budget's or the task's); the budget is then named "
                         "<budget>-<N>px (e.g. cpu-28px), so boards of other sizes never pool")]
BatchSize = Annotated[Optional[int], typer.Option(
    "--batch-size", help="batch size (default: the budget's); pretraining: the GLOBAL batch, split over processes")]
Lr = Annotated[Optional[float], typer.Option(
    "--lr", help="peak learning rate, Adam + cosine decay (default: the budget's)")]
Epochs = Annotated[Optional[int], typer.Option(
    "--epochs", help="epochs (default: the budget's); fine-tuning: the most before early stopping")]
Inits = Annotated[Optional[str], typer.Option(
    "--inits", help="comma-separated inits and variants (default: the paper's for this analysis)")]

# ----------------------------------------------------------------------------- own data (--task PATH)
Modality = Annotated[Optional[str], typer.Option(
    "--modality", help="own data: fundus | xray | ct | ultrasound | ... (picks TOWER's mask; default generic: blocks)")]
NumClasses = Annotated[Optional[int], typer.Option(
    "--num-classes", min=2, help="own data: classes when the data does not show them all (masks: incl. background)")]
SplitSeed = Annotated[Optional[int], typer.Option(
    "--split-seed", help="own data without a split: the seed of its 70/10/20 train/val/test cut")]


def resolve_tasks(spec: str, modality: str | None, num_classes: int | None, split_seed: int | None,
                  image_size: int | None = None) -> str:
    """``--task`` with own data (a CSV manifest or a folder) turned into task names; registered names as they are."""
    from benchmark.core import registry

    if spec == "all":
        return spec
    return ",".join(registry.resolve_task(t, modality=modality, num_classes=num_classes, split_seed=split_seed,
                                          image_size=image_size) for t in split_list(spec))


# ----------------------------------------------------------------------------- run
Methods = Annotated[str, typer.Option("--method", help="a method, an ablation variant (gen-translation, gen-mask, "
                                      "gen-both, con-both), a comma-separated list, random, imagenet, or all")]
Tasks = Annotated[str, typer.Option(
    "--task", help="a task, a CSV manifest or a data folder, a comma-separated list, or all")]
Launcher = Annotated[str, typer.Option(
    "--launcher",
    help="inline (this process) | local (submitit workers on this machine) | slurm (submitit array jobs)")]
WorkerGpus = Annotated[str, typer.Option("--gpus", help="local: GPU indices, one worker per GPU, e.g. 0,1,2,3")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", min=1, help="local: worker processes (default: one per GPU; 1 on CPU)")]
JobsDir = Annotated[Path, typer.Option("--jobs-dir", help="local/slurm: submitit's job logs and pickles")]
TimeoutMin = Annotated[int, typer.Option("--timeout-min", min=1, help="local/slurm: time limit of each job, minutes")]
Partition = Annotated[Optional[str], typer.Option("--partition", help="slurm: partition")]
MemGb = Annotated[Optional[int], typer.Option("--mem-gb", min=1, help="slurm: memory per job, GB")]
GpusPerJob = Annotated[int, typer.Option("--gpus-per-job", min=0, help="slurm: GPUs per job (0: CPU jobs)")]
CpusPerJob = Annotated[Optional[int], typer.Option("--cpus-per-job", min=1, help="slurm: CPU cores per job")]
ArrayParallelism = Annotated[Optional[int], typer.Option(
    "--array-parallelism", min=1, help="slurm: most array tasks running at once")]
SlurmOption = Annotated[list[str], typer.Option(
    "--slurm-option", help="slurm: another sbatch option KEY=VALUE, e.g. account=abc (repeatable)")]

# ----------------------------------------------------------------------------- pretrain
PretrainTask = Annotated[str, typer.Option(
    "--task", help="task whose training split is pretrained on (tower-bench tasks, a CSV manifest or a data folder)")]
Encoder = Annotated[Optional[str], typer.Option("--encoder", help="timm encoder (default: the budget's)")]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", help="stop after this many steps")]
Hparams = Annotated[list[str], typer.Option("--hparam", help="method hyper-parameter KEY=VALUE (repeatable)")]
RunDir = Annotated[Optional[str], typer.Option(
    "--out", help="run folder (default runs/pretrain/<method>-<task>-<hash>)")]
Resume = Annotated[bool, typer.Option("--resume/--no-resume", help="continue from OUT/checkpoint.pt")]
Deterministic = Annotated[bool, typer.Option(
    "--deterministic/--no-deterministic", help="deterministic algorithms (slower on CUDA)")]
CheckpointEvery = Annotated[Optional[int], typer.Option("--checkpoint-every", help="steps between checkpoints")]
Bf16 = Annotated[Optional[bool], typer.Option("--bf16/--no-bf16", help="bf16 autocast (default: on CUDA)")]
Compile = Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the U-Net")]
Gpus = Annotated[int, typer.Option("--gpus", help="processes on this machine (one per GPU; gloo processes on CPU)")]

# ----------------------------------------------------------------------------- finetune
Init = Annotated[str, typer.Option(
    "--init", help="random | random-aa | imagenet | a method name (its export from `run` on this task and budget) | a "
                   "weights folder | a Hub id org/name")]
InitDecoder = Annotated[Optional[str], typer.Option(
    "--init-decoder", help="segmentation: take the decoder from another init")]

# ----------------------------------------------------------------------------- leaderboard
BoardTask = Annotated[str, typer.Argument(
    help="the task whose leaderboard is built (tower-bench tasks, a CSV manifest or a data folder)")]
Holm = Annotated[bool, typer.Option(
    "--holm/--no-holm", help="stars from Holm-adjusted p-values over the rows (both p columns are always shown)")]
BudgetFilter = Annotated[Optional[str], typer.Option(
    "--budget", help="only records of this budget (default: every budget in the store)")]
BoardName = Annotated[Optional[str], typer.Option(
    "--name", help="file name of the board, without extension (default: TASK or TASK-BUDGET)")]

# ----------------------------------------------------------------------------- show-views
Model = Annotated[Optional[str], typer.Option(
    "--model", help="pretrained folder or hub id: adds the restoration column")]
Samples = Annotated[int, typer.Option("--n", help="number of samples (rows)")]
Picture = Annotated[str, typer.Option("--out", help="PNG to write")]

# ----------------------------------------------------------------------------- publish
WeightsFolder = Annotated[Path, typer.Argument(
    help="a weights folder written by save_pretrained (e.g. RUN/export)")]
RepoId = Annotated[str, typer.Option("--repo-id", help="Hub repo to create or update, e.g. org/name")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="validate and show what would be uploaded; no network")]
Private = Annotated[bool, typer.Option("--private/--no-private", help="create the Hub repo as private")]
Revision = Annotated[Optional[str], typer.Option("--revision", help="branch to upload to (created if missing)")]

# ----------------------------------------------------------------------------- speed
Quick = Annotated[bool, typer.Option("--quick/--no-quick", help="tiny sizes: a smoke test of the benchmark itself")]
SpeedEncoder = Annotated[str, typer.Option("--encoder", help="timm encoder of the training-step comparison")]
Size = Annotated[int, typer.Option("--size", help="image side length of the training-step comparison")]
Batch = Annotated[int, typer.Option("--batch", help="batch size of the training-step comparison")]
Iters = Annotated[int, typer.Option("--iters", help="timed iterations per measurement")]
Threads = Annotated[int, typer.Option(
    "--threads", help="torch intra-op threads (0: torch's default; 1 avoids OpenMP spinning on a loaded machine)")]

# ----------------------------------------------------------------------------- analyse
Pairs = Annotated[Optional[str], typer.Option(
    "--pairs", help="comma-separated ENCODER+DECODER inits (default: the paper's pairs)")]
Ks = Annotated[Optional[str], typer.Option(
    "--k", help="comma-separated k for the k-NN accuracy (default: the paper's)")]
Fractions = Annotated[Optional[str], typer.Option(
    "--fractions", help="comma-separated label fractions, must include 1 (default: the paper's)")]
References = Annotated[Optional[str], typer.Option(
    "--references", help="comma-separated inits whose 100% result is the bar (default: the paper's)")]
NBoot = Annotated[int, typer.Option("--n-boot", min=100, help="bootstrap resamples of the label-cost intervals")]
