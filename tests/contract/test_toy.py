"""A method and a task that exist only in a temp package get through the contract with one registry line each.

Nothing else is edited: the toy files are written, ``registry.METHODS`` / ``registry.TASKS`` gain one
import string each, and the very check lists that tests/contract runs on every registered entry run on them.
"""
from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from benchmark.core import registry

from . import methods, tasks

TOY_METHOD = '''
    """Restores a noisy copy of the image and embeds both copies: the smallest method that meets the contract."""
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F

    from zoo import PretrainMethod


    class Toy(PretrainMethod):
        name = "toy"
        paper_name = "Toy"
        trains_decoder = True

        @dataclass(frozen=True)
        class Hparams:
            noise: float = 0.1

        def __init__(self, net, modality: str = "generic", **hparams):
            super().__init__(net, modality, **hparams)
            self.noise = self.hp.noise

        def views(self, images, generator=None):
            noise = torch.randn(images.shape, generator=generator, device=images.device)
            return {"view": (images + self.noise * noise).clamp(0, 1)}

        def loss(self, images, views):
            return {"loss": F.mse_loss(torch.sigmoid(self.net(views["view"])), images)}

        def positive_pair(self, images, views):
            return images, views["view"]

        def embed(self, x):
            return self.net.forward_pooled(x)

        def restoration(self, images, views):
            return torch.sigmoid(self.net(views["view"])), views["view"]
'''

TOY_MULTICROP = '''
    """Two global crops at the image's size and four local crops at half of it, as DINO draws them; every crop's
    embedding is pulled to the global crops' mean: the multi-crop shape of the contract, not a method to use."""
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F

    from zoo import PretrainMethod


    def crop(images, generator, scale, out):
        """One random box of ``scale`` times the side (the same for the batch), resized to ``out`` px."""
        h, w = images.shape[-2:]
        ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
        y = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        box = images[..., y:y + ch, x:x + cw]
        return F.interpolate(box, size=(out, out), mode="bilinear", align_corners=False).clamp(0, 1)


    class MultiCrop(PretrainMethod):
        name = "multicrop"
        paper_name = "Multi-crop toy"

        @dataclass(frozen=True)
        class Hparams:
            global_scale: float = 0.8
            local_scale: float = 0.4
            local_crops: int = 4

        def __init__(self, net, modality: str = "generic", **hparams):
            super().__init__(net, modality, **hparams)
            self.global_scale, self.local_scale, self.local_crops = (self.hp.global_scale, self.hp.local_scale,
                                                                     self.hp.local_crops)

        def views(self, images, generator=None):
            side = images.shape[-1]
            return {"global": [crop(images, generator, self.global_scale, side) for _ in range(2)],
                    "local": [crop(images, generator, self.local_scale, side // 2) for _ in range(self.local_crops)]}

        def loss(self, images, views):
            z = [F.normalize(self.embed(c), dim=1) for c in views["global"] + views["local"]]
            target = F.normalize(z[0] + z[1], dim=1).detach()
            return {"loss": torch.stack([1 - (zi * target).sum(1).mean() for zi in z]).mean()}

        def positive_pair(self, images, views):
            return views["global"][0], views["global"][1]

        def embed(self, x):
            return self.net.forward_pooled(x)
'''

