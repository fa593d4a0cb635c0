"""Typed run configurations and the named budgets (smoke / cpu / paper), kept in one place.

A configuration is printed at the start of a run, stored with its outputs and hashed, so a
published weight or leaderboard row names exactly what produced it. Fields that cannot change
the result (where files go, thread counts, checkpoint cadence) stay out of the hash.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from benchmark.core.hardware import bf16_native
from benchmark.core.names import did_you_mean
from benchmark.errors import ConfigError, UnknownNameError
from zoo.io import stable_hash

if TYPE_CHECKING:
    from benchmark.tasks.base import Task


@dataclass(frozen=True)
class Optim:
    """Batch size (global, over all ranks) and peak learning rate of one phase."""

    batch_size: int
    lr: float


@dataclass(frozen=True)
class Budget:
    """How big a run is. Same code for every budget, only these numbers change.

    The paper tunes batch size and lr by task kind (PAPER.md: Adam + cosine; pretraining batch
    128 / lr 1e-3 for classification, batch 32 / lr 1e-2 for segmentation), hence two ``Optim``s.
    Fine-tuning fields belong here too (added by the fine-tune protocol) so that a budget name
    means the same sizes for both phases.
    """

    name: str
    description: str
    encoder: str
    decoder_channels: tuple[int, ...] | None  # None: UNet's default
    image_size: int | None  # None: the task's own input size
    pretrain_epochs: int
    pretrain_classification: Optim
    pretrain_segmentation: Optim
    pretrain_min_steps: int = 0  # a floor for tiny data sets (DRIVE: 20 images = 1 step per epoch)
    pretrain_max_steps: int | None = None
    pretrain_warmup_steps: int = 0
    # Fine-tuning (PAPER.md): classification lr 2e-4, 100 epochs; segmentation lr 1e-3, 200 epochs;
    # early stopping with patience 30 on the validation metric, pixel-wise cross-entropy.
    finetune_epochs_classification: int = 100
    finetune_epochs_segmentation: int = 200
    finetune_patience: int = 30  # epochs; counted in steps, never below finetune_patience_steps
    finetune_classification: Optim = Optim(128, 2e-4)
    finetune_segmentation: Optim = Optim(32, 1e-3)
    # Step floors, so that tiny training splits are trained, checked and stopped in steps, not epochs
    # (DRIVE at batch 32 is one step per epoch: patience 30 would mean 30 updates). See FinetuneConfig.
    finetune_min_steps: int = 0
    finetune_patience_steps: int = 0
    finetune_stop_after: int = 0
    finetune_eval_every: int = 0  # 0: once per epoch
    finetune_warmup_steps: int = 0
    finetune_plateau_share: float = 0.0  # see FinetuneConfig.plateau_share
    finetune_plateau_margin: float = 0.0
    finetune_loss: str = "ce"  # segmentation loss: "ce" (the paper) or "ce+dice"
    finetune_head_init: str = "default"  # the fresh task head's bias: "default" (PyTorch's) or "prior" (the class prior)
    finetune_selection: str = "beats-trivial"  # see FinetuneConfig.selection
    fast: bool = False  # both phases: bf16 autocast + channels_last where the device runs bf16 natively
    # Method hyper-parameters this budget sets (a variant's or the user's own still win); printed with
    # the budget and part of every run's hash.
    method_hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pretrain_optim(self, kind: str) -> Optim:
        return self.pretrain_segmentation if kind == "segmentation" else self.pretrain_classification

    def finetune_optim(self, kind: str) -> Optim:
        return self.finetune_segmentation if kind == "segmentation" else self.finetune_classification

    def finetune_epochs(self, kind: str) -> int:
        return self.finetune_epochs_segmentation if kind == "segmentation" else self.finetune_epochs_classification


CPU_PRETRAIN_STEPS = 500  # sized by the health check on synth-fundus (README, Measured)

BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        name="smoke", description="seconds on CPU: checks that everything runs, trains nothing useful",
        encoder="test_resnet", decoder_channels=(32, 32, 16, 16, 8), image_size=32,
        pretrain_epochs=1, pretrain_max_steps=2,
        pretrain_classification=Optim(8, 1e-3), pretrain_segmentation=Optim(8, 1e-3),
        finetune_epochs_classification=2, finetune_epochs_segmentation=2, finetune_patience=2,
        finetune_classification=Optim(8, 1e-3), finetune_segmentation=Optim(8, 1e-3),
    ),
    "cpu": Budget(
        name="cpu", description="minutes on a 2-core CPU: ResNet-18 U-Net with a slim decoder at 64 px (DRIVE: "
                                "native-resolution patches), bf16 where native; pretraining sized to pass the "
                                "health check, fine-tuning in steps with CE + Dice",
        encoder="resnet18", decoder_channels=(64, 32, 16, 16, 8), image_size=64,
        pretrain_epochs=1, pretrain_min_steps=CPU_PRETRAIN_STEPS, pretrain_max_steps=CPU_PRETRAIN_STEPS,
        pretrain_warmup_steps=20,
        # The paper's segmentation lr 1e-2 is tuned for long runs; a few hundred steps want less.
        pretrain_classification=Optim(16, 5e-3), pretrain_segmentation=Optim(16, 5e-3),
        finetune_epochs_classification=20, finetune_epochs_segmentation=20, finetune_patience=8,
        finetune_classification=Optim(32, 1e-3), finetune_segmentation=Optim(8, 1e-3),
        # Up to 1,000 steps, stopped by the plateau rule: the last quarter of the run (at least 80 steps) improved
        # the best validation check by at most 1 point (README, "Converged fine-tuning": at 200 steps every run
        # was still rising, and the ranking was one of speed).
        finetune_min_steps=1000, finetune_patience_steps=80, finetune_stop_after=200, finetune_eval_every=25,
        finetune_plateau_share=0.25, finetune_plateau_margin=1.0,
        finetune_warmup_steps=20, finetune_loss="ce+dice", fast=True,
        # A fresh head predicts 50/50 on every pixel, i.e. half the field of view as vessel; on some seeds the
        # run then sat at that all-vessel-like Dice (~20-27) for ~200 steps (the "seed collapse" of the 200-step
        # protocol). Starting the head's bias at the class prior leaves that phase within 50 steps, for every init
        # alike (README, "Converged fine-tuning").
        finetune_head_init="prior",
        # Colour jitter + greyscale keep the classic-augmentation methods at chance for the whole of a
        # short run on one-modality images (measured, see ClassicAugment.with_color_strength).
        method_hparams={m: {"color_strength": 0.0} for m in ("simclr", "byol", "moco")},
    ),
    "paper": Budget(
        name="paper", description="the paper's protocol: ResNet-50, task input size, Adam + cosine",
        encoder="resnet50", decoder_channels=None, image_size=None,
        # The paper gives no pretraining epochs. Our choice: 100 epochs (SimCLR/MoCo-style
        # schedules on data sets of this size), with a floor of 2,000 steps so that tiny
        # training splits (DRIVE: 20 images) still see a meaningful number of updates.
        pretrain_epochs=100, pretrain_min_steps=2000,
        pretrain_classification=Optim(128, 1e-3), pretrain_segmentation=Optim(32, 1e-2),
        # The paper's plain CE, epochs and patience 30; step floors so that DRIVE's 16 training images
        # (one step per epoch) still get 1,000 updates, 300 steps of patience and none before step 500.
        finetune_min_steps=1000, finetune_patience_steps=300, finetune_stop_after=500, finetune_eval_every=10,
        fast=True,
    ),
}


BUDGET_HELP = f"size preset: {', '.join(BUDGETS)} (benchmark/core/config.py)"


def budget(name: str | Budget) -> Budget:
    """The budget called ``name``; ``<budget>-<N>px`` is that budget at ``N`` px (``sized``). A resolved
    ``Budget`` is returned as it is, so callers that resolved it once pass it down instead of its name."""
    if isinstance(name, Budget):
        return name
    base, _, size = name.rpartition("-")
    if name not in BUDGETS and base in BUDGETS and size.endswith("px") and size[:-2].isdigit():
        return sized(BUDGETS[base], int(size[:-2]))
    if name not in BUDGETS:
        raise UnknownNameError(f"unknown budget {name!r}{did_you_mean(name, BUDGETS)}; valid budgets: "
                               f"{', '.join(BUDGETS)}, or one of them "
                               "at another input size as <budget>-<N>px (e.g. cpu-28px)")
    return BUDGETS[name]


def sized(b: Budget, image_size: int | None) -> Budget:
    """``b`` at ``image_size`` px, named ``<budget>-<N>px``: records and boards of other sizes never pool."""
    if image_size is None or image_size == b.image_size:
        return b
    if image_size < 8:
        raise ConfigError(f"--image-size must be at least 8 px, got {image_size}")
    base = b.name if b.name in BUDGETS else b.name.rpartition("-")[0]
    return dataclasses.replace(b, name=f"{base}-{image_size}px", image_size=image_size,
                               description=f"{b.description}; at {image_size} px")


class HashedConfig:
    """A dataclass config whose hash names what it computes: every field but the ``UNHASHED`` ones."""

    UNHASHED: ClassVar[frozenset[str]] = frozenset()
    # Fields added after records existed, left out of the hash while they hold the value those records ran
    # with, so that every earlier hash still names its record.
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (tuples as lists, as they come back from a record)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def hashed_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items()
                if k not in self.UNHASHED and not (k in self.LEGACY_DEFAULTS and v == self.LEGACY_DEFAULTS[k])}

    def hash(self) -> str:
        return stable_hash(self.hashed_fields())

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclass
class PretrainConfig(HashedConfig):
    """One pretraining run. ``batch_size`` is global: split evenly over the ranks."""

    # Fields that change where or how fast a run goes, not what it computes.
    UNHASHED: ClassVar[frozenset[str]] = frozenset(
        {"out", "data_root", "checkpoint_every", "threads", "device", "deterministic"})
    # Runs made before revisions existed, and before the health check held out 512 candidates (it held out 64).
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"method_revision": 1, "health_holdout": 64}

    method: str = "tower"
    method_revision: int = 1  # the method's code revision (``PretrainMethod.revision``), filled in by resolve
    hparams: dict[str, Any] = field(default_factory=dict)  # method hyper-parameters
    task: str = "synth-fundus"
    data_root: str | None = None
    encoder: str = "resnet50"
    decoder_channels: tuple[int, ...] | None = None
    image_size: int | None = None  # None: the task's (or the given images') size
    epochs: int = 100
    min_steps: int = 0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warm-up, then cosine decay to 0
    seed: int = 0
    health_holdout: int = 512  # pool images the health check holds out (at most a quarter): its retrieval candidates
    bf16: bool | None = None  # None: on CUDA only
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False
    deterministic: bool = False
    checkpoint_every: int = 500  # steps; a checkpoint is also written at the end
    threads: int | None = None  # CPU threads per process; None: torch's default
    device: str | None = None  # None: cuda (the local rank's) when available, else cpu
    out: str | None = None  # None: runs/pretrain/<method>-<task>-<hash>

    def __post_init__(self) -> None:
        if self.decoder_channels is not None:
            self.decoder_channels = tuple(self.decoder_channels)
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"PretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"PretrainConfig.lr must be > 0, got {self.lr}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown PretrainConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def protocol(self) -> dict[str, Any]:
        """The fields that decide the result: hashed, and published with the weights (no local paths)."""
        return self.hashed_fields()

    @classmethod
    def from_budget(cls, name: str | Budget, kind: str, **overrides: Any) -> "PretrainConfig":
        """The budget's sizes for a task of ``kind``; ``overrides`` that are None are ignored."""
        b = budget(name)
        optim = b.pretrain_optim(kind)
        base = dict(
            encoder=b.encoder, decoder_channels=b.decoder_channels, image_size=b.image_size,
            epochs=b.pretrain_epochs, min_steps=b.pretrain_min_steps, max_steps=b.pretrain_max_steps,
            batch_size=optim.batch_size, lr=optim.lr, warmup_steps=b.pretrain_warmup_steps,
        )
        if b.fast and bf16_native():
            base.update(bf16=True, channels_last=True)
        base.update({k: v for k, v in overrides.items() if v is not None})
        base["hparams"] = {**b.method_hparams.get(base.get("method", cls.method), {}), **base.get("hparams", {})}
        return cls(**base)


