"""tower.method.Tower: its loss parts, ablations and errors (the shared method contract: tests/contract)."""
import pytest
import torch

from tower.method import Tower

SMALL_HEAD = Tower.tiny_hparams


def grads(module):
    return [p.grad for p in module.parameters() if p.requires_grad]


def step(method, seed=0, size=32, chans=3):
    images = torch.rand(4, chans, size, size, generator=torch.Generator().manual_seed(seed))
    out = method(images, torch.Generator().manual_seed(seed))
    out["loss"].backward()
    return out


def test_loss_parts_and_gradients(tiny_unet):
    method = Tower(tiny_unet(), modality="fundus", **SMALL_HEAD)
    out = step(method)
    assert set(out) == {"loss", "contrastive", "generative"}
    assert all(torch.isfinite(v) for v in out.values())
    assert torch.allclose(out["loss"], out["contrastive"] + out["generative"])
    for part in (method.net.encoder, method.net.decoder, method.net.head, method.projector):
        g = grads(part)
        assert all(x is not None for x in g) and sum(x.abs().sum() for x in g) > 0, type(part).__name__


def test_ablations_skip_their_branch(tiny_unet):
    con = Tower(tiny_unet(), generative_weight=0.0, **SMALL_HEAD)
    out = step(con)
    assert set(out) == {"loss", "contrastive"}
    assert not any(p.requires_grad for p in con.net.decoder.parameters())
    assert not con.trains_decoder and Tower(tiny_unet(), **SMALL_HEAD).trains_decoder  # exported as encoder-only
    assert Tower.trains_decoder and Tower.paper_name == "TOWER"  # the class default is untouched
    gen = Tower(tiny_unet(), contrastive_weight=0.0, mask="stripes", **SMALL_HEAD)
    out = step(gen)
    assert set(out) == {"loss", "generative"}
    assert all(p.grad is None and not p.requires_grad for p in gen.projector.parameters())
    assert all(g is not None for g in grads(gen.net.encoder))


def test_views_deterministic_and_configurable(tiny_unet):
    method = Tower(tiny_unet(), modality="xray", translate=False, mask_ratio=0.25, **SMALL_HEAD)
    assert method.proxy.mask == "stripes" and method.proxy.p_translate == 0 and method.proxy.ratio == 0.25
    x = torch.rand(4, 3, 32, 32)
    a = method.views(x, torch.Generator().manual_seed(5))
    b = method.views(x, torch.Generator().manual_seed(5))
    assert torch.equal(a["view"], b["view"]) and torch.equal(a["translated"], x)
    assert "mask_ratio" in Tower.hparams() and Tower.hparams()["temperature"] == 0.1


def test_clear_errors(tiny_unet):
    with pytest.raises(ValueError, match="out_chans == in_chans"):
        Tower(tiny_unet(in_chans=3, out_chans=1), **SMALL_HEAD)
    Tower(tiny_unet(in_chans=3, out_chans=1), generative_weight=0.0, **SMALL_HEAD)  # no restoration: fine
    with pytest.raises(ValueError, match="at least one positive"):
        Tower(tiny_unet(), contrastive_weight=0.0, generative_weight=0.0)
    with pytest.raises(ValueError, match="unknown modality"):
        Tower(tiny_unet(), modality="mri")
    with pytest.raises(ValueError, match="no change"):
        Tower(tiny_unet(), mask="none", translate=False)


def test_grey_images(tiny_unet):
    method = Tower(tiny_unet(in_chans=1), modality="ct", **SMALL_HEAD)
    assert torch.isfinite(step(method, chans=1)["loss"])
