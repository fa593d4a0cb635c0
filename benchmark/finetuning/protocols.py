"""The downstream protocols every initialisation goes through (``FinetuneConfig.protocol``).

``finetune`` (the paper). Segmentation: the U-Net from the init (its decoder too when the method
trained one), pixel-wise cross-entropy, Dice inside the field of view. Classification: the init's
encoder plus a linear head on pooled features, cross-entropy (BCE for multi-label), AUC as MedMNIST
computes it. Adam + cosine, early stopping on the validation metric, the best validation model
scored once on the full test split. ``linear`` and ``knn`` freeze the encoder (benchmark/finetuning/probe.py).
"""
from __future__ import annotations

import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from benchmark.core import registry
from benchmark.core.config import FinetuneConfig
from benchmark.finetuning.logistic import pixels_reference
from benchmark.finetuning.probe import probe
from benchmark.finetuning.scoring import evaluate, trivial_scores, validation
from benchmark.finetuning.training import image_batches, train_loop
from benchmark.tasks.base import Split, Task
from zoo import UNet, UNetConfig
from zoo.io import package_version, public_paths


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


def class_prior(split: Split, kind: str, num_classes: int) -> torch.Tensor:
    """Each class's share of the labelled training targets (segmentation: of the pixels inside the FOV)."""
    if kind == "segmentation":
        valid = torch.ones_like(split.targets, dtype=torch.bool) if split.valid is None else split.valid
        counts = torch.bincount(split.targets[valid].long(), minlength=num_classes).float()
    elif kind == "multilabel":
        return split.targets.float().mean(0).clamp(1e-4, 1 - 1e-4)
    else:
        counts = torch.bincount(split.targets.long(), minlength=max(num_classes, 2)).float()
    return (counts / counts.sum()).clamp_min(1e-4)


def init_head_to_prior(head: nn.Module, prior: torch.Tensor, kind: str) -> None:
    """Bias the fresh task head so that its first prediction is the class prior (Lin et al. 2017, RetinaNet's
    prior init): every init then starts from the prior instead of a 50/50 guess on every pixel."""
    with torch.no_grad():
        bias = torch.log(prior / (1 - prior)) if kind == "multilabel" else torch.log(prior)
        head.bias.copy_(bias - (0 if kind == "multilabel" else bias.mean()))


def build_model(cfg: FinetuneConfig, task: Task, prior: torch.Tensor | None = None) -> nn.Module:
    """The model to fine-tune, initialised from ``cfg.init`` (and ``cfg.init_decoder``).

    Parts an init did not train (an encoder-only method's decoder, the task head) start exactly as
    random init's do under the same seed, so inits differ only in what they pretrained. With
    ``cfg.head_init == "prior"`` the task head's bias starts at ``prior`` (``class_prior``), for every init alike.
    """
    from benchmark.finetuning.inits import init_seed, load_init

    torch.manual_seed(init_seed(cfg.init, cfg.seed))
    out_chans = task.num_classes if task.kind == "segmentation" else task.in_chans
    unet_cfg = UNetConfig(cfg.encoder, task.in_chans, out_chans, tuple(cfg.decoder_channels))
    net = load_init(cfg.init, unet_cfg, imagenet_weights=cfg.imagenet_weights)
    if task.kind != "segmentation":
        outputs = task.num_classes if task.kind in ("multiclass", "multilabel") else 2
        model = Classifier(net, outputs)
        head = model.fc
    else:
        if cfg.init_decoder is not None:
            net.decoder.load_state_dict(load_init(cfg.init_decoder, unet_cfg).decoder.state_dict())
        model, head = net, net.head
    if cfg.head_init == "prior" and prior is not None:
        init_head_to_prior(head, prior, task.kind)
    return model


def _versions() -> dict:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__, "tower-bench": package_version(),
            "python": platform.python_version()}


def finetune(cfg: FinetuneConfig, task: Task | None = None, *, progress: bool = True,
             device: torch.device | None = None) -> dict:
    """Fine-tune (or probe, ``cfg.protocol``) one (init, seed, label fraction) and return its result record."""
    start_time = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task = task or registry.make_task(cfg.task, cfg.data_root, cfg.image_size)
    cfg.check_task(task.kind)
    train, val, test = task.load("train"), task.load("val"), task.load("test")
    train = labelled_subset(train, cfg.label_fraction, cfg.seed)
    model = build_model(cfg, task, class_prior(train, task.kind, task.num_classes)).to(device)
    if cfg.fast:
        model = model.to(memory_format=torch.channels_last)
    if cfg.protocol == "finetune":
        trained = train_loop(cfg, model, len(train), image_batches(cfg, train, task.kind, device),
                             validation(cfg, val, task.kind, task.num_classes, train, device), task.kind, device,
                             progress)
        result = {**evaluate(model, test, task.kind, cfg.eval_batch_size, device, cfg.fast), **trained.record()}
    else:
        result = probe(cfg, model, task, train, val, test, device, progress)
    return {
        "task": cfg.task, "init": cfg.init if cfg.init_decoder is None else f"{cfg.init}+{cfg.init_decoder}",
        "seed": cfg.seed, "label_fraction": cfg.label_fraction, "budget": cfg.budget, "protocol": cfg.protocol,
        "config_hash": cfg.hash(), "config": public_config(cfg), "metric": task.metric, **result, "input": task.input_note,
        "trivial": trivial_scores(test, task.kind, task.num_classes, train),
        **({} if task.kind == "segmentation" else
           {"references": {"pixels": pixels_reference(train, val, test, task.kind, task.num_classes)}}),
        "pretrain_health": pretrain_health(cfg.init), "n_train": len(train),
        "n_train_images": len(set(train.sources)), "n_test": len(test),
        "wall_time_s": time.perf_counter() - start_time, "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
    }


def public_config(cfg: FinetuneConfig) -> dict:
    """The config as a record keeps it: unhashed paths that name this machine by their last name only."""
    return public_paths(cfg.to_dict())


def pretrain_health(init: str) -> dict | None:
    """The health check an init's pretraining ended with (None: random / ImageNet / a folder without one)."""
    if not (Path(init) / "config.json").is_file():
        return None
    from zoo.hub import load_config  # the validated reader build_model's load_init already went through

    return load_config(init, allow_encoder_only=True).health
