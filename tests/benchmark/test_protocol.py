"""The fine-tuning protocol cannot select a trivial model: a prior phase longer than the old patience.

A segmentation task with 4 training images is one optimizer step per epoch. Under plain cross-entropy
every init first learns the class prior (all background, Dice 0); epoch-level patience then stops the
run within a few updates and keeps whatever the first check saw. Counted in steps, with a floor before
early stopping may fire and a Dice term in the loss, the selected model segments.
"""
import torch

from benchmark.core.config import TRIVIAL_MARGIN
from benchmark.finetuning.protocols import FinetuneConfig, finetune
from benchmark.finetuning.training import Schedule
from benchmark.tasks.base import Split, Task
from tests.conftest import TINY_DECODER, TINY_ENCODER

COUNTS = {"train": 4, "val": 4, "test": 8}


class PriorTrap(Task):
    """Dark noisy images with a few bright discs (~10% of the pixels) to segment."""

    name, kind, modality, metric = "prior-trap", "segmentation", "fundus", "dice"
    in_chans, num_classes, image_size = 3, 2, 32
    description = source = layout = "made in the test"

    def _load(self, split):
        n, s = COUNTS[split], self.image_size
        g = torch.Generator().manual_seed({"train": 1, "val": 2, "test": 3}[split])
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        masks = torch.zeros(n, s, s, dtype=torch.bool)
        for i in range(n):
            for cy, cx in torch.randint(5, s - 5, (3, 2), generator=g).tolist():
                masks[i] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 5
        images = 0.2 + 0.1 * torch.rand(n, 3, s, s, generator=g) + 0.5 * masks[:, None]
        return Split((images * 255).to(torch.uint8), masks.to(torch.uint8), torch.ones(n, s, s, dtype=torch.bool))


def config(**protocol):
    return FinetuneConfig(task="prior-trap", encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=200,
                          batch_size=8, lr=1e-2, augment=False, seed=0, **protocol)


def test_step_counted_patience_selects_a_model_that_beats_the_trivial_row():
    task = PriorTrap()
    old = finetune(config(patience=2), task, progress=False)  # the old protocol: 2 epochs = 2 steps here
    new = finetune(config(patience=2, patience_steps=60, stop_after=100, loss="ce+dice"), task, progress=False)
    floor = max(old["trivial"].values())
    assert old["steps_per_epoch"] == 1 and old["steps_run"] <= 10
    assert old["value"] < floor + TRIVIAL_MARGIN, old  # stopped inside the prior phase
    assert new["steps_run"] >= 100 and new["best_step"] > old["steps_run"]
    assert new["value"] > floor + TRIVIAL_MARGIN, new
    truth = float(task.load("test").targets.float().mean())
    assert 0.5 * truth < new["fg_fraction"] < 2 * truth  # neither all background nor all vessel


def test_schedule_counts_patience_in_steps_with_floors():
    cfg = FinetuneConfig(task="t", epochs=200, batch_size=32, patience=30, patience_steps=300, stop_after=500,
                         min_steps=1000, eval_every=10)
    tiny = Schedule.of(cfg, 16)  # DRIVE at the paper budget: one step per epoch
    assert (tiny.steps_per_epoch, tiny.total, tiny.eval_every, tiny.patience) == (1, 1000, 10, 300)
    no_curve: tuple[list, list] = ([], [])  # the patience rule (plateau_share 0) reads only the best step
    assert not tiny.stops(400, 50, *no_curve) and tiny.stops(500, 150, *no_curve)
    assert not tiny.stops(500, 250, *no_curve)
    assert tiny.evaluates(10) and not tiny.evaluates(11) and tiny.evaluates(1000)
    big = Schedule.of(cfg, 32 * 700)  # a big split keeps the paper's epochs, patience and checks per epoch
    assert (big.total, big.eval_every, big.patience) == (200 * 700, 700, 30 * 700)
    per_epoch = Schedule.of(FinetuneConfig(task="t", batch_size=8), 33)  # 0: once per epoch; 33 = 4 batches
    assert per_epoch.steps_per_epoch == 4 and per_epoch.eval_every == 4


def _scripted_run(values, floor):
    """train_loop on a throw-away linear model whose validation scores are ``values``, one per check."""
    import math

    from benchmark.finetuning.training import Validation, train_loop

    scores = iter(values)
    model = torch.nn.Linear(2, 2)
    cfg = FinetuneConfig(task="t", epochs=len(values), batch_size=4, lr=1e-3, patience=1, patience_steps=2,
                         stop_after=2, augment=False)
    batch = lambda idx: (torch.randn(len(idx), 2), torch.zeros(len(idx), dtype=torch.long))  # noqa: E731
    checks = Validation(lambda m: next(scores), floor if floor is not None else -math.inf)
    return train_loop(cfg, model, 4, batch, checks, "multiclass", torch.device("cpu"), False)


def test_early_stopping_waits_for_a_check_that_beats_the_trivial_predictor():
    """A near-trivial first check (a model that marks everything vessel), then the all-background phase:
    stopping on patience alone keeps the first check; with the floor the run goes on until it segments."""
    values = [22.0, 0.0, 0.0, 0.0, 0.0, 0.0, 31.0, 45.0, 44.0, 43.0, 42.0, 41.0]
    plain = _scripted_run(values, None)
    assert (plain.best_step, plain.steps) == (1, 3) and "val_floor" not in plain.record()
    floored = _scripted_run(values, 22.5 + TRIVIAL_MARGIN)
    assert (floored.best, floored.best_step, floored.steps) == (45.0, 8, 10)  # stopped by patience after the peak
    assert floored.record()["val_floor"] == 27.5 and floored.record()["val_beats_floor"]
    never = _scripted_run([10.0, 5.0, 8.0, 3.0], 27.5)  # no check beats it: trained to the end, best kept, said so
    assert (never.best, never.steps) == (10.0, 4) and never.record()["val_beats_floor"] is False


def test_budgets_select_above_the_trivial_row_and_old_records_keep_their_hash():
    from benchmark.core.config import BUDGETS

    task = PriorTrap()
    assert {FinetuneConfig.from_budget(b, task, "prior-trap").selection for b in BUDGETS} == {"beats-trivial"}
    old = config()
    assert old.selection == "best" and "selection" not in old.hashed_fields()
    assert config(selection="beats-trivial").hash() != old.hash()
