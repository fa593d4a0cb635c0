
"""The weights folder on disk: which file holds what, the typed export info, and strict tensor loading.

Layout (``format`` 1)::

    config.json          timm's keys at the top level (architecture, num_classes=0, model_args,
                         pretrained_cfg) so ``timm.create_model("hf-hub:org/name", pretrained=True)``
                         builds the encoder without tower-bench; plus a ``tower_bench`` section
                         (``ExportInfo``: UNet config, method, pretraining protocol + hash, version)
    model.safetensors    the encoder, with timm's own key names (what timm loads)
    decoder.safetensors  ``decoder.*`` and ``head.*`` of the UNet
    README.md            model card with the downstream results as ``model-index``

Only safetensors are read or written: pickle files can run code when loaded.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import BadFileError
from .io import atomic_write, package_version, stable_hash
from .unet_config import UNetConfig

FORMAT = 1
CONFIG_FILE, ENCODER_FILE, DECODER_FILE = "config.json", "model.safetensors", "decoder.safetensors"
CARD_FILE = "README.md"
FILES = (CONFIG_FILE, ENCODER_FILE, DECODER_FILE, CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DECODER_PREFIXES = ("decoder.", "head.")
SAVED_BY = "expected the files UNet.save_pretrained writes"
RESULT_KEYS = ("task", "metric", "value")


def _jsonable(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be JSON-serialisable to go into {CONFIG_FILE}: {err}") from err


def _checked_results(results: list, what: str) -> tuple[dict, ...]:
    for i, r in enumerate(results):
        missing = sorted(set(RESULT_KEYS) - r.keys()) if isinstance(r, dict) else list(RESULT_KEYS)
        if missing:
            raise BadFileError(f"{what}[{i}] lacks {missing}; expected a JSON object with keys {', '.join(RESULT_KEYS)} "
                             "(+ std, n, dataset_name, protocol, label_fraction)")
    return tuple(results)


@dataclass(frozen=True)
class ExportInfo:
    """What a weights folder holds and how it was made: the ``tower_bench`` section of config.json.

    ``pretrain`` is the JSON-able pretraining protocol (task, config, health ...); its hash names it.
    ``results`` are downstream results such as ``{"task": "drive", "metric": "dice", "value": 80.1,
    "std": 0.4, "n": 10, "dataset_name": "DRIVE", "protocol": "finetune", "label_fraction": 1.0}``;
    the model card lists them as ``model-index``.
    """

    unet: dict  # the UNetConfig as a JSON object
    method: str | None = None
    trains_decoder: bool = False
    pretrain: dict = field(default_factory=dict)
    results: tuple[dict, ...] = ()
    version: str | None = None
    format: int = FORMAT
    encoder_only: bool = False  # a plain timm folder: its encoder, a fresh decoder

    @classmethod
    def create(cls, unet: dict, *, method: str | None = None, trains_decoder: bool = False,
               pretrain: dict | None = None, results: list[dict] | tuple[dict, ...] | None = None) -> "ExportInfo":
        """The info of weights saved now (this tower-bench version), its inputs checked."""
        results = _checked_results(_jsonable(list(results or []), "results"), "results")
        return cls(unet=dict(unet), method=method, trains_decoder=bool(trains_decoder),
                   pretrain=_jsonable(pretrain or {}, "pretrain"), results=results, version=package_version())

    @property
    def protocol_hash(self) -> str:
        return stable_hash(self.pretrain)

    @property
    def health(self) -> dict | None:
        """The health check pretraining ended with (None: exported without one)."""
        return self.pretrain.get("health")

    def to_dict(self) -> dict:
        d = {"format": self.format, "version": self.version, "unet": self.unet, "method": self.method,
             "trains_decoder": self.trains_decoder, "pretrain": self.pretrain, "protocol_hash": self.protocol_hash,
             "results": list(self.results)}
        return {**d, "encoder_only": True} if self.encoder_only else d

    @classmethod
    def from_dict(cls, tb: Any, where: str) -> "ExportInfo":
        """Read a ``tower_bench`` section; ``where`` names the file in errors."""
        fmt = tb.get("format", 0)
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise BadFileError(f"{where} has format {fmt}; expected format <= {FORMAT}: upgrade tower-bench")
        if not isinstance(tb.get("unet"), dict):
            raise BadFileError(f"{where}: 'tower_bench' section lacks 'unet'; expected the UNetConfig as a JSON object")
        for name, kind in (("pretrain", dict), ("results", list)):
            if not isinstance(tb.get(name) or kind(), kind):
                raise BadFileError(f"{where}: 'tower_bench.{name}' is a JSON {type(tb[name]).__name__}; expected "
                                 f"a JSON {'object' if kind is dict else 'array'} ({SAVED_BY})")
        results = _checked_results(tb.get("results") or [], f"{where}: 'tower_bench.results'")
        return cls(unet=tb["unet"], method=tb.get("method"), trains_decoder=bool(tb.get("trains_decoder", False)),
                   pretrain=tb.get("pretrain") or {}, results=results,
                   version=tb.get("version"), format=fmt, encoder_only=bool(tb.get("encoder_only", False)))

    @classmethod
    def from_timm(cls, config: dict, where: str) -> "ExportInfo":
        """The info of a plain timm folder: its encoder, a fresh default decoder."""
        model_args = dict(config.get("model_args") or {})
        in_chans = model_args.pop("in_chans", None) or (config.get("pretrained_cfg") or {}).get("input_size", [3])[0]
        unet = UNetConfig(encoder=config["architecture"], in_chans=in_chans, out_chans=in_chans,
                          encoder_kwargs=model_args)
        warnings.warn(f"{where} is a plain timm folder (no 'tower_bench' section): loading its encoder with a "
                      "fresh decoder")
        return cls(unet=unet.to_dict(), encoder_only=True)


def timm_config(net: nn.Module, input_size: int | None = None, tag: str | None = None) -> dict:
    """timm's top-level config.json keys, describing these weights as a plain classifier-less timm model.

    The ``pretrained_cfg`` is written for the weights, not copied from timm's ImageNet entry (224 px, bicubic,
    crop 0.95, ImageNet's URL and paper): the input size they were trained at, bilinear resizing, no crop, the
    normalisation the U-Net applies, and ``tag`` (the method). ``timm.data.resolve_data_config`` on an export then
    builds the transforms these weights expect.
    """
    cfg = net.config
    source = dict(getattr(net.encoder, "pretrained_cfg", None) or {})
    size = input_size or tuple(source.get("input_size", (3, 224, 224)))[-1]
    pretrained_cfg = {
        "tag": tag or "untrained",
        "custom_load": False,
        "input_size": [cfg.in_chans, size, size],
        "fixed_input_size": False,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "center",
        # The exact per-channel statistics UNet normalises with, so timm's data config matches.
        "mean": net.mean.flatten().tolist(),
        "std": net.std.flatten().tolist(),
        "num_classes": 0,
        **{k: source[k] for k in ("first_conv", "classifier") if source.get(k)},
        "license": "mit",
        "description": "tower-bench export: see the tower_bench section and the model card",
    }
    return {
        "architecture": cfg.encoder,
        "num_classes": 0,
        "num_features": net.num_features,
        "global_pool": "avg",
        "model_args": {"in_chans": cfg.in_chans, **cfg.encoder_kwargs},
        "pretrained_cfg": pretrained_cfg,
    }


def config_json(timm_section: dict, info: ExportInfo) -> str:
    """config.json's text: timm's keys, then the ``tower_bench`` section."""
    return json.dumps({**{k: v for k, v in timm_section.items() if k != "tower_bench"},
                       "tower_bench": info.to_dict()}, indent=2) + "\n"


def read_config(path: Path, allow_encoder_only: bool) -> tuple[dict, ExportInfo]:
    """(the config.json dict, its export info); a plain timm config only with ``allow_encoder_only``."""
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path} is not valid JSON ({err}); {SAVED_BY}") from None
    if not isinstance(config, dict):
        raise BadFileError(f"{path} holds a JSON {type(config).__name__}; expected a JSON object ({SAVED_BY})")
    tb = config.get("tower_bench")
    if isinstance(tb, dict):
        return config, ExportInfo.from_dict(tb, str(path))
    if allow_encoder_only and "architecture" in config:
        return config, ExportInfo.from_timm(config, str(path.parent))
    hint = " (a plain timm export? allow_encoder_only=True loads its encoder with a fresh decoder)"
    raise BadFileError(f"{path} has no 'tower_bench' section: not a tower-bench folder ({SAVED_BY})"
                     + (hint if "architecture" in config else ""))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    # safetensors refuses tensors that share storage (tied weights, views): store independent copies.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))


def load_tensors(path: Path, what: str = "") -> dict[str, torch.Tensor]:
    """``load_file`` with a damaged or foreign file (a pickle, text, a cut download) named in one line."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise BadFileError(f"{what}{path}: not a readable safetensors file ({err}); expected a safetensors file "
                         "(pickles are refused: they can run code when loaded)") from None