LOSSES = ("ce", "ce+dice")
HEAD_INITS = ("default", "prior")
PROBE_REVISION = 2  # see FinetuneConfig.probe_revision
# Which validation checks may be selected, and when early stopping may fire: "best" (every check; records made
# before selection rules existed) or "beats-trivial" (early stopping waits until a check has beaten the trivial
# predictors on the validation split by TRIVIAL_MARGIN, so a run never stops on a model that looks at no image).
SELECTIONS = ("best", "beats-trivial")
TRIVIAL_MARGIN = 5.0  # points: what a board's seeds, and a check that early stopping may stop on, must beat the trivial rows by
# How a downstream task sees the init: the paper fine-tunes everything; a linear probe trains a head on the
# frozen encoder (segmentation: decoder and head); kNN trains nothing (classification only).
PROTOCOLS = ("finetune", "linear", "knn")
DEFAULT_PROTOCOL = PROTOCOLS[0]  # the paper's; a record or key without ``protocol`` (older records) ran it


@dataclass
class FinetuneConfig(HashedConfig):
    """One fine-tuning (or probing) run of one init, seed and label fraction."""

    # The hash names the protocol, not the run: seed, label fraction and where the data lives are left out.
    UNHASHED: ClassVar[frozenset[str]] = frozenset(
        {"seed", "label_fraction", "data_root", "eval_batch_size", "init", "init_decoder"})
    # Records made before protocols and selection rules existed have neither field.
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"protocol": DEFAULT_PROTOCOL, "selection": "best", "plateau_share": 0.0,
                                                 "plateau_margin": 0.0, "head_init": "default", "probe_revision": 1}

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
    # The plateau rule (training.Schedule): converged = the last plateau_share of the run (at least the patience)
    # improved the best validation check before it by at most plateau_margin points; 0: stop on patience alone.
    plateau_share: float = 0.0
    plateau_margin: float = 0.0
    warmup_steps: int = 0  # linear warm-up, then cosine decay to 0
    loss: str = "ce"  # "ce" (the paper) | "ce+dice" (segmentation: leaves the all-background prior fast)
    head_init: str = "default"  # the fresh task head: "default" (PyTorch's) | "prior" (bias = the class prior)
    # The frozen protocols (linear, knn) on classification. 1 (records made before it existed): BatchNorm statistics
    # as pretrained, an Adam-trained head on raw features; PROBE_REVISION (every budget): precise-BN on the training
    # split, the linear head an L-BFGS logistic regression on standardised features, its strength chosen on
    # validation (benchmark/finetuning/logistic.py).
    probe_revision: int = 1
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
    protocol: str = DEFAULT_PROTOCOL  # one of PROTOCOLS
    selection: str = "best"  # one of SELECTIONS; the budgets ask for "beats-trivial"

    def __post_init__(self) -> None:
        self.decoder_channels = tuple(self.decoder_channels)
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"--label-fraction must be in (0, 1], got {self.label_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown fine-tuning loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown --protocol {self.protocol!r}; valid: {', '.join(PROTOCOLS)}")
        if self.head_init not in HEAD_INITS:
            raise ConfigError(f"unknown head init {self.head_init!r}; valid: {', '.join(HEAD_INITS)}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"unknown selection {self.selection!r}; valid: {', '.join(SELECTIONS)}")

    def check_task(self, kind: str) -> None:
        """Refuse a protocol the task's kind cannot run (before any data or model is loaded)."""
        if self.protocol == "knn" and kind == "segmentation":
            raise ConfigError(f"--protocol knn: {self.task} is a segmentation task and kNN votes one label per "
                             "image; use --protocol linear (frozen encoder, decoder and head trained) or finetune")

    @classmethod
    def from_budget(cls, b: str | Budget, task: "Task", task_name: str, **overrides: Any) -> "FinetuneConfig":
        """The budget's fine-tuning sizes for ``task`` (its kind picks epochs, batch size and lr);
        ``overrides`` that are None are ignored."""
        b = budget(b)
        optim = b.finetune_optim(task.kind)
        fields = dict(
            task=task_name, encoder=b.encoder, image_size=task.image_size, epochs=b.finetune_epochs(task.kind),
            batch_size=optim.batch_size, lr=optim.lr, patience=b.finetune_patience, budget=b.name,
            decoder_channels=b.decoder_channels or cls.decoder_channels, min_steps=b.finetune_min_steps,
            patience_steps=b.finetune_patience_steps, stop_after=b.finetune_stop_after,
            eval_every=b.finetune_eval_every, warmup_steps=b.finetune_warmup_steps,
            plateau_share=b.finetune_plateau_share, plateau_margin=b.finetune_plateau_margin,
            loss=b.finetune_loss if task.kind == "segmentation" else "ce", fast=b.fast and bf16_native(),
            selection=b.finetune_selection, head_init=b.finetune_head_init, probe_revision=PROBE_REVISION,
        )
        fields.update({k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items() if v is not None})
        if fields.get("protocol", "finetune") != "finetune" and task.kind != "segmentation":
            fields["augment"] = False  # the probes read features cached once per split: nothing to augment
        cfg = cls(**fields)
        cfg.check_task(task.kind)
        return cfg
