"""The learning-rate schedule both phases use: linear warm-up, then a half cosine to 0 (the paper: Adam + cosine)."""
from __future__ import annotations

import math


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak lr: linear warm-up over ``warmup`` steps, then a half cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))