def _some(keys: list[str], limit: int = 10) -> str:
    return ", ".join(keys[:limit]) + (f" ... and {len(keys) - limit} more" if len(keys) > limit else "")


def _foreign_dtype(own: torch.Tensor, loaded: torch.Tensor) -> bool:
    """Integer weights where the model has floats: a foreign or damaged file, not a cast to make silently."""
    return own.is_floating_point() and not loaded.is_floating_point()


def load_state(
    module: nn.Module, tensors: dict[str, torch.Tensor], where: str, strict: bool, prefixes: tuple[str, ...] = ()
) -> None:
    """Load ``tensors`` into ``module`` (only its keys under ``prefixes`` when given).

    Strict: any missing, unexpected or wrongly shaped key raises one ValueError listing them all.
    Otherwise the matching tensors load and the rest is reported in a warning.
    """
    own = {k: v for k, v in module.state_dict().items() if not prefixes or k.startswith(prefixes)}
    missing = sorted(own.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - own.keys())
    shared = sorted(own.keys() & tensors.keys())
    shapes = [f"{k} (file {tuple(tensors[k].shape)}, model {tuple(own[k].shape)})"
              for k in shared if tensors[k].shape != own[k].shape]
    dtypes = [f"{k} (file {tensors[k].dtype}, model {own[k].dtype})"
              for k in shared if _foreign_dtype(own[k], tensors[k])]
    if missing or unexpected or shapes or dtypes:
        parts = [f"{label}: {_some(keys)}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes),
                  ("dtype mismatches", dtypes)) if keys]
        msg = f"{where} does not match the model; " + "; ".join(parts)
        if strict:
            raise BadFileError(msg + " (strict=False loads the matching tensors only)")
        warnings.warn(msg + "; loaded the matching tensors only")
    matching = {k: v for k, v in tensors.items()
                if k in own and v.shape == own[k].shape and not _foreign_dtype(own[k], v)}
    module.load_state_dict(matching, strict=False)


def drop_classifier(tensors: dict[str, torch.Tensor],
                    classifier: str | tuple[str, ...] | None) -> dict[str, torch.Tensor]:
    """Remove a timm classifier's weights (``fc.*`` for ResNets): the U-Net encoder has none."""
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    return {k: v for k, v in tensors.items() if not k.startswith(tuple(f"{c}." for c in names))}
