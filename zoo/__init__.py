"""Models and weights: the U-Net on timm encoders, shared self-supervised blocks, Hub I/O.

Names load on first use (PEP 562), so a torch-free submodule such as ``zoo.io`` (hashes, atomic
writes) imports without torch and timm: ``tower-bench --help`` and ``leaderboard`` use it.
"""
from __future__ import annotations

import importlib

# name -> submodule that defines it
_EXPORTS = {
    "GlobalBatchNorm": "distributed", "convert_sync_batchnorm": "distributed", "gather_with_grad": "distributed",
    "cosine_momentum": "ema", "ema_update": "ema", "frozen_copy": "ema",
    "MLPHead": "heads", "prediction_head": "heads", "projection_head": "heads",
    "ExportInfo": "export",
    "from_pretrained": "unet", "load_config": "hub", "push_to_hub": "hub", "save_pretrained": "hub",
    "cosine_regression": "losses", "info_nce": "losses", "info_nce_with_negatives": "losses",
    "PretrainMethod": "method",
    "UNet": "unet", "UNetConfig": "unet_config",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
