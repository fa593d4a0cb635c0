"""No validation or test image reaches pretraining, and test images reach fine-tuning only once, at the end.

Each image of the toy task is constant and its value names it (train 1.., val 101.., test 201..), so
every tensor the methods and models see can be traced back to its split.
"""
import torch

from benchmark.core import registry
from benchmark.sweep.run import run
from benchmark.sweep.spec import Outputs, Sweep
from benchmark.tasks.base import Split, Task

BASE = {"train": 1, "val": 101, "test": 201}
COUNTS = {"train": 12, "val": 4, "test": 6}


class LeakCheck(Task):
    name, kind, modality, metric = "leak-check", "segmentation", "fundus", "dice"
    in_chans, num_classes, image_size = 3, 2, 32
    description = source = layout = "made in the test"

    def _load(self, split):
        n, s = COUNTS[split], self.image_size
        values = torch.arange(BASE[split], BASE[split] + n, dtype=torch.uint8)
        images = values.view(n, 1, 1, 1).expand(n, 3, s, s).contiguous()
        targets = torch.zeros(n, s, s, dtype=torch.uint8)
        targets[:, 8:20, 8:20] = 1
        return Split(images, targets, None, [f"{split}{v}" for v in values.tolist()])


def split_of(batch: torch.Tensor) -> set[str]:
    values = (batch[:, 0, 0, 0].float() * 255).round().long().tolist()
    return {next(k for k, b in BASE.items() if b <= v < b + COUNTS[k]) for v in values}


def test_pretraining_sees_train_only_and_test_is_scored_once_after_model_selection(monkeypatch, tmp_path):
    import benchmark.finetuning.protocols as finetune_module
    import benchmark.finetuning.training as training_module
    import tower.method
    import zoo.unet

    monkeypatch.setitem(registry.TASKS, "leak-check", f"{__name__}:LeakCheck")
    pretrain_seen: list[set] = []
    finetune_seen: list[set] = []
    views = tower.method.Tower.views
    forward = zoo.unet.UNet.forward

    def spy_views(self, images, generator=None):
        pretrain_seen.append(split_of(images))
        return views(self, images, generator)

    def spy_forward(self, x):
        finetune_seen.append(split_of(x))
        return forward(self, x)

    monkeypatch.setattr(tower.method.Tower, "views", spy_views)
    monkeypatch.setattr(zoo.unet.UNet, "forward", spy_forward)
    # augmentation changes intensities, which would hide where an image came from
    monkeypatch.setattr(training_module, "augment_batch", lambda x, y, g: (x, y))
    monkeypatch.chdir(tmp_path)
    run(Sweep.resolve("tower", "leak-check", "smoke", seeds=1), Outputs(tmp_path / "store", tmp_path / "lb", "test"))

    assert pretrain_seen and set().union(*pretrain_seen) == {"train"}
    first_test = next(i for i, s in enumerate(finetune_seen) if "test" in s)
    before, after = finetune_seen[:first_test], finetune_seen[first_test:]
    assert {"train", "val"} <= set().union(*before) and "test" not in set().union(*before)
    assert all(s == {"test"} for s in after)  # scored once, at the end, on the full split
    eval_batch = finetune_module.FinetuneConfig.eval_batch_size
    assert len(after) == -(-COUNTS["test"] // eval_batch)
