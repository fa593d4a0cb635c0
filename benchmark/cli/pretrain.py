"""``tower-bench pretrain``: one pretraining run; with ``--gpus N`` it runs itself again under torchrun.

Under torchrun every process runs ``python -m benchmark pretrain ...`` (also the multi-node command
in README), the same entry point as the console script.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmark.cli.options import (
    DEFAULT_BUDGET,
    BatchSize,
    Bf16,
    Budget,
    CheckpointEvery,
    Compile,
    DataRoot,
    Deterministic,
    Download,
    Encoder,
    Epochs,
    Gpus,
    Hparams,
    ImageSize,
    Lr,
    MaxSteps,
    Method,
    Modality,
    NumClasses,
    PretrainTask,
    Resume,
    RunDir,
    Seed,
    SplitSeed,
    resolve_tasks,
)
from benchmark.errors import ConfigError


def parse_hparams(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict; a value is JSON when it parses (``0.5``, ``false``), else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hparam expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def relaunch(nproc: int) -> None:
    """Run this same command under torchrun with ``nproc`` processes on this machine."""
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--gpus":
            skip = True
        elif not a.startswith("--gpus="):
            args.append(a)
    i = args.index("pretrain") if "pretrain" in args else -1  # global options (--debug) stay before it
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "benchmark", *args[:max(i, 0)], "pretrain", *args[i + 1:]]
    raise SystemExit(subprocess.call(cmd))


def pretrain_command(
    method: Method = "tower",
    task: PretrainTask = "synth-fundus",
    budget: Budget = DEFAULT_BUDGET,
    encoder: Encoder = None,
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    image_size: ImageSize = None,
    hparam: Hparams = [],
    data_root: DataRoot = None,
    out: RunDir = None,
    resume: Resume = False,
    seed: Seed = 0,
    deterministic: Deterministic = False,
    checkpoint_every: CheckpointEvery = None,
    bf16: Bf16 = None,
    compile: Compile = False,
    gpus: Gpus = 1,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Pretrain a method on a task's training images and export the U-Net (model.safetensors + config.json)."""
    from benchmark.core import registry
    from benchmark.core.config import PretrainConfig
    from benchmark.pretraining.loop import pretrain
    from benchmark.pretraining.runtime import launched_by_torchrun

    if gpus > 1 and not launched_by_torchrun():
        relaunch(gpus)
    task = resolve_tasks(task, modality, num_classes, split_seed, image_size)
    data_root = registry.own_manifest(task) or data_root
    if download:
        from benchmark.sweep.run import fetch

        fetch(task, data_root, image_size)
    kind = registry.task_class(task).kind
    cfg = PretrainConfig.from_budget(
        budget, kind, method=method, task=task, hparams=parse_hparams(hparam), encoder=encoder, epochs=epochs,
        max_steps=max_steps, batch_size=batch_size, lr=lr, image_size=image_size,
        data_root=None if data_root is None else str(data_root), out=out, seed=seed, deterministic=deterministic,
        checkpoint_every=checkpoint_every, bf16=bf16, compile=compile,
    )
    pretrain(cfg, resume=resume, progress=True)
