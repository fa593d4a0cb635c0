"""The one downstream protocol every initialisation goes through.

Segmentation: the U-Net from the init (its decoder too when the method trained one), pixel-wise
cross-entropy, Dice inside the field of view. Classification: the init's encoder plus a linear
head on pooled features, cross-entropy (BCE for multi-label), AUC as MedMNIST computes it.
Adam + cosine, early stopping on the validation metric, the best validation model scored once
on the full test split.
"""
from __future__ import annotations

import copy
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zoo import UNet, UNetConfig
from zoo.io import package_version, stable_hash

from . import registry
from .config import budget as get_budget
from .errors import TORCH_OOM, batch_too_large
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
    patience: int = 30
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
            raise ValueError(f"--label-fraction must be in (0, 1], got {self.label_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")

    @classmethod
    def from_budget(cls, budget: str, task: Task, task_name: str, **overrides) -> "FinetuneConfig":
        """The budget's fine-tuning sizes for ``task`` (its kind picks epochs, batch size and lr);
        ``overrides`` that are None are ignored."""
        b = get_budget(budget)
        optim = b.finetune_optim(task.kind)
        fields = dict(
            task=task_name, encoder=b.encoder, image_size=task.image_size, epochs=b.finetune_epochs(task.kind),
            batch_size=optim.batch_size, lr=optim.lr, patience=b.finetune_patience, budget=budget,
            decoder_channels=b.decoder_channels or cls.decoder_channels,
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


def _loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets.long())


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, kind: str, batch_size: int, device: torch.device) -> float:
    """The task's metric on the FULL split: every sample counts, no batch is dropped."""
    from .metrics import DiceAccumulator, auc

    model.eval()
    scores, dice = [], DiceAccumulator()
    for start in range(0, len(split), batch_size):
        x = split.images[start : start + batch_size].to(device).float().div_(255)
        logits = model(x)
        if kind == "segmentation":
            y = split.targets[start : start + batch_size].to(device)
            valid = None if split.valid is None else split.valid[start : start + batch_size].to(device)
            dice.update(logits.argmax(1), y, valid)
        else:
            scores.append(torch.sigmoid(logits) if kind == "multilabel" else logits.softmax(1))
    if kind == "segmentation":
        return dice.compute()
    return auc(torch.cat(scores).cpu(), split.targets, kind)


def _versions() -> dict:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__, "tower-bench": package_version(), "python": platform.python_version()}


def finetune(cfg: FinetuneConfig, task: Task | None = None, *, progress: bool = True,
             device: torch.device | None = None) -> dict:
    """Fine-tune one (init, seed, label fraction) and return its result record."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    start_time = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task = task or registry.task_class(cfg.task)(cfg.data_root, cfg.image_size)
    train, val, test = task.load("train"), task.load("val"), task.load("test")
    train = train.subset(label_subset(len(train), cfg.label_fraction, cfg.seed))
    model = build_model(cfg, task).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps_per_epoch)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    order_gen = torch.Generator().manual_seed(cfg.seed)

    curve: list[float] = []
    best, best_epoch, best_state = -math.inf, -1, None
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} ep"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    epoch = 0
    try:
        with Progress(*columns, disable=not progress, transient=True) as bar:
            job = bar.add_task(f"fine-tune {cfg.task} init={cfg.init} seed={cfg.seed}", total=cfg.epochs, info="")
            for epoch in range(cfg.epochs):
                model.train()
                order = torch.randperm(len(train), generator=order_gen)
                # one-sample batches break BatchNorm: fold a trailing single sample into the previous batch
                bounds = list(range(0, len(train), cfg.batch_size)) + [len(train)]
                if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
                    bounds.pop(-2)
                for lo, hi in zip(bounds[:-1], bounds[1:]):
                    idx = order[lo:hi]
                    x, y = train.images[idx], train.targets[idx]
                    if device.type == "cuda":  # page-locked, so the copies below really run asynchronously
                        x, y = x.pin_memory(), y.pin_memory()
                    x = x.to(device, non_blocking=True).float().div_(255)
                    y = y.to(device, non_blocking=True)
                    if cfg.augment:
                        x, y_aug = augment_batch(x, y if task.kind == "segmentation" else None, generator)
                        y = y_aug if task.kind == "segmentation" else y
                    loss = _loss(model(x), y, task.kind)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"fine-tuning loss is {loss.item()} at epoch {epoch} (init {cfg.init}); lower --lr")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                score = evaluate(model, val, task.kind, cfg.eval_batch_size, device)
                curve.append(score)
                if score > best:
                    best, best_epoch = score, epoch
                    best_state = copy.deepcopy(model.state_dict())
                bar.update(job, advance=1, info=f"val {task.metric} {score:.2f} (best {best:.2f} @ {best_epoch})")
                if epoch - best_epoch >= cfg.patience:
                    break
    except TORCH_OOM as err:  # the batch does not fit: name a smaller one instead of a CUDA traceback
        raise batch_too_large("fine-tuning", cfg.batch_size, f"epoch {epoch} on {device}") from err
    model.load_state_dict(best_state)
    value = evaluate(model, test, task.kind, cfg.eval_batch_size, device)
    return {
        "task": cfg.task, "init": cfg.init if cfg.init_decoder is None else f"{cfg.init}+{cfg.init_decoder}",
        "seed": cfg.seed, "label_fraction": cfg.label_fraction, "budget": cfg.budget,
        "config_hash": cfg.hash(), "config": cfg.to_dict(), "metric": task.metric, "value": value,
        "val_best": best, "curve": curve, "best_epoch": best_epoch, "epochs_run": len(curve),
        "n_train": len(train), "n_test": len(test), "wall_time_s": time.perf_counter() - start_time,
        "versions": _versions(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }
