"""Projection and prediction MLPs on pooled encoder features (SimCLR, BYOL, MoCo v2, TOWER).

One class serves every method: they differ only in sizes, depth and where BatchNorm sits.
"""
from __future__ import annotations

from torch import nn


class MLPHead(nn.Sequential):
    """Linear -> [BN] -> ReLU, repeated, then a last Linear (optionally followed by BN)."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True, last_batch_norm: bool = False):
        if num_layers < 1:
            raise ValueError(f"MLPHead needs num_layers >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(dim, hidden_dim, bias=not batch_norm)]
            if batch_norm:
                layers += [nn.BatchNorm1d(hidden_dim)]
            layers += [nn.ReLU(inplace=True)]
            dim = hidden_dim
        layers += [nn.Linear(dim, out_dim)]
        if last_batch_norm:
            layers += [nn.BatchNorm1d(out_dim, affine=False)]
        super().__init__(*layers)


def projection_head(in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2) -> MLPHead:
    """SimCLR / TOWER projection: the paper's Linear(2048, 2048)-ReLU-Linear(2048, 128), with BN."""
    return MLPHead(in_dim, hidden_dim, out_dim, num_layers)


def prediction_head(dim: int = 256, hidden_dim: int = 4096) -> MLPHead:
    """BYOL predictor: maps the online projection onto the target's, same in and out size."""
    return MLPHead(dim, hidden_dim, dim, num_layers=2)
