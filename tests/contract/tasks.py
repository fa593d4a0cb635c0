"""The contract every registered task meets, as plain check functions.

``tests/contract/test_tasks.py`` runs every check on every entry of ``registry.TASKS``, each on the
miniature data its class writes (``Task.miniature``), so a new task is tested by registering it;
``test_toy.py`` runs the same checks on a task that exists only in a temp package.
Each check takes the registered name and an empty folder.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchmark.core import registry
from benchmark.core.config import BUDGETS
from benchmark.tasks.base import SPLITS, Task

ATTRS = ("name", "kind", "modality", "metric", "in_chans", "num_classes", "image_size", "description", "source",
         "layout")


def check_attributes(name: str, tmp: Path) -> None:
    """The class attributes the CLI lists and the fine-tuning loop, metrics and stamps read."""
    cls = registry.task_class(name)
    assert issubclass(cls, Task) and cls.name == name
    for attr in ATTRS:
        assert getattr(cls, attr) not in (None, ""), f"{name}.{attr} unset"
    assert cls.kind in ("segmentation", "binary", "multiclass", "multilabel")
    assert cls.metric == ("dice" if cls.kind == "segmentation" else "auc")


def check_splits(name: str, tmp: Path) -> None:
    """The miniature loads into well-formed, disjoint train/val/test splits; pretraining never sees val/test."""
    cls = registry.task_class(name)
    task = cls(**cls.miniature(tmp))
    size = task.image_size
    ids = {}
    for split in SPLITS:
        s = task.load(split)
        n = len(s)
        size_hw = (size, size)
        assert s.images.dtype == torch.uint8 and s.images.shape == (n, cls.in_chans, *size_hw), (split, s.images.shape)
        if cls.kind == "segmentation":
            assert s.targets.dtype == torch.uint8 and s.targets.shape == (n, *size_hw)
            assert set(s.targets.unique().tolist()) <= set(range(cls.num_classes))
            assert s.valid is not None and s.valid.dtype == torch.bool and s.valid.shape == (n, *size_hw)
            assert s.valid.any()
        elif cls.kind == "multilabel":
            assert s.targets.dtype == torch.float32 and s.targets.shape == (n, cls.num_classes)
            assert set(s.targets.unique().tolist()) <= {0.0, 1.0}
        else:
            assert s.targets.dtype == torch.int64 and s.targets.shape == (n,)
            assert 0 <= int(s.targets.min()) and int(s.targets.max()) < cls.num_classes
        assert len(s.ids) == n and len(set(s.ids)) == n
        ids[split] = set(s.ids)
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    pool = task.pretrain_images()  # the training split, or a disjoint pool
    if pool is not task.load("train").images:
        held = {bytes(x.numpy()) for split in ("val", "test") for x in task.load(split).images}
        assert pool.dtype == torch.uint8 and pool.ndim == 4 and not held & {bytes(x.numpy()) for x in pool}


def check_never_shrunk_below_min_size(name: str, tmp: Path) -> None:
    """No budget silently shrinks the task below the size at which its targets survive (issue: DRIVE at 64 px)."""
    cls = registry.task_class(name)
    for budget in BUDGETS:
        size = BUDGETS[budget].image_size
        try:
            task = registry.make_task(name, None, size)
        except registry.TaskSizeError as err:  # refused: the message names a budget that fits
            fits = [b for b in BUDGETS if (BUDGETS[b].image_size or cls.image_size) >= cls.min_size]
            assert fits and any(f"--budget {b}" in str(err) or f" or {b}" in str(err) for b in fits), budget
            continue
        if getattr(task, "patches", False):  # native resolution, patches of the budget's size
            assert task.read_size is None and task.image_size == (size or cls.image_size), budget
        else:
            assert task.image_size >= cls.min_size, budget


def check_one_finetuning_epoch(name: str, tmp: Path) -> None:
    """One epoch of fine-tuning a tiny U-Net ends in a record with the task's metric on its whole test split."""
    from benchmark.finetuning.protocols import FinetuneConfig, finetune
    from tests.conftest import TINY_DECODER, TINY_ENCODER

    cls = registry.task_class(name)
    task = cls(**cls.miniature(tmp))
    cfg = FinetuneConfig(task=name, encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=1, batch_size=4,
                         lr=1e-3, eval_batch_size=8)
    record = finetune(cfg, task, progress=False)
    assert record["metric"] == task.metric and 0.0 <= record["value"] <= 100.0
    assert record["n_test"] == len(task.load("test")) and record["epochs_run"] == 1


CHECKS = [check_attributes, check_splits, check_never_shrunk_below_min_size, check_one_finetuning_epoch]
