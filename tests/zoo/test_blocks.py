import math

import pytest
import torch
import torch.nn.functional as F

from tests.dist import run_distributed
from zoo import (
    MLPHead,
    convert_sync_batchnorm,
    cosine_momentum,
    cosine_regression,
    ema_update,
    frozen_copy,
    gather_with_grad,
    info_nce,
    info_nce_with_negatives,
    projection_head,
)


def direct_nt_xent(z1, z2, tau):
    """SimCLR's loss written out term by term."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / denom)
    return total / n2


def test_info_nce_matches_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    for tau in (0.1, 0.5):
        assert info_nce(z1, z2, tau).item() == pytest.approx(direct_nt_xent(z1, z2, tau), rel=1e-5)


def test_info_nce_rewards_aligned_views():
    z = torch.randn(16, 32)
    assert info_nce(z, z + 0.01 * torch.randn_like(z)) < info_nce(z, torch.randn_like(z))


def test_info_nce_with_negatives_matches_formula():
    q, k, neg = torch.randn(4, 8), torch.randn(4, 8), torch.randn(10, 8)
    qn, kn, nn_ = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(neg, dim=1)
    expected = torch.stack([
        -torch.log_softmax(torch.cat([(qn[i] @ kn[i]).view(1), nn_ @ qn[i]]) / 0.2, 0)[0] for i in range(4)
    ]).mean()
    assert torch.allclose(info_nce_with_negatives(q, k, neg, 0.2), expected, atol=1e-6)


def test_cosine_regression_is_zero_for_parallel_and_stops_target_gradient():
    p = torch.randn(5, 4, requires_grad=True)
    t = (2 * p).detach().requires_grad_(True)
    loss = cosine_regression(p, t)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    cosine_regression(p, torch.randn(5, 4).requires_grad_(True)).backward()
    assert t.grad is None


def test_heads_on_pooled_features():
    head = projection_head(64, 32, 16)
    assert head(torch.randn(4, 64)).shape == (4, 16)
    assert isinstance(head, MLPHead) and len([m for m in head if isinstance(m, torch.nn.Linear)]) == 2


def test_ema_update_follows_the_momentum_formula():
    student = torch.nn.Linear(3, 2)
    teacher = frozen_copy(student)
    before = teacher.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, 0.9 * before + 0.1 * student.weight)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_cosine_momentum_schedule_ends():
    assert cosine_momentum(0, 100) == pytest.approx(0.996)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert 0.996 < cosine_momentum(50, 100) < 1.0


# --- distributed: 2 gloo processes vs. one process on the same global batch -----------------

def _gather_grad_worker(rank, world, x_global):
    n = x_global.shape[0] // world
    x = x_global[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    g = gather_with_grad(x)
    # a loss that mixes rows of different ranks, averaged over ranks like DDP does
    (g.pow(2).sum() * (rank + 1)).backward()
    return {"gathered": g.detach(), "grad": x.grad}


def test_gather_carries_gradient_from_all_ranks():
    x = torch.randn(4, 3)
    out = run_distributed(_gather_grad_worker, 2, x)
    assert torch.equal(out[0]["gathered"], x) and torch.equal(out[1]["gathered"], x)
    # d/dx of sum_r (r+1) * sum(x^2) = 2 x * (1 + 2) on every row
    assert torch.allclose(torch.cat([out[0]["grad"], out[1]["grad"]]), 6 * x)


def _info_nce_worker(rank, world, z1_global, z2_global):
    n = z1_global.shape[0] // world
    z1 = z1_global[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    z2 = z2_global[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    loss = info_nce(z1, z2, 0.1)
    (loss / world).backward()  # DDP averages gradients over ranks
    return {"loss": loss.detach(), "g1": z1.grad, "g2": z2.grad}


def test_info_nce_two_ranks_equal_one_process():
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    ref = info_nce(a, b, 0.1)
    ref.backward()
    out = run_distributed(_info_nce_worker, 2, z1, z2)
    assert torch.allclose((out[0]["loss"] + out[1]["loss"]) / 2, ref.detach(), atol=1e-6)
    # each rank's rows get the gradient of the global-batch loss (all-reduced through the gather)
    assert torch.allclose(torch.cat([out[0]["g1"], out[1]["g1"]]), a.grad, atol=1e-6)
    assert torch.allclose(torch.cat([out[0]["g2"], out[1]["g2"]]), b.grad, atol=1e-6)


def _bn_worker(rank, world, x_global, state):
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    net.load_state_dict(state)
    net = convert_sync_batchnorm(net, torch.device("cpu"))
    n = x_global.shape[0] // world
    y = net(x_global[rank * n:(rank + 1) * n])
    (y.pow(3).mean()).backward()
    return {"y": y.detach(), "grad": net[0].weight.grad, "running": net[1].running_var}


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_global_batchnorm_on_cpu_equals_batchnorm_on_the_global_batch(offset):
    """``offset``: activations whose mean dwarfs their spread, where sum(x^2)/n - mean^2 cancels in fp32."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(6, 2, 5, 5) + offset
    y = net(x)
    y.pow(3).mean().backward()
    out = run_distributed(_bn_worker, 2, x, state)
    torch.testing.assert_close(torch.cat([out[0]["y"], out[1]["y"]]), y.detach(), atol=1e-5, rtol=1e-5)
    # per-rank mean of a half batch: gradient of the global mean is the average over ranks; the
    # ranks' halves (about 0.4 * offset) cancel, so their fp32 rounding scales with the offset
    torch.testing.assert_close((out[0]["grad"] + out[1]["grad"]) / 2, net[0].weight.grad, atol=1e-5 * (1 + offset), rtol=1e-5)
    assert torch.allclose(out[0]["running"], net[1].running_var, atol=1e-6)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from zoo.io import atomic_write, atomic_write_text, stable_hash

    target = atomic_write_text(tmp_path / "a.json", "old")

    def boom(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, boom)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1}) != stable_hash({"a": 2, "b": [1, 2]})


def test_convert_keeps_parameters_and_their_frozen_state():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3))
    net[2].requires_grad_(False)
    params = [net[1].weight, net[2].weight]
    out = convert_sync_batchnorm(net, torch.device("cpu"))
    assert out[1].weight is params[0] and out[2].weight is params[1]
    assert out[1].weight.requires_grad and not out[2].weight.requires_grad
    assert type(out[1]).__name__ == "GlobalBatchNorm"
