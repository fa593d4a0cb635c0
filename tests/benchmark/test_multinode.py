"""Two torchrun "nodes" on localhost (c10d rendezvous, gloo over loopback) train what one process trains.

This is the multi-node command of ``benchmark/pretraining/loop.py``'s docstring, run for real: two
separate ``torchrun --nnodes 2`` agents meet at one rendezvous endpoint, each starts one rank.

Each rank draws its own views from its own generator stream (by design: no rank draws the whole
batch's views), so the run uses a proxy that leaves images unchanged (no translation, 0% of
blocks masked). Everything else is compared: the split of the global batch, global-batch
BatchNorm, negatives gathered from both ranks, gradient averaging and the export.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from benchmark.core import registry
from tests.benchmark.test_pretrain import REPO
from tests.dist import free_port

ARGS = ["--method", "tower", "--task", "synth-fundus", "--budget", "smoke", "--max-steps", "2", "--seed", "3",
        "--hparam", "translate=false", "--hparam", "mask=blocks", "--hparam", "mask_ratio=0"]


def _env() -> dict[str, str]:
    # loopback only: gloo binds to lo, the rendezvous endpoint is 127.0.0.1
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_nodes_match_one_process(tmp_path):
    for spec in (registry.METHODS.get("tower"), registry.TASKS.get("synth-fundus")):
        if spec is None:
            pytest.skip("tower method or synth-fundus task not registered")
    port = free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
             "--node-rank", str(rank), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
             "--rdzv-id", "multinode-test", "-m", "benchmark", "pretrain", *ARGS, "--out", str(tmp_path / "two")],
            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in (0, 1)
    ]
    # the reference, in this process (one interpreter fewer to start) while the nodes run
    from typer.testing import CliRunner

    from benchmark.cli import app

    single = CliRunner().invoke(app, ["pretrain", *ARGS, "--out", str(tmp_path / "one")])
    assert single.exit_code == 0, f"{single.output[-3000:]}{single.exception!r}"
    for rank, node in enumerate(nodes):
        try:
            log, _ = node.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for n in nodes:
                n.kill()
            pytest.fail(f"node {rank} did not finish in 120 s")
        assert node.returncode == 0, f"node {rank}:\n{log[-3000:]}"

    info = json.loads((tmp_path / "two" / "export" / "config.json").read_text())["tower_bench"]["pretrain"]
    assert info["world_size"] == 2 and info["global_batch"] == 8 and info["steps"] == 2
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 2
    torch.testing.assert_close(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-5)

    # Weights: the 2-node update equals the 1-process update up to 1% of its size. (Per element,
    # Adam divides each gradient by its own magnitude, so rounding differences of near-zero
    # gradients, summed over 2 ranks vs 1, can flip a few elements' steps.)
    from tests.conftest import TINY_DECODER, TINY_ENCODER
    from zoo import UNet

    torch.manual_seed(3)  # what build_method does with --seed 3
    init = UNet(TINY_ENCODER, 3, 3, TINY_DECODER).state_dict()
    for name in ("model.safetensors", "decoder.safetensors"):
        a, b = load_file(tmp_path / "one" / "export" / name), load_file(tmp_path / "two" / "export" / name)
        assert a.keys() == b.keys(), f"{name}: different tensors exported"
        keys = [k for k in a if a[k].is_floating_point()]
        w0 = torch.cat([init[k if k in init else f"encoder.{k}"].flatten() for k in keys])
        w1, w2 = (torch.cat([w[k].flatten() for k in keys]) for w in (a, b))
        update = (w1 - w0).norm()
        assert update > 1e-3, f"{name}: training did not move the weights"
        assert (w2 - w1).norm() < 0.01 * update, (
            f"{name}: 2 nodes vs 1 process differ by {(w2 - w1).norm():.3g}, the update is {update:.3g}")
