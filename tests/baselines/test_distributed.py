"""2 gloo processes vs one process on the same global batch, for the cross-rank baselines.

Views are drawn once for the global batch; each rank gets its slice, BatchNorm is converted to
the global one and the method wrapped in DDP, as the pretraining loop does. The loss averaged
over ranks, every gradient, and MoCo's queue after ``after_step`` must match the 1-process run.
In float64: in fp32 the two runs' rounding flips the odd ReLU input that sits within 1e-6 of 0,
and that one pixel's gradient alone moves an early layer's gradient by ~1% (seen on AVX2 CPUs).
"""
import pytest
import torch

from benchmark.core.registry import method_class
from benchmark.pretraining.build import distribute
from tests.conftest import TINY_DECODER, TINY_ENCODER
from tests.dist import run_distributed
from zoo import UNet

HPARAMS = {
    "simclr": dict(hidden_dim=64, out_dim=32),
    "moco": dict(hidden_dim=64, out_dim=32, queue_size=24),
    "byol": dict(hidden_dim=64, out_dim=32),
}
BATCH = 8


def build(name, state):
    method = method_class(name)(UNet(TINY_ENCODER, 3, 3, TINY_DECODER), **HPARAMS[name]).double()
    method.load_state_dict(state)
    return method


def _worker(rank, world, cases):
    out = {}
    for name, (state, images, views) in cases.items():
        method, ddp = distribute(build(name, state), torch.device("cpu"))  # as the pretraining loop does
        n = images.shape[0] // world
        part = slice(rank * n, (rank + 1) * n)
        loss = ddp(images[part], {k: v[part] for k, v in views.items()})["loss"]
        loss.backward()
        method.after_step(1, 10)
        out[name] = {
            "loss": loss.detach(),
            "grads": {k: p.grad for k, p in method.named_parameters() if p.grad is not None},
            "buffers": {k: b for k, b in method.named_buffers() if k in ("queue", "queue_ptr")},
        }
    return out


@pytest.fixture(scope="module")
def runs():
    """Per method: the 1-process reference and both ranks' results, from one 2-process launch."""
    cases, reference = {}, {}
    for i, name in enumerate(HPARAMS):
        torch.manual_seed(i)
        method = build(name, method_class(name)(UNet(TINY_ENCODER, 3, 3, TINY_DECODER), **HPARAMS[name]).state_dict())
        state = {k: v.clone() for k, v in method.state_dict().items()}
        images = torch.rand(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(10 + i), dtype=torch.float64)
        views = method.views(images, torch.Generator().manual_seed(20 + i))
        loss = method.loss(images, views)["loss"]
        loss.backward()
        method.after_step(1, 10)
        reference[name] = {
            "loss": loss.detach(),
            "grads": {k: p.grad for k, p in method.named_parameters() if p.grad is not None},
            "buffers": {k: b.clone() for k, b in method.named_buffers() if k in ("queue", "queue_ptr")},
        }
        cases[name] = (state, images, views)
    ranks = run_distributed(_worker, 2, cases)
    return reference, ranks


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HPARAMS))
def test_two_ranks_equal_one_process(runs, name):
    reference, ranks = runs
    ref = reference[name]
    mean_loss = sum(r[name]["loss"] for r in ranks) / len(ranks)
    assert torch.allclose(mean_loss, ref["loss"], atol=1e-5)
    assert ranks[0][name]["loss"] != ranks[1][name]["loss"]  # the ranks really saw different samples
    assert ref["grads"].keys() == ranks[0][name]["grads"].keys() == ranks[1][name]["grads"].keys()
    assert len(ref["grads"]) > 10
    for r in ranks:
        for k, g in ref["grads"].items():
            assert torch.allclose(r[name]["grads"][k], g, atol=1e-5), k


@pytest.mark.slow
def test_moco_queue_is_identical_on_every_rank_and_to_one_process(runs):
    reference, ranks = runs
    ref = reference["moco"]["buffers"]
    assert int(ref["queue_ptr"]) == BATCH  # the whole global batch went in, not one rank's half
    for r in ranks:
        assert torch.equal(r["moco"]["buffers"]["queue_ptr"], ref["queue_ptr"])
        assert torch.allclose(r["moco"]["buffers"]["queue"], ref["queue"], atol=1e-6)
