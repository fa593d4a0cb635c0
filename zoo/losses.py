"""Self-supervised losses shared by all methods. Contrastive negatives come from every rank."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def _fp32(fn):
    """Run a loss in float32 with autocast off: under bf16 autocast a cosine similarity near 1 keeps
    ~3 significant digits, /tau=0.1 makes that a logit step of 0.04, noise enough to stall a contrastive
    loss at chance. The network stays in bf16; only the loss's few small matmuls run in fp32."""
    def wrapped(*tensors, **kwargs):
        device = next(t.device.type for t in tensors if isinstance(t, torch.Tensor))
        with torch.autocast(device, enabled=False):
            return fn(*(t.float() if isinstance(t, torch.Tensor) else t for t in tensors), **kwargs)

    wrapped.__doc__, wrapped.__name__, wrapped.__wrapped__ = fn.__doc__, fn.__name__, fn
    return wrapped


@_fp32
def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR): each of the 2N embeddings has its pair as positive, the other 2N-2 as negatives.

    ``z1[i]`` and ``z2[i]`` are two views of sample i. Under DDP the keys are gathered from all
    ranks (with gradient), so the mean over ranks equals the 1-process loss on the global batch.
    """
    if z1.shape != z2.shape:
        raise ValueError(f"info_nce needs two views of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = z1.shape[0]
    k1, k2 = gather_with_grad(z1), gather_with_grad(z2)
    total = k1.shape[0]
    queries = torch.cat([z1, z2])
    logits = queries @ torch.cat([k1, k2]).T / temperature
    own = rank() * n + torch.arange(n, device=z1.device)
    self_idx = torch.cat([own, own + total])
    positive_idx = torch.cat([own + total, own])
    rows = torch.arange(2 * n, device=z1.device)
    is_self = torch.zeros_like(logits, dtype=torch.bool)
    is_self[rows, self_idx] = True
    return F.cross_entropy(logits.masked_fill(is_self, float("-inf")), positive_idx)


@_fp32
def info_nce_with_negatives(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
                            temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE with one positive key per query and a shared bank of negatives (MoCo's queue).

    ``negatives`` (K, D) are treated as constants; query and key are L2-normalised here.
    """
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ F.normalize(negatives, dim=1).T
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


@_fp32
def cosine_regression(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL: 2 - 2 cos(p, z), the target carries no gradient."""
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=1)).mean()
