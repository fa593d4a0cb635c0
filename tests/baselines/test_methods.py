import math

import pytest
import torch

from baselines import BYOL, MoCo, ModelGenesis, SimCLR
from benchmark.registry import method_class
from zoo import PretrainMethod, UNet

SMALL = {  # tiny heads so the tests stay fast; the defaults are the papers'
    SimCLR: dict(hidden_dim=64, out_dim=32),
    BYOL: dict(hidden_dim=64, out_dim=32),
    MoCo: dict(hidden_dim=64, out_dim=32, queue_size=64),
    ModelGenesis: {},
}
METHODS = list(SMALL)


def make(cls, tiny_unet, channels=3, seed=0):
    torch.manual_seed(seed)
    return cls(tiny_unet(channels, seed=seed), **SMALL[cls])


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_names_every_baseline():
    for name, cls in (("simclr", SimCLR), ("byol", BYOL), ("moco", MoCo), ("genesis", ModelGenesis)):
        assert method_class(name) is cls and cls.name == name and issubclass(cls, PretrainMethod)
    assert ModelGenesis.trains_decoder and not any(c.trains_decoder for c in (SimCLR, BYOL, MoCo))


def test_hparams_show_the_papers_defaults():
    assert SimCLR.hparams()["temperature"] == 0.1
    assert BYOL.hparams()["base_momentum"] == 0.996
    moco = MoCo.hparams()
    assert (moco["temperature"], moco["momentum"], moco["queue_size"]) == (0.2, 0.999, 4096)
    assert ModelGenesis.hparams()["p_translation"] == 0.9


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
@pytest.mark.parametrize("channels", [1, 3])
def test_loss_is_finite_and_gradients_reach_the_right_parts(cls, channels, tiny_unet):
    method = make(cls, tiny_unet, channels)
    out = method(torch.rand(8, channels, 32, 32), gen())
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    encoder_grads = [p.grad for p in method.net.encoder.parameters()]
    assert all(g is not None for g in encoder_grads) and sum(g.abs().sum() for g in encoder_grads) > 0
    decoder = list(method.net.decoder.parameters()) + list(method.net.head.parameters())
    if cls.trains_decoder:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder)
    else:
        assert all(p.grad is None and not p.requires_grad for p in decoder)
    for p in method.parameters():  # EMA teachers take no gradient
        if not p.requires_grad:
            assert p.grad is None


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_views_are_reproducible_and_exported_net_is_the_unet(cls, tiny_unet):
    method = make(cls, tiny_unet)
    images = torch.rand(4, 3, 32, 32)
    a, b = method.views(images, gen(3)), method.views(images, gen(3))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.shape == images.shape and v.min() >= 0 and v.max() <= 1 for v in a.values())
    assert method.export() is method.net and isinstance(method.export(), UNet)


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_direct_optimisation_lowers_the_loss(cls, tiny_unet):
    method = make(cls, tiny_unet)
    images = torch.rand(8, 3, 32, 32, generator=gen(5))
    views = method.views(images, gen(6))  # fixed views: the loss is a deterministic function of the weights
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(15):
        loss = method.loss(images, views)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0], losses


def test_genesis_loss_is_the_mse_of_the_sigmoid_restoration(tiny_unet):
    method = make(ModelGenesis, tiny_unet)
    images = torch.rand(4, 3, 32, 32)
    views = method.views(images, gen())
    expected = ((torch.sigmoid(method.net(views["view"])) - images) ** 2).mean()
    assert torch.allclose(method.loss(images, views)["loss"], expected, atol=1e-6)


def test_genesis_needs_a_restoring_unet(tiny_unet):
    with pytest.raises(ValueError, match="out_chans == in_chans"):
        ModelGenesis(tiny_unet(3, out_chans=2))
    with pytest.raises(ValueError, match="probability"):
        ModelGenesis(tiny_unet(3), p_paint=2.0)


def test_bad_hyper_parameters_are_refused(tiny_unet):
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(tiny_unet(3), temperature=0)
    with pytest.raises(ValueError, match="base_momentum"):
        BYOL(tiny_unet(3), base_momentum=1.5)
    with pytest.raises(ValueError, match="queue_size"):
        MoCo(tiny_unet(3), queue_size=0)
