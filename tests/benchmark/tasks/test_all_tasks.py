"""Every registered task: its miniature fixture loads into well-formed, disjoint train/val/test splits."""
from __future__ import annotations

import pytest
import torch

from benchmark import registry
from benchmark.tasks.base import SPLITS, Task

from .fixtures import build, write_chexpert

ATTRS = ("name", "kind", "modality", "metric", "in_chans", "num_classes", "image_size", "description", "source", "layout")


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_task_loads_disjoint_well_formed_splits(name, tmp_path):
    cls = registry.task_class(name)
    assert issubclass(cls, Task) and cls.name == name
    for attr in ATTRS:
        assert getattr(cls, attr) not in (None, ""), f"{name}.{attr} unset"
    assert cls.kind in ("segmentation", "binary", "multiclass", "multilabel")
    assert cls.metric == ("dice" if cls.kind == "segmentation" else "auc")
    task = cls(**build(name, tmp_path))
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
    pool = task.pretrain_images()  # pretraining never sees val/test: the training split, or a disjoint pool
    if pool is not task.load("train").images:
        held = {bytes(x.numpy()) for split in ("val", "test") for x in task.load(split).images}
        assert pool.dtype == torch.uint8 and pool.ndim == 4 and not held & {bytes(x.numpy()) for x in pool}


def test_cli_lists_every_task(monkeypatch):
    from rich.console import Console

    from benchmark.cli import info

    console = Console(width=400, record=True)
    monkeypatch.setattr(info, "console", console)
    info.tasks_command()
    text = console.export_text()
    for name in registry.TASKS:
        assert name in text
    assert len(registry.TASKS) >= 12


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_one_fine_tuning_epoch_runs_on_each_task(name, tmp_path):
    from benchmark.finetune import FinetuneConfig, finetune
    from tests.conftest import TINY_DECODER, TINY_ENCODER

    kwargs = build(name, tmp_path)
    if name == "chexpert":  # enough patients that the 5% validation carve holds both classes of every finding
        kwargs["data_root"] = write_chexpert(tmp_path / "big" / "CheXpert-v1.0-small", n_patients=200)
    task = registry.task_class(name)(**kwargs)
    cfg = FinetuneConfig(task=name, encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=1, batch_size=4,
                         lr=1e-3, eval_batch_size=8)
    record = finetune(cfg, task, progress=False)
    assert record["metric"] == task.metric and 0.0 <= record["value"] <= 100.0
    assert record["n_test"] == len(task.load("test")) and record["epochs_run"] == 1
