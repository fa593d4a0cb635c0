"""A method and a task that exist only in a temp package get through the contract with one registry line each.

Nothing else is edited: the toy files are written, ``registry.METHODS`` / ``registry.TASKS`` gain one
import string each, and the very check lists that tests/contract runs on every registered entry run on them.
"""
from __future__ import annotations

import sys
import textwrap

import pytest

from benchmark.core import registry

from . import methods, tasks

TOY_METHOD = '''
    """Restores a noisy copy of the image and embeds both copies: the smallest method that meets the contract."""
    import torch
    import torch.nn.functional as F

    from zoo import PretrainMethod


    class Toy(PretrainMethod):
        name = "toy"
        paper_name = "Toy"
        trains_decoder = True

        def __init__(self, net, modality: str = "generic", noise: float = 0.1):
            super().__init__(net, modality)
            self.noise = noise

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
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setitem(registry.METHODS, "toy", "tmp_pkg.toy_method:Toy")
    monkeypatch.setitem(registry.TASKS, "toy-task", "tmp_pkg.toy_task:ToyTask")
    yield
    for module in ("tmp_pkg", "tmp_pkg.toy_method", "tmp_pkg.toy_task"):  # the next test writes its own
        sys.modules.pop(module, None)


def test_a_registered_toy_method_is_contract_tested(toy_package, tiny_unet):
    assert "toy" in [s.name for s in methods.subjects()]  # what test_methods.py parametrizes over
    subject = methods.subject("toy")
    for check in methods.CHECKS:
        check(subject, tiny_unet)


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
