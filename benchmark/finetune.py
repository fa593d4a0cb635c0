"""The downstream protocols every initialisation goes through (``FinetuneConfig.protocol``).

``finetune`` (the paper). Segmentation: the U-Net from the init (its decoder too when the method
trained one), pixel-wise cross-entropy, Dice inside the field of view. Classification: the init's
encoder plus a linear head on pooled features, cross-entropy (BCE for multi-label), AUC as MedMNIST
computes it. Adam + cosine, early stopping on the validation metric, the best validation model
scored once on the full test split. ``linear`` and ``knn`` freeze the encoder (benchmark/probe.py).
"""
from __future__ import annotations

import copy
import itertools
import math
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from zoo import UNet, UNetConfig
from zoo.io import package_version

from . import registry
from .config import FinetuneConfig
from .errors import TORCH_OOM, batch_too_large
from .tasks.base import Split, Task


class Classifier(nn.Module):
    """Encoder of a U-Net plus a linear head on its pooled last feature map."""

    def __init__(self, net: UNet, num_outputs: int):
        super().__init__()
        self.net = net
        self.fc = nn.Linear(net.num_features, num_outputs)
        # the decoder is not part of a classifier: no gradient, no optimizer state
        net.decoder.requires_grad_(False)
        net.head.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net.forward_pooled(x))


def label_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """A fixed subset of the training split for each (seed, fraction): at least one sample."""
    k = max(1, math.ceil(fraction * n))
    g = torch.Generator().manual_seed(10_000 + seed)
    return torch.randperm(n, generator=g)[:k].sort().values


def labelled_subset(split: Split, fraction: float, seed: int) -> Split:
    """The training samples of a fixed ``fraction`` of the labelled images (``label_subset`` over images):
    with patches, a fraction of DRIVE's 16 images keeps every patch of the chosen images, so 12.5% means
    2 labelled images, not 16 patches from 16 images."""
    sources = list(dict.fromkeys(split.sources))
    chosen = {sources[i] for i in label_subset(len(sources), fraction, seed).tolist()}
    return split.subset(torch.tensor([i for i, s in enumerate(split.sources) if s in chosen]))


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


def build_model(cfg: FinetuneConfig, task: Task) -> nn.Module:
    """The model to fine-tune, initialised from ``cfg.init`` (and ``cfg.init_decoder``).

    Parts an init did not train (an encoder-only method's decoder, the task head) start exactly as
    random init's do under the same seed, so inits differ only in what they pretrained.
    """
    from zoo.hub import load_init

    torch.manual_seed(cfg.seed)
    out_chans = task.num_classes if task.kind == "segmentation" else task.in_chans
    unet_cfg = UNetConfig(cfg.encoder, task.in_chans, out_chans, tuple(cfg.decoder_channels))
    net = load_init(cfg.init, unet_cfg, imagenet_weights=cfg.imagenet_weights)
    if task.kind != "segmentation":
        outputs = task.num_classes if task.kind in ("multiclass", "multilabel") else 2
        return Classifier(net, outputs)
    if cfg.init_decoder is not None:
        net.decoder.load_state_dict(load_init(cfg.init_decoder, unet_cfg).decoder.state_dict())
    return net


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


@torch.no_grad()
def predict(model: nn.Module, split: Split, kind: str, batch_size: int, device: torch.device,
            fast: bool = False) -> torch.Tensor:
    """Predictions on the FULL split, on the CPU: segmentation class maps (N, H, W), else scores."""
    model.eval()
    out = []
    for start in range(0, len(split), batch_size):
        x = split.images[start : start + batch_size].to(device).float().div_(255)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            logits = model(x.contiguous(memory_format=torch.channels_last) if fast else x).float()
        out.append((logits.argmax(1).to(torch.uint8) if kind == "segmentation" else to_scores(logits, kind)).cpu())
    return torch.cat(out)


