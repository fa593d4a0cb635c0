"""The fine-tuning loop shared by full fine-tuning and the linear probes: batches, loss, schedule, early stopping.

Counted in optimizer steps (``Schedule``): a tiny training split gets several validation checks per
epoch's worth of steps, and early stopping never fires inside the class-prior phase.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.config import FinetuneConfig
from benchmark.errors import NonFiniteLossError, batch_too_large, torch_oom
from benchmark.tasks.base import Split


def augment_batch(images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator):
    """The paper's fine-tuning augmentations, batched: h/v/diagonal flips, intensity jitter, noise.

    Geometric transforms are applied to segmentation targets too. Each sample draws its own
    choices; the whole batch is transformed at once and selected with ``torch.where``.
    """
    b, dev = images.shape[0], images.device
    seg = targets is not None and targets.ndim == 3

    def pick(flag, a, b_):
        shape = (-1,) + (1,) * (a.ndim - 1)
        return torch.where(flag.view(shape), a, b_)

    r = torch.rand(b, 6, generator=generator, device=dev)
    for i, dims in enumerate(((-1,), (-2,))):
        flip = r[:, i] < 0.5
        images = pick(flip, images.flip(dims), images)
        if seg:
            targets = pick(flip, targets.flip(dims), targets)
    if images.shape[-1] == images.shape[-2]:
        diag = r[:, 2] < 0.5
        images = pick(diag, images.transpose(-1, -2), images)
        if seg:
            targets = pick(diag, targets.transpose(-1, -2), targets)
    contrast = (0.8 + 0.4 * r[:, 3]).view(-1, 1, 1, 1)
    brightness = (0.2 * r[:, 4] - 0.1).view(-1, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * contrast + mean + brightness
    noise = torch.randn(images.shape, generator=generator, device=dev) * (0.03 * r[:, 5]).view(-1, 1, 1, 1)
    return (images + noise).clamp(0, 1), targets


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the foreground classes, pooled over the batch (Milletari et al. 2016, V-Net).

    Cross-entropy alone first learns the class prior (all background: vessels are ~10% of the pixels),
    which early stopping then picks; the Dice term's gradient does not vanish there.
    """
    probs = logits.float().softmax(1)[:, 1:]
    onehot = F.one_hot(targets.long(), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1.0 - ((2 * inter + 1.0) / (denom + 1.0)).mean()


def _loss(logits: torch.Tensor, targets: torch.Tensor, kind: str, loss: str = "ce") -> torch.Tensor:
    if kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())
    ce = F.cross_entropy(logits.float(), targets.long())
    return ce + soft_dice_loss(logits, targets) if loss == "ce+dice" else ce


def batch_bounds(n: int, batch_size: int) -> list[int]:
    """Batch boundaries of one epoch; one-sample batches break BatchNorm, so a trailing single
    sample joins the previous batch."""
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    return bounds


