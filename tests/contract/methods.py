"""The contract every registered pretraining method meets, as plain check functions.

``tests/contract/test_methods.py`` runs every check on every entry of ``registry.METHODS`` and
``registry.VARIANTS`` (each at its class's ``tiny_hparams``), so a new method is tested by
registering it; ``test_toy.py`` runs the same checks on a method that exists only in a temp package.
Each check takes a ``Subject`` and a ``make_net(in_chans, out_chans=None, seed=0)`` (``tiny_unet``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from benchmark.core import registry
from benchmark.results import reference
from zoo import PretrainMethod, UNet
from zoo.method import view_rows

MakeNet = Callable[..., UNet]


@dataclass(frozen=True)
class Subject:
    """One registry entry under test: ``name`` as listed, ``method`` the registered method it builds."""

    name: str
    method: str
    cls: type[PretrainMethod]
    hparams: dict[str, Any]

    def build(self, make_net: MakeNet, channels: int = 3, seed: int = 0, **overrides) -> PretrainMethod:
        torch.manual_seed(seed)
        return self.cls(make_net(channels, seed=seed), **{**self.hparams, **overrides})


def subject(name: str) -> Subject:
    """The entry ``name`` of ``registry.METHODS`` or ``registry.VARIANTS``, at its class's tiny hyper-parameters."""
    method, hparams = registry.method_spec(name)
    cls = registry.method_class(method)
    return Subject(name, method, cls, {**cls.tiny_hparams, **hparams})


def subjects() -> list[Subject]:
    return [subject(name) for name in [*registry.METHODS, *registry.VARIANTS]]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_registration(s: Subject, make_net: MakeNet) -> None:
    """The registry line, the class attributes the loop, the card and the leaderboards read."""
    cls = s.cls
    assert registry.method_class(s.method) is cls and cls.name == s.method and issubclass(cls, PretrainMethod)
    assert isinstance(cls.trains_decoder, bool)
    assert isinstance(getattr(cls, "paper_name", None), str) and cls.paper_name, f"{cls.__name__}.paper_name unset"
    if s.method in reference.INIT_NAMES:  # a leaderboard prints the paper's row under the same name
        assert reference.paper_name(s.method) == cls.paper_name
    hparams = cls.hparams()
    assert set(cls.tiny_hparams) <= set(hparams), set(cls.tiny_hparams) - set(hparams)
    assert set(s.hparams) <= set(hparams), set(s.hparams) - set(hparams)


def check_loss_and_gradients(s: Subject, make_net: MakeNet) -> None:
    """A finite scalar loss whose gradients reach the encoder, and the decoder exactly when it is trained."""
    for channels in (1, 3):
        method = s.build(make_net, channels)
        out = method(torch.rand(8, channels, 32, 32), gen())
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]), (channels, out)
        assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
        out["loss"].backward()
        encoder_grads = [p.grad for p in method.net.encoder.parameters()]
        assert all(g is not None for g in encoder_grads) and sum(g.abs().sum() for g in encoder_grads) > 0
        decoder = list(method.net.decoder.parameters()) + list(method.net.head.parameters())
        if method.trains_decoder:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder)
        else:
            assert all(p.grad is None and not p.requires_grad for p in decoder)
        for p in method.parameters():  # EMA teachers and switched-off branches take no gradient
            if not p.requires_grad:
                assert p.grad is None


def crops(view: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    """A view's batches: itself, or each crop of a multi-crop view."""
    return view if isinstance(view, list) else [view]


def check_views_and_export(s: Subject, make_net: MakeNet) -> None:
    """Views reproducible from a generator, one row per image, in [0, 1]: a batch pixel-aligned with the images, or
    a list of crops of any size (multi-crop), at least one of them the images' own size; the U-Net gets published."""
    method = s.build(make_net)
    images = torch.rand(4, 3, 32, 32)
    a, b = method.views(images, gen(3)), method.views(images, gen(3))
    assert a.keys() == b.keys()
    for key in a:
        assert len(crops(a[key])) == len(crops(b[key])) and all(map(torch.equal, crops(a[key]), crops(b[key]))), key
    for key, view in a.items():  # images, crops of them, or one-channel maps over them (masks)
        assert isinstance(view, (torch.Tensor, list)) and crops(view), key
        assert isinstance(view, list) or view.shape[2:] == images.shape[2:], (key, view.shape)
        for v in crops(view):
            assert v.ndim == 4 and v.shape[0] == 4 and v.shape[1] in (1, 3) and min(v.shape[2:]) >= 8, (key, v.shape)
            assert v.min() >= 0 and v.max() <= 1, key
    assert any(v.shape == images.shape for view in a.values() for v in crops(view))
    rows = view_rows(a, 1, 3)  # what the health check hands the method: the views of a slice of the images
    assert all(v.shape[0] == 2 for view in rows.values() for v in crops(view))
    assert method.export() is method.net and isinstance(method.export(), UNet)


def check_direct_optimisation_lowers_the_loss(s: Subject, make_net: MakeNet) -> None:
    """On fixed views the loss is a function of the weights alone, and Adam lowers it."""
    method = s.build(make_net)
    images = torch.rand(8, 3, 32, 32, generator=gen(5))
    views = method.views(images, gen(6))
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


def check_loop_steps(s: Subject, make_net: MakeNet) -> None:
    """What the pretraining loop does: views, loss, step, ``after_step``; twice, so teachers and queues move."""
    method = s.build(make_net)
    method.train()
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    for step in range(2):
        images = torch.rand(8, 3, 32, 32, generator=gen(step))
        loss = method(images, gen(10 + step))["loss"]
        assert torch.isfinite(loss), step
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step(step, 2)


def check_health_outputs(s: Subject, make_net: MakeNet) -> None:
    """The health check's inputs: paired embeddings or None, a restoration exactly when the decoder trains."""
    method = s.build(make_net)
    images = torch.rand(6, 3, 32, 32, generator=gen(7))
    views = method.views(images, gen(8))
    with torch.no_grad():
        pair, restored = method.embeddings(images, views), method.restoration(images, views)
    assert pair is not None or restored is not None, "nothing for the health check to check"
    if pair is not None:
        a, b = pair
        assert a.ndim == 2 and a.shape[0] == 6 and a.shape == b.shape
        assert torch.isfinite(a).all() and torch.isfinite(b).all()
        inputs = method.positive_pair(images, views)  # the health check's raw-pixel baseline compares these
        assert inputs is not None and all(len(t) == 6 and t.ndim == 4 for t in inputs), "embeddings without positive_pair"
    assert (restored is None) == (not method.trains_decoder)
    if restored is not None:
        out, source = restored
        assert out.shape == images.shape and source.shape == images.shape and out.min() >= 0 and out.max() <= 1


def check_fit_to_data(s: Subject, make_net: MakeNet) -> None:
    """``fit_to_data`` keeps every key, is idempotent (a resolved config resolves to itself) and builds."""
    hparams = {**s.cls.hparams(), **s.hparams}
    fitted = s.cls.fit_to_data(hparams, n_images=62, batch=8, total_steps=100)
    assert fitted is not hparams and hparams == {**s.cls.hparams(), **s.hparams}  # the input is left alone
    assert fitted.keys() == hparams.keys()
    assert s.cls.fit_to_data(fitted, n_images=62, batch=8, total_steps=100) == fitted
    s.build(make_net, **fitted)


CHECKS = [check_registration, check_loss_and_gradients, check_views_and_export,
          check_direct_optimisation_lowers_the_loss, check_loop_steps, check_health_outputs, check_fit_to_data]
