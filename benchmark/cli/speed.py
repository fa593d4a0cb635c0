"""``tower-bench speed``: TOWER's batched proxy tasks and training step, timed in this process."""
from __future__ import annotations

from benchmark.cli.options import Batch, Iters, Quick, Size, SpeedEncoder, Threads


def speed_command(
    quick: Quick = False,
    encoder: SpeedEncoder = "resnet18",
    size: Size = 64,
    batch: Batch = 32,
    iters: Iters = 5,
    threads: Threads = 0,
) -> None:
    """Benchmark TOWER's batched proxy tasks vs per-sample numpy, and its step vs a plain U-Net step."""
    import torch

    from benchmark.pretraining.speed import run

    if threads:
        torch.set_num_threads(threads)
    print(run(quick=quick, encoder=encoder, size=size, batch=batch, iters=iters))