def epochs_of_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Sample indices of every batch, epoch after epoch, each epoch a fresh permutation."""
    bounds = batch_bounds(n, batch_size)
    while True:
        order = torch.randperm(n, generator=generator)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            yield order[lo:hi]


@dataclass
class Schedule:
    """The fine-tuning run in optimizer steps: how long, how often validation looks, when it may stop.

    With ``plateau_share`` > 0 a run stops (after ``stop_after``) once the checks of its last window, the last
    ``plateau_share`` of the steps run but at least ``patience`` steps, improved the best check before that
    window by at most ``plateau_margin`` points: it has converged. A run that reaches ``total`` still improving
    by more did not converge, and its record says so. ``plateau_share`` = 0 is the older rule: stop ``patience``
    steps after the best check (records made before the plateau rule).
    """

    steps_per_epoch: int
    total: int
    eval_every: int
    patience: int
    stop_after: int
    plateau_share: float = 0.0
    plateau_margin: float = 0.0

    @classmethod
    def of(cls, cfg: FinetuneConfig, n_train: int) -> "Schedule":
        per_epoch = len(batch_bounds(n_train, cfg.batch_size)) - 1
        total = max(cfg.epochs * per_epoch, cfg.min_steps)
        every = max(per_epoch, cfg.eval_every)
        return cls(per_epoch, total, every, max(cfg.patience * per_epoch, cfg.patience_steps), cfg.stop_after,
                   cfg.plateau_share, cfg.plateau_margin)

    def evaluates(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.total

    def window(self, step: int) -> int:
        return max(self.patience, math.ceil(self.plateau_share * step))

    def gain(self, step: int, curve: list[float], curve_steps: list[int]) -> float:
        """How much the checks of the window ending at ``step`` improved on the best check before it (inf:
        no check before it yet)."""
        start = step - self.window(step)
        before = [v for v, s in zip(curve, curve_steps) if s <= start]
        inside = [v for v, s in zip(curve, curve_steps) if start < s <= step]
        if not before:
            return math.inf
        return max(inside, default=-math.inf) - max(before)

    def converged(self, step: int, best_step: int, curve: list[float], curve_steps: list[int]) -> bool:
        if self.plateau_share > 0:
            return self.gain(step, curve, curve_steps) <= self.plateau_margin
        return step - best_step >= self.patience

    def stops(self, step: int, best_step: int, curve: list[float], curve_steps: list[int]) -> bool:
        return step >= self.stop_after and self.converged(step, best_step, curve, curve_steps)


@dataclass
class Trained:
    """What the training loop leaves: the validation curve, where it peaked, how long it ran."""

    plan: Schedule
    best: float
    best_step: int
    steps: int
    curve: list[float]
    curve_steps: list[int]
    floor: float = -math.inf  # the validation score early stopping waited for (selection_floor)

    def record(self) -> dict:
        per_epoch = self.plan.steps_per_epoch
        floor = {} if self.floor == -math.inf else {"val_floor": self.floor, "val_beats_floor": self.best > self.floor}
        gain = self.plan.gain(self.steps, self.curve, self.curve_steps)
        return {"val_best": self.best, **floor,
                "converged": self.plan.converged(self.steps, self.best_step, self.curve, self.curve_steps),
                "plateau_gain": None if math.isinf(gain) else gain, "curve": self.curve, "curve_steps": self.curve_steps,
                "best_check": self.curve_steps.index(self.best_step), "best_step": self.best_step,
                "best_epoch": (self.best_step - 1) // per_epoch, "steps_run": self.steps,
                "epochs_run": math.ceil(self.steps / per_epoch), "steps_per_epoch": per_epoch}


Batch = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def image_batches(cfg: FinetuneConfig, train: Split, kind: str, device: torch.device) -> Batch:
    """Training sample indices -> (images in [0, 1], targets) on ``device``, augmented as the paper."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    seg = kind == "segmentation"

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = train.images[idx], train.targets[idx]
        if device.type == "cuda":  # page-locked, so the copies below really run asynchronously
            x, y = x.pin_memory(), y.pin_memory()
        x = x.to(device, non_blocking=True).float().div_(255)
        y = y.to(device, non_blocking=True)
        if cfg.augment:
            x, y_aug = augment_batch(x, y if seg else None, generator)
            y = y_aug if seg else y
        return (x.contiguous(memory_format=torch.channels_last) if cfg.fast else x), y

    return batch


@dataclass(frozen=True)
class Validation:
    """What a validation check does: ``score`` the model (higher is better), and the ``floor`` early stopping waits
    for the best check to beat (``scoring.validation`` builds both from a validation split)."""

    score: Callable[[nn.Module], float]
    floor: float = -math.inf


def train_loop(cfg: FinetuneConfig, model: nn.Module, n_train: int, batch: Batch, validation: Validation,
               kind: str, device: torch.device, progress: bool) -> Trained:
    """Adam + cosine on ``model``'s trainable parameters, validated on the schedule, stopped early; ``model``
    ends in its best validation state. Shared by fine-tuning and the linear probes (``batch`` feeds it).

    Early stopping waits until the best check beats ``validation.floor`` (``scoring.selection_floor``): a model
    that     first predicts near the trivial score and then falls into the class-prior phase must not be stopped on.
    Every check above the floor is better than every check below it, so the best check stays the selection.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from benchmark.core.schedule import adam_cosine

    plan = Schedule.of(cfg, n_train)
    optimizer, scheduler = adam_cosine([p for p in model.parameters() if p.requires_grad], cfg.lr,
                                       cfg.weight_decay, plan.total, cfg.warmup_steps)
    order_gen = torch.Generator().manual_seed(cfg.seed)

    curve: list[float] = []
    curve_steps: list[int] = []
    best, best_step, best_state = -math.inf, 0, None
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    step = 0
    try:
        with Progress(*columns, disable=not progress, transient=True) as bar:
            job = bar.add_task(f"{cfg.protocol} {cfg.task} init={cfg.init} seed={cfg.seed}", total=plan.total,
                               info="")
            model.train()
            for idx in itertools.islice(epochs_of_batches(n_train, cfg.batch_size, order_gen), plan.total):
                x, y = batch(idx)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.fast):
                    logits = model(x)
                loss = _loss(logits, y, kind, cfg.loss)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(f"fine-tuning loss is {loss.item()} at step {step + 1} "
                                             f"(init {cfg.init}); lower --lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                if not plan.evaluates(step):
                    continue
                value = validation.score(model)
                model.train()
                curve.append(value)
                curve_steps.append(step)
                if value > best:
                    best, best_step = value, step
                    best_state = copy.deepcopy(model.state_dict())
                bar.update(job, completed=step, info=f"val {value:.2f} (best {best:.2f} @ step {best_step})")
                if best > validation.floor and plan.stops(step, best_step, curve, curve_steps):
                    break
    except torch_oom() as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        raise batch_too_large("fine-tuning", cfg.batch_size, f"step {step + 1} on {device}") from err
    model.load_state_dict(best_state)
    return Trained(plan, best, best_step, step, curve, curve_steps, validation.floor)
