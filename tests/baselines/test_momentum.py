import pytest
import torch
import torch.nn.functional as F

from baselines import BYOL, MoCo
from baselines.teacher import INIT_RESIDUAL, cap_base_momentum, cap_momentum, init_residual
from zoo import PretrainMethod, cosine_momentum

SMALL = dict(hidden_dim=64, out_dim=32)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def teacher_pairs(method):
    """(teacher tensor, student tensor) for every EMA-tracked parameter."""
    t = method.target if isinstance(method, BYOL) else method.key_encoder
    return list(zip(list(t.net.encoder.parameters()) + list(t.projector.parameters()),
                    list(method.net.encoder.parameters()) + list(method.projector.parameters()), strict=True))


def perturb_online(method):
    with torch.no_grad():
        for p in method.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))


def test_teacher_copies_the_encoder_and_projector_only(tiny_unet):
    method = BYOL(tiny_unet(3), **SMALL)
    names = [n for n, _ in method.target.named_parameters()]
    assert names and not any("decoder" in n or n.startswith("net.head") for n in names)
    assert not any(p.requires_grad for p in method.target.parameters())
    assert all(torch.equal(t, s) for t, s in teacher_pairs(method))  # starts as a copy
    assert method.target(torch.rand(4, 3, 32, 32)).shape == (4, 32)


@pytest.mark.parametrize("step,total", [(0, 10), (3, 10), (10, 10)])
def test_byol_target_follows_the_scheduled_momentum(tiny_unet, step, total):
    method = BYOL(tiny_unet(3), base_momentum=0.9, **SMALL)
    perturb_online(method)
    old = [t.clone() for t, _ in teacher_pairs(method)]
    method.after_step(step, total)
    m = cosine_momentum(step, total, 0.9)
    assert method.momentum == pytest.approx(m)
    for (t, s), o in zip(teacher_pairs(method), old):
        assert torch.allclose(t, m * o + (1 - m) * s, atol=1e-6)
    if step == 0:  # m = base: the target really moved
        assert any(not torch.equal(t, o) for (t, _), o in zip(teacher_pairs(method), old))


def test_moco_key_encoder_uses_its_constant_momentum(tiny_unet):
    method = MoCo(tiny_unet(3), momentum=0.99, queue_size=16, **SMALL)
    perturb_online(method)
    old = [t.clone() for t, _ in teacher_pairs(method)]
    method.after_step(5, 100)
    for (t, s), o in zip(teacher_pairs(method), old):
        assert torch.allclose(t, 0.99 * o + 0.01 * s, atol=1e-6)


def test_moco_queue_fills_in_order_and_wraps(tiny_unet):
    method = MoCo(tiny_unet(3), queue_size=10, **SMALL)
    k1, k2, k3 = (F.normalize(torch.randn(4, 32), dim=1) for _ in range(3))
    method.enqueue(k1)
    method.enqueue(k2)
    assert torch.equal(method.queue[0:4], k1) and torch.equal(method.queue[4:8], k2)
    assert int(method.queue_ptr) == 8
    before = method.queue[2:8].clone()
    method.enqueue(k3)  # wraps: rows 8, 9, 0, 1
    assert torch.equal(method.queue[8:10], k3[:2]) and torch.equal(method.queue[0:2], k3[2:])
    assert torch.equal(method.queue[2:8], before)  # not-yet-oldest keys untouched
    assert int(method.queue_ptr) == 2 and method.queue.shape == (10, 32)
    k4 = F.normalize(torch.randn(13, 32), dim=1)
    method.enqueue(k4)  # more keys than the queue holds: the newest 10, from the pointer on
    assert torch.equal(method.queue[2:], k4[3:11]) and torch.equal(method.queue[:2], k4[11:])
    with pytest.raises(ValueError, match=r"keys must be \(N, 32\)"):
        method.enqueue(torch.randn(4, 31))


def test_moco_loss_is_pure_and_after_step_enqueues_its_keys(tiny_unet):
    method = MoCo(tiny_unet(3), queue_size=20, **SMALL)
    images = torch.rand(6, 3, 32, 32)
    views = method.views(images, gen())
    queue = method.queue.clone()
    with torch.no_grad():
        expected = F.normalize(method.key_encoder(views["view2"]), dim=1)
    a = method.loss(images, views)["loss"]
    b = method.loss(images, views)["loss"]
    assert torch.equal(a, b) and torch.equal(method.queue, queue)  # loss() leaves the queue alone
    method.after_step(1, 10)
    # both training forwards' keys, in order, computed by the key encoder before its update
    assert torch.allclose(method.queue[:6], expected, atol=1e-6)
    assert torch.allclose(method.queue[6:12], expected, atol=1e-6)
    assert torch.equal(method.queue[12:], queue[12:]) and int(method.queue_ptr) == 12
    with torch.no_grad():
        method.loss(images, views)
    method.eval()
    method.loss(images, views)
    method.after_step(2, 10)
    assert int(method.queue_ptr) == 12  # no-grad and evaluation forwards enqueue nothing