TOY_TASK = '''
    """Bright or dark grey squares, read from one npz (a stand-in for a downloaded data set)."""
    from pathlib import Path

    import numpy as np
    import torch

    from benchmark.tasks.base import Split, Task


    class ToyTask(Task):
        name = "toy-task"
        kind = "binary"
        modality = "xray"
        metric = "auc"
        in_chans = 1
        num_classes = 2
        image_size = 32
        description = "toy: is the square bright?"
        source = "tests/contract/test_toy.py"
        layout = "  toy.npz  (keys {split}_images uint8 (N, 1, 32, 32), {split}_labels (N,))"

        @classmethod
        def miniature(cls, root: Path) -> dict:
            rng = np.random.default_rng(0)
            arrays = {}
            for split, n in (("train", 16), ("val", 4), ("test", 8)):
                labels = np.arange(n) % 2
                dark = rng.integers(0, 100, (n, 1, 32, 32))
                arrays[f"{split}_images"] = (dark + 150 * labels[:, None, None, None]).astype(np.uint8)
                arrays[f"{split}_labels"] = labels
            root.mkdir(parents=True, exist_ok=True)
            np.savez(root / "toy.npz", **arrays)
            return {"data_root": root}

        def _load(self, split: str) -> Split:
            with np.load(self.require_root() / "toy.npz") as f:
                images, labels = torch.from_numpy(f[f"{split}_images"]), torch.from_numpy(f[f"{split}_labels"]).long()
            return Split(images, labels, ids=[f"{split}/{i}" for i in range(len(images))])
'''


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """``tmp_pkg.toy_method:Toy`` and ``tmp_pkg.toy_task:ToyTask`` on sys.path, one registry line each."""
    pkg = tmp_path / "src" / "tmp_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "toy_method.py").write_text(textwrap.dedent(TOY_METHOD))
    (pkg / "toy_task.py").write_text(textwrap.dedent(TOY_TASK))
    (pkg / "multicrop.py").write_text(textwrap.dedent(TOY_MULTICROP))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setitem(registry.METHODS, "toy", "tmp_pkg.toy_method:Toy")
    monkeypatch.setitem(registry.METHODS, "multicrop", "tmp_pkg.multicrop:MultiCrop")
    monkeypatch.setitem(registry.TASKS, "toy-task", "tmp_pkg.toy_task:ToyTask")
    yield
    for module in ("tmp_pkg", "tmp_pkg.toy_method", "tmp_pkg.toy_task", "tmp_pkg.multicrop"):  # the next test's own
        sys.modules.pop(module, None)


def test_a_registered_toy_method_is_contract_tested(toy_package, tiny_unet):
    assert "toy" in [s.name for s in methods.subjects()]  # what test_methods.py parametrizes over
    subject = methods.subject("toy")
    for check in methods.CHECKS:
        check(subject, tiny_unet)


def test_a_multi_crop_method_meets_the_contract_pretrains_and_is_listed(toy_package, tiny_unet, tmp_path, monkeypatch):
    """Views that are lists of crops of two sizes: every contract check, a smoke pretraining with its health check,
    and the ``methods`` listing with the defaults its class declares (``2 / 5`` is no literal: read from the class)."""
    subject = methods.subject("multicrop")
    for check in methods.CHECKS:
        check(subject, tiny_unet)
    from benchmark.cli import info
    from benchmark.core.config import PretrainConfig
    from benchmark.pretraining.loop import pretrain
    from tests.conftest import TINY_DECODER, TINY_ENCODER
    from zoo import UNet

    images = (torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    cfg = PretrainConfig(method="multicrop", encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, batch_size=8,
                         epochs=2, threads=1, out=str(tmp_path / "run"))
    net = UNet.from_pretrained(pretrain(cfg, images=images, progress=False))
    health = net.export_info.health
    assert "retrieval_top1" in health and "restoration_mse" not in health and net.export_info.method == "multicrop"
    assert info.method_summary(registry.METHODS["multicrop"]) == (False, registry.method_class("multicrop").hparams())
    lines = []
    monkeypatch.setattr(info.console, "print", lambda table: lines.append(table))
    info.methods_command()
    assert "multicrop" in lines[0].columns[0]._cells


def test_a_registered_toy_task_is_contract_tested(toy_package, tmp_path):
    assert "toy-task" in registry.TASKS  # what test_tasks.py parametrizes over
    for check in tasks.CHECKS:
        check("toy-task", tmp_path / check.__name__)


def test_the_contract_catches_a_broken_toy(toy_package, tiny_unet, tmp_path, monkeypatch):
    """The checks can fail: a method that forgets ``paper_name``, a task that writes no miniature."""
    method = registry.method_class("toy")
    monkeypatch.delattr(method, "paper_name")
    with pytest.raises(AssertionError, match="paper_name unset"):
        methods.check_registration(methods.subject("toy"), tiny_unet)
    task = registry.task_class("toy-task")
    monkeypatch.delattr(task, "miniature")
    with pytest.raises(NotImplementedError, match="ToyTask.miniature"):
        tasks.check_splits("toy-task", tmp_path)
