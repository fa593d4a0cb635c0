"""The one downstream protocol every initialisation goes through.

Segmentation: the U-Net from the init (its decoder too when the method trained one), pixel-wise
cross-entropy, Dice inside the field of view. Classification: the init's encoder plus a linear
head on pooled features, cross-entropy (BCE for multi-label), AUC as MedMNIST computes it.
Adam + cosine, early stopping on the validation metric, the best validation model scored once
on the full test split.
"""
from __future__ import annotations

import copy
import itertools
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from zoo import UNet, UNetConfig
from zoo.io import package_version, stable_hash

from . import registry
from .config import budget as get_budget
from .errors import ConfigError, NonFiniteLossError, batch_too_large, torch_oom
from .hardware import bf16_native
from .tasks.base import Split, Task


@dataclass
class FinetuneConfig:
    task: str
    init: str = "random"
    init_decoder: str | None = None  # segmentation only: take the decoder from another init
    encoder: str = "resnet50"
    image_size: int | None = None
    epochs: int = 100
    batch_size: int = 32
    lr: float = 2e-4
    weight_decay: float = 0.0
    patience: int = 30  # epochs without a better validation score, counted in steps (x steps per epoch)
    # Steps, so that a tiny training split (DRIVE: 16 images = 1 step per epoch) is not stopped after
    # a handful of updates, while the class prior is still all a model has learned:
    min_steps: int = 0  # train at least this many steps, whatever ``epochs`` says
    patience_steps: int = 0  # patience is at least this many steps
    stop_after: int = 0  # early stopping never fires before this step
    eval_every: int = 0  # validation once per epoch, but at most every this many steps (tiny splits)
    warmup_steps: int = 0  # linear warm-up, then cosine decay to 0
    loss: str = "ce"  # "ce" (the paper) | "ce+dice" (segmentation: leaves the all-background prior fast)
    fast: bool = False  # bf16 autocast + channels_last, where the device runs bf16 natively
    seed: int = 0
    label_fraction: float = 1.0
    augment: bool = True
    budget: str = "custom"
    data_root: str | None = None
    imagenet_weights: str | None = None
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    eval_batch_size: int = 64
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"--label-fraction must be in (0, 1], got {self.label_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown fine-tuning loss {self.loss!r}; valid: {', '.join(LOSSES)}")

    @classmethod
    def from_budget(cls, budget: str, task: Task, task_name: str, **overrides) -> "FinetuneConfig":
        """The budget's fine-tuning sizes for ``task`` (its kind picks epochs, batch size and lr);
        ``overrides`` that are None are ignored."""
        b = get_budget(budget)
        optim = b.finetune_optim(task.kind)
        fields = dict(
            task=task_name, encoder=b.encoder, image_size=task.image_size, epochs=b.finetune_epochs(task.kind),
            batch_size=optim.batch_size, lr=optim.lr, patience=b.finetune_patience, budget=budget,
            decoder_channels=b.decoder_channels or cls.decoder_channels, min_steps=b.finetune_min_steps,
            patience_steps=b.finetune_patience_steps, stop_after=b.finetune_stop_after,
            eval_every=b.finetune_eval_every, warmup_steps=b.finetune_warmup_steps,
            loss=b.finetune_loss if task.kind == "segmentation" else "ce", fast=b.fast and bf16_native(),
        )
        fields.update({k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items() if v is not None})
        return cls(**fields)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_channels"] = list(self.decoder_channels)
        return d

    def hash(self) -> str:
        """Names the protocol, not the run: seed, label fraction and where the data lives are left out."""
        d = self.to_dict()
        for key in ("seed", "label_fraction", "data_root", "eval_batch_size", "init", "init_decoder"):
            d.pop(key)
        return stable_hash(d)


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
    from .inits import load_init

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


LOSSES = ("ce", "ce+dice")


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
        if kind == "segmentation":
            out.append(logits.argmax(1).to(torch.uint8).cpu())
        else:
            out.append((torch.sigmoid(logits) if kind == "multilabel" else logits.softmax(1)).cpu())
    return torch.cat(out)


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


def finetune(cfg: FinetuneConfig, task: Task | None = None, *, progress: bool = True,
             device: torch.device | None = None) -> dict:
    """Fine-tune one (init, seed, label fraction) and return its result record."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .schedule import cosine_lr

    start_time = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task = task or registry.make_task(cfg.task, cfg.data_root, cfg.image_size)
    train, val, test = task.load("train"), task.load("val"), task.load("test")
    train = labelled_subset(train, cfg.label_fraction, cfg.seed)
    model = build_model(cfg, task).to(device)
    if cfg.fast:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    plan = Schedule.of(cfg, len(train))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, plan.total, cfg.warmup_steps))
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    seg = task.kind == "segmentation"

    curve: list[float] = []
    curve_steps: list[int] = []
    best, best_step, best_state = -math.inf, 0, None
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    step = 0
    try:
        with Progress(*columns, disable=not progress, transient=True) as bar:
            job = bar.add_task(f"fine-tune {cfg.task} init={cfg.init} seed={cfg.seed}", total=plan.total, info="")
            model.train()
            for idx in itertools.islice(epochs_of_batches(len(train), cfg.batch_size, order_gen), plan.total):
                x, y = train.images[idx], train.targets[idx]
                if device.type == "cuda":  # page-locked, so the copies below really run asynchronously
                    x, y = x.pin_memory(), y.pin_memory()
                x = x.to(device, non_blocking=True).float().div_(255)
                y = y.to(device, non_blocking=True)
                if cfg.augment:
                    x, y_aug = augment_batch(x, y if seg else None, generator)
                    y = y_aug if seg else y
                if cfg.fast:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.fast):
                    logits = model(x)
                loss = _loss(logits, y, task.kind, cfg.loss)
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
                value = evaluate(model, val, task.kind, cfg.eval_batch_size, device, cfg.fast)["value"]
                model.train()
                curve.append(value)
                curve_steps.append(step)
                if value > best:
                    best, best_step = value, step
                    best_state = copy.deepcopy(model.state_dict())
                bar.update(job, completed=step, info=f"val {task.metric} {value:.2f} (best {best:.2f} @ step {best_step})")
                if plan.stops(step, best_step):
                    break
    except torch_oom() as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        raise batch_too_large("fine-tuning", cfg.batch_size, f"step {step + 1} on {device}") from err
    model.load_state_dict(best_state)
    result = evaluate(model, test, task.kind, cfg.eval_batch_size, device, cfg.fast)
    return {
        "task": cfg.task, "init": cfg.init if cfg.init_decoder is None else f"{cfg.init}+{cfg.init_decoder}",
        "seed": cfg.seed, "label_fraction": cfg.label_fraction, "budget": cfg.budget,
        "config_hash": cfg.hash(), "config": cfg.to_dict(), "metric": task.metric, **result, "input": task.input_note,
        "trivial": trivial_scores(test, task.kind, task.num_classes, train),
        "val_best": best, "curve": curve, "curve_steps": curve_steps, "best_check": curve_steps.index(best_step),
        "best_step": best_step, "best_epoch": (best_step - 1) // plan.steps_per_epoch, "steps_run": step,
        "epochs_run": math.ceil(step / plan.steps_per_epoch), "steps_per_epoch": plan.steps_per_epoch,
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

    return load_config(init, allow_encoder_only=True).health