def to_scores(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Classification logits -> the probabilities AUC is computed on (sigmoid per label, else softmax)."""
    return torch.sigmoid(logits) if kind == "multilabel" else logits.softmax(1)


def score(pred: torch.Tensor, split: Split, kind: str) -> dict:
    """The task's metric of predictions on a split: every sample counts, no batch is dropped.

    Segmentation: Dice as the paper reports it, the mean over images (``value``); the Dice pooled
    over all pixels, each image's Dice and the predicted foreground share inside the FOV beside it.
    """
    from .metrics import auc, dice, dice_per_image

    if kind != "segmentation":
        return {"value": auc(pred, split.targets, kind)}
    target = split.targets != 0
    fg = pred != 0
    per_image = dice_per_image(fg, target, split.valid)
    valid = torch.ones_like(fg) if split.valid is None else split.valid
    return {"value": float(per_image.nanmean()), "value_pooled": dice(fg, target, split.valid),
            "per_image": [round(float(v), 4) for v in per_image],
            "fg_fraction": float((fg & valid).sum() / valid.sum())}


def evaluate(model: nn.Module, split: Split, kind: str, batch_size: int, device: torch.device,
             fast: bool = False) -> dict:
    return score(predict(model, split, kind, batch_size, device, fast), split, kind)


def trivial_scores(split: Split, kind: str, num_classes: int, train: Split) -> dict[str, float]:
    """What predictors that look at no image score on ``split``: the floor every init must clear.

    Segmentation: everything inside the FOV foreground, or everything background. Classification:
    the training class prior as every sample's score (AUC 50 by construction; computed, not assumed).
    """
    if kind == "segmentation":
        valid = torch.ones_like(split.targets, dtype=torch.bool) if split.valid is None else split.valid
        out = {"all-foreground": score(valid.to(torch.uint8), split, kind)["value"]}
        background = score(torch.zeros_like(split.targets), split, kind)["value"]
        out["all-background"] = 0.0 if math.isnan(background) else background
        return out
    if kind == "multilabel":
        prior = train.targets.float().mean(0)
    else:
        prior = torch.bincount(train.targets.long(), minlength=max(num_classes, 2)).float()
        prior = prior / prior.sum()
    return {"class-prior": score(prior.expand(len(split), -1).clone(), split, kind)["value"]}


def _versions() -> dict:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__, "tower-bench": package_version(),
            "python": platform.python_version()}


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
    """The fine-tuning run in optimizer steps: how long, how often validation looks, when it may stop."""

    steps_per_epoch: int
    total: int
    eval_every: int
    patience: int
    stop_after: int

    @classmethod
    def of(cls, cfg: FinetuneConfig, n_train: int) -> "Schedule":
        per_epoch = len(batch_bounds(n_train, cfg.batch_size)) - 1
        total = max(cfg.epochs * per_epoch, cfg.min_steps)
        every = max(per_epoch, cfg.eval_every)
        return cls(per_epoch, total, every, max(cfg.patience * per_epoch, cfg.patience_steps), cfg.stop_after)

    def evaluates(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.total

    def stops(self, step: int, best_step: int) -> bool:
        return step - best_step >= self.patience and step >= self.stop_after


@dataclass
class Trained:
    """What the training loop leaves: the validation curve, where it peaked, how long it ran."""

    plan: Schedule
    best: float
    best_step: int
    steps: int
    curve: list[float]
    curve_steps: list[int]

    def record(self) -> dict:
        per_epoch = self.plan.steps_per_epoch
        return {"val_best": self.best, "curve": self.curve, "curve_steps": self.curve_steps,
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


def train_loop(cfg: FinetuneConfig, model: nn.Module, n_train: int, batch: Batch,
               validate: Callable[[nn.Module], float], kind: str, device: torch.device, progress: bool) -> Trained:
    """Adam + cosine on ``model``'s trainable parameters, validated on the schedule, stopped early; ``model``
    ends in its best validation state. Shared by fine-tuning and the linear probes (``batch`` feeds it)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .schedule import cosine_lr

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    plan = Schedule.of(cfg, n_train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, plan.total, cfg.warmup_steps))
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
                    raise FloatingPointError(f"fine-tuning loss is {loss.item()} at step {step + 1} "
                                             f"(init {cfg.init}); lower --lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                if not plan.evaluates(step):
                    continue
                value = validate(model)
                model.train()
                curve.append(value)
                curve_steps.append(step)
                if value > best:
                    best, best_step = value, step
                    best_state = copy.deepcopy(model.state_dict())
                bar.update(job, completed=step, info=f"val {value:.2f} (best {best:.2f} @ step {best_step})")
                if plan.stops(step, best_step):
                    break
    except TORCH_OOM as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        raise batch_too_large("fine-tuning", cfg.batch_size, f"step {step + 1} on {device}") from err
    model.load_state_dict(best_state)
    return Trained(plan, best, best_step, step, curve, curve_steps)


def finetune(cfg: FinetuneConfig, task: Task | None = None, *, progress: bool = True,
             device: torch.device | None = None) -> dict:
    """Fine-tune (or probe, ``cfg.protocol``) one (init, seed, label fraction) and return its result record."""
    start_time = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task = task or registry.make_task(cfg.task, cfg.data_root, cfg.image_size)
    cfg.check_task(task.kind)
    train, val, test = task.load("train"), task.load("val"), task.load("test")
    train = labelled_subset(train, cfg.label_fraction, cfg.seed)
    model = build_model(cfg, task).to(device)
    if cfg.fast:
        model = model.to(memory_format=torch.channels_last)
    if cfg.protocol == "finetune":
        def validate(m: nn.Module) -> float:
            return evaluate(m, val, task.kind, cfg.eval_batch_size, device, cfg.fast)["value"]

        trained = train_loop(cfg, model, len(train), image_batches(cfg, train, task.kind, device), validate,
                             task.kind, device, progress)
        result = {**evaluate(model, test, task.kind, cfg.eval_batch_size, device, cfg.fast), **trained.record()}
    else:
        from .probe import probe

        result = probe(cfg, model, task, train, val, test, device, progress)
    return {
        "task": cfg.task, "init": cfg.init if cfg.init_decoder is None else f"{cfg.init}+{cfg.init_decoder}",
        "seed": cfg.seed, "label_fraction": cfg.label_fraction, "budget": cfg.budget, "protocol": cfg.protocol,
        "config_hash": cfg.hash(), "config": cfg.to_dict(), "metric": task.metric, **result, "input": task.input_note,
        "trivial": trivial_scores(test, task.kind, task.num_classes, train),
        "pretrain_health": pretrain_health(cfg.init), "n_train": len(train),
        "n_train_images": len(set(train.sources)), "n_test": len(test),
        "wall_time_s": time.perf_counter() - start_time, "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
    }


def pretrain_health(init: str) -> dict | None:
    """The health check an init's pretraining ended with (None: random / ImageNet / a folder without one)."""
    if not (Path(init) / "config.json").is_file():
        return None
    from zoo.hub import load_config  # the validated reader build_model's load_init already went through

    return load_config(init, allow_encoder_only=True)["tower_bench"]["pretrain"].get("health")
