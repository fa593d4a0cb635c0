"""Helpers every file-based task shares: safe image reading, resizing, fixed-seed splits.

Splits of data sets without an official one are drawn with fixed seeds (``SPLIT_SEED``), independent
of the run seed: the ten trials of the paper's protocol vary the initialisation, not the test set.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

from benchmark.tasks.base import DataError

SPLIT_SEED = 20240601  # fixed: the same split on every machine and for every run seed
T = TypeVar("T")


def layout_error(path: Path | str, problem: str, task) -> DataError:
    """One message shape for every bad input: what is wrong, where, and what was expected."""
    return DataError(f"{task.name}: {path}: {problem}\nexpected layout under --data-root:\n{task.layout}\n"
                     f"get the data from {task.source}")


def read_image(path: Path, task, mode: str | None = None, size: int | None = None,
               resample: int = Image.BILINEAR) -> np.ndarray:
    """Decode one image file fully (a truncated file fails here, not later) and optionally resize.

    ``mode`` converts ("L", "RGB"); 16-bit grey (12-bit X-ray PNGs) is scaled to 8 bits by its bit depth,
    not by PIL's clipping convert. Images are resized with ``resample`` (bilinear: PIL antialiases when
    shrinking), masks must pass ``Image.NEAREST``.
    """
    try:
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft(mode or img.mode, (size, size))  # decode JPEGs at a reduced scale: much faster
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.int64)
                bits = max(8, int(arr.max()).bit_length())
                img = Image.fromarray((np.clip(arr, 0, None) >> (bits - 8)).astype(np.uint8), "L")
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), resample)
            return np.asarray(img, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise layout_error(path, "file not found", task) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise layout_error(path, f"unreadable or truncated image ({err})", task) from None


def parallel_map(fn: Callable[[T], np.ndarray], items: Sequence[T]) -> list[np.ndarray]:
    """Decode many files on threads (PIL and zlib release the GIL); order preserved."""
    workers = min(8, os.cpu_count() or 1, max(1, len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def resize_images(images: torch.Tensor, size: int, chunk: int = 256) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear with antialiasing (area-like when shrinking)."""
    import torch
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images
    out = [F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
           .round_().clamp_(0, 255).to(torch.uint8) for c in images.split(chunk)]
    return torch.cat(out)


def resize_masks(masks: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) integer/bool -> (N, size, size), nearest neighbour: labels stay labels."""
    import torch
    import torch.nn.functional as F

    if masks.shape[-2:] == (size, size):
        return masks
    dtype = masks.dtype
    out = F.interpolate(masks[:, None].to(torch.uint8), size=(size, size), mode="nearest-exact")[:, 0]
    return out.to(dtype)


def to_nchw(arrays: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """Stack (H, W) or (H, W, C) uint8 arrays into an (N, C, H, W) uint8 tensor."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays) if not isinstance(arrays, np.ndarray) else arrays))
    if x.ndim == 3:
        return x[:, None].contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n items by fractions; every non-zero fraction gets at least one item when n allows."""
    counts = [int(round(n * f)) for f in fractions[:-1]]
    counts.append(n - sum(counts))
    if n >= sum(f > 0 for f in fractions):
        for i, f in enumerate(fractions):
            while f > 0 and counts[i] < 1:
                counts[int(np.argmax(counts))] -= 1
                counts[i] += 1
    if min(counts) < 0:
        raise ValueError(f"cannot split {n} items by {fractions}")
    return counts


def fixed_split(n: int, fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Indices 0..n-1 shuffled with a fixed seed and cut by fractions (train, val, test)."""
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum(_counts(n, fractions))[:-1]
    return [np.sort(p) for p in np.split(perm, cuts)]


def stratified_split(labels: Sequence[int], fractions: Sequence[float] = (0.7, 0.1, 0.2),
                     seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Like ``fixed_split`` but within each class, so every split keeps the class balance."""
    labels = np.asarray(labels)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for k, cls in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == cls)
        for i, idx in enumerate(fixed_split(len(members), fractions, seed + k)):
            parts[i].append(members[idx])
    return [np.sort(np.concatenate(p)) for p in parts]


def group_split(groups: Sequence[str], fractions: Sequence[float], seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Split items so that all items of one group (patient, CT volume) land in the same split."""
    groups = np.asarray(groups)
    uniq = np.unique(groups)  # sorted: independent of file-listing order
    parts = fixed_split(len(uniq), fractions, seed)
    return [np.flatnonzero(np.isin(groups, uniq[p])) for p in parts]


def find_root(root: Path, marker: str, nested: Sequence[str] = ()) -> Path:
    """Accept the data folder itself or its official parent (e.g. ``MontgomerySet/`` inside the zip)."""
    if (root / marker).exists():
        return root
    for sub in nested:
        if (root / sub / marker).exists():
            return root / sub
    return root