def test_moco_queue_is_saved_with_the_state(tiny_unet):
    method = MoCo(tiny_unet(3), queue_size=16, **SMALL)
    method.enqueue(torch.randn(4, 32))
    state = method.state_dict()
    assert torch.equal(state["queue"], method.queue) and int(state["queue_ptr"]) == 4


def test_momentum_caps_leave_at_most_1_percent_of_the_init():
    for steps in (10, 100, 1000):
        m = cap_momentum(0.999, steps)
        assert m ** steps == pytest.approx(INIT_RESIDUAL) and cap_momentum(m, steps) == m  # idempotent
        base = cap_base_momentum(0.996, steps)
        assert INIT_RESIDUAL * 0.99 < init_residual(base, steps) <= INIT_RESIDUAL
        assert cap_base_momentum(base, steps) == base
    assert cap_momentum(0.999, 0) == 0.999 and cap_momentum(0.999, 5000) == 0.999  # long runs: the paper's
    assert cap_momentum(0.9, 100) == 0.9 and cap_base_momentum(0.996, 3000) == 0.996
    assert init_residual(0.996, 3000) <= INIT_RESIDUAL < init_residual(0.996, 1000)


@pytest.mark.parametrize("cls", [BYOL, MoCo])
def test_fitted_teacher_holds_at_most_1_percent_of_its_init_after_the_run(cls, tiny_unet):
    """Run the EMA itself: a student held fixed away from the init, T after_step calls, measure what is left."""
    steps = 40
    hparams = cls.fit_to_data(cls.hparams(), n_images=64, batch=8, total_steps=steps)  # MoCo: a 16-key queue
    kwargs = {k: hparams[k] for k in ("base_momentum", "momentum", "queue_size") if k in hparams}
    method = cls(tiny_unet(3), **SMALL, **kwargs)
    init = [t.clone() for t, _ in teacher_pairs(method)]
    perturb_online(method)
    for step in range(steps):
        method.after_step(step, steps)
    left = [((t - s).norm() / (o - s).norm()).item() for (t, s), o in zip(teacher_pairs(method), init)
            if (o - s).norm() > 0]
    assert left and max(left) <= INIT_RESIDUAL * 1.001
    raw = cls(tiny_unet(3), **SMALL, **({"queue_size": 16} if cls is MoCo else {}))
    assert (raw.momentum if cls is MoCo else raw.base_momentum) ** steps > 0.1  # the paper's value would not


@pytest.mark.parametrize("n_images,batch,want", [(48, 16, 12), (62, 32, 15), (1080, 128, 256), (546, 32, 128),
                                                  (100_000, 256, 4096), (3, 3, 1)])
def test_moco_queue_holds_at_most_a_quarter_of_the_data(n_images, batch, want):
    fitted = MoCo.fit_to_data(MoCo.hparams(), n_images, batch, total_steps=100)
    assert fitted["queue_size"] == want and fitted["queue_size"] <= max(1, n_images // 4)
    assert fitted["queue_size"] < batch or fitted["queue_size"] % batch == 0  # whole batches
    assert fitted["momentum"] == cap_momentum(0.999, 100) < 0.999
    assert MoCo.fit_to_data(fitted, n_images, batch, 100) == fitted  # idempotent: resolving twice is harmless
    assert PretrainMethod.fit_to_data({"a": 1}, n_images, batch, 100) == {"a": 1}


def test_resolved_config_and_hash_show_the_fitted_queue():
    from benchmark.pretraining.loop import PretrainConfig, resolve

    cfg = PretrainConfig(method="moco", batch_size=16, epochs=2)
    plain, fitted = resolve(cfg, 32, torch.device("cpu")), resolve(cfg, 32, torch.device("cpu"), n_images=48)
    assert plain.hparams["queue_size"] == 4096 and fitted.hparams["queue_size"] == 12
    assert fitted.hparams["momentum"] == cap_momentum(0.999, 6) and plain.hash() != fitted.hash()
    assert resolve(fitted, 32, torch.device("cpu"), n_images=48) == fitted
    tower = PretrainConfig(method="tower", batch_size=16, epochs=2)
    assert resolve(tower, 32, torch.device("cpu"), n_images=48) == resolve(tower, 32, torch.device("cpu"))
