"""Pixel operations shared by TOWER and the baselines: input checks, seeded random draws, Bézier curves.

Every op takes float images in [0, 1] shaped (B, C, H, W) and a ``torch.Generator`` on the images'
device (or ``None`` for the global RNG), and runs batched on that device. ``tower.proxy`` (TOWER's
views) and ``baselines`` (Models Genesis, the classic augmentations) both draw from here, so the
intensity translation they share is one implementation.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .errors import ConfigError

__all__ = [
    "check_images", "check_generator", "rand", "uniform", "bernoulli", "randint",
    "BezierCurves", "sample_curves", "nonlinear_translation", "restore_translation", "FIXED_CURVES",
]

LUT_BINS = 2048  # lookup-table entries; nearest entry: error <= slope / (2 * (LUT_BINS - 1))
CURVE_SAMPLES = 2048  # t samples of the curve from which the lookup table is interpolated

# The fixed-curve mode's inner control points (x1, y1, x2, y2), like the reference code's three
# fixed curves: brighten (gamma < 1), darken (gamma > 1), S-shaped contrast stretch.
FIXED_CURVES = ((0.2, 0.5, 0.5, 0.9), (0.5, 0.1, 0.9, 0.5), (0.35, 0.0, 0.65, 1.0))


def check_generator(generator: torch.Generator | None, device: torch.device, name: str) -> None:
    """Random numbers are drawn on the images' device, so the generator must live there too."""
    if generator is not None and generator.device.type != device.type:
        raise ValueError(
            f"{name}: generator is on {generator.device} but images are on {device}; "
            f"create it with torch.Generator(device=images.device)"
        )


def check_images(images: Tensor, generator: torch.Generator | None, name: str) -> None:
    """Shared input checks: a clear message instead of a shape error deep inside a matmul."""
    if images.ndim != 4:
        raise ValueError(f"{name} expects images shaped (B, C, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} expects float images in [0, 1], got dtype {images.dtype}; divide uint8 images by 255")
    check_generator(generator, images.device, name)


def rand(generator: torch.Generator | None, *shape: int, device) -> Tensor:
    """U(0, 1) of the given shape from ``generator`` on ``device``."""
    return torch.rand(shape, generator=generator, device=device)


def uniform(generator: torch.Generator | None, low: float, high: float, *shape: int, device,
            dtype: torch.dtype = torch.float32) -> Tensor:
    """U(low, high) of the given shape from ``generator`` on ``device``."""
    return low + (high - low) * torch.rand(shape, generator=generator, device=device, dtype=dtype)


def bernoulli(generator: torch.Generator | None, p: float, n: int, device) -> Tensor:
    """(n,) bool, True with probability p (drawn even for p in {0, 1}, so the random stream and
    hence later draws do not depend on the probabilities)."""
    return torch.rand(n, generator=generator, device=device) < p


def randint(generator: torch.Generator | None, low: int, high: int, *shape: int, device) -> Tensor:
    """Integers uniform in [low, high] (inclusive, like ``random.randint``)."""
    u = torch.rand(shape, generator=generator, device=device)
    return low + (u * (high - low + 1)).long().clamp_max(high - low)


# ----------------------------------------------------------------------------------------------
# Nonlinear intensity translation (Bézier curves): TOWER's style change, Models Genesis' corruption
# ----------------------------------------------------------------------------------------------

class BezierCurves(NamedTuple):
    """One cubic Bézier intensity curve per sample.

    ``inner`` (B, 4) holds the inner control points (x1, y1, x2, y2) of the *increasing* curve
    P0=(0,0), P1, P2, P3=(1,1), with x1 <= x2 and y1 <= y2 so that x(t) and y(t) are both
    non-decreasing: then y(x) is monotonic, hence invertible. A sample with ``decreasing`` True
    uses the mirrored curve P0=(0,1), P3=(1,0), i.e. 1 - y(x).
    """

    inner: Tensor
    decreasing: Tensor

    def _xy(self, samples: int = CURVE_SAMPLES) -> tuple[Tensor, Tensor]:
        """x(t), y(t) of the increasing curves at ``samples`` values of t, each (B, samples)."""
        t = torch.linspace(0, 1, samples, device=self.inner.device, dtype=torch.float32)
        s = 1 - t
        b1, b2, b3 = 3 * s * s * t, 3 * s * t * t, t * t * t  # Bernstein weights; P0 contributes 0
        x1, y1, x2, y2 = self.inner.float().unbind(dim=1)
        x = x1[:, None] * b1 + x2[:, None] * b2 + b3
        y = y1[:, None] * b1 + y2[:, None] * b2 + b3
        # Rounding can break monotonicity by ~1 ulp; searchsorted needs sorted rows.
        return x.cummax(dim=1).values, y.cummax(dim=1).values

    def lut(self, bins: int = LUT_BINS, inverse: bool = False) -> Tensor:
        """Per-sample lookup table (B, bins): value at input k / (bins - 1)."""
        x, y = self._xy()
        if inverse:
            x, y = y, x
        return _resample_uniform(x, y, bins)

    def apply(self, images: Tensor, bins: int = LUT_BINS) -> Tensor:
        """Map every pixel of sample b (all channels) through curve b."""
        lut = self.lut(bins)
        lut = torch.where(self.decreasing[:, None], 1 - lut, lut)
        return _apply_lut(images, lut)

    def invert(self, translated: Tensor, bins: int = LUT_BINS) -> Tensor:
        """Restore the original images from ``apply``'s output (the curves are monotonic)."""
        lut = self.lut(bins, inverse=True)
        d = self.decreasing[:, None, None, None]
        return _apply_lut(torch.where(d, 1 - translated, translated), lut)


def _resample_uniform(xp: Tensor, fp: Tensor, bins: int) -> Tensor:
    """Batched ``np.interp(linspace(0, 1, bins), xp, fp)`` for rows of ``xp`` sorted in [0, 1].

    The insertion points of a uniform grid come from counting (a scatter-add and a cumsum,
    O(samples + bins)) instead of a binary search per grid point.
    """
    b, n = xp.shape
    first_bin_above = (xp * (bins - 1)).floor().long().clamp(0, bins - 2) + 1
    counts = torch.zeros(b, bins, dtype=torch.long, device=xp.device)
    counts.scatter_add_(1, first_bin_above, torch.ones_like(first_bin_above))
    hi = counts.cumsum(dim=1).clamp(1, n - 1)  # number of xp < grid value = searchsorted(xp, grid)
    lo = hi - 1
    u = torch.linspace(0, 1, bins, device=xp.device)
    x0, x1 = xp.gather(1, lo), xp.gather(1, hi)
    y0, y1 = fp.gather(1, lo), fp.gather(1, hi)
    w = ((u - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return y0 + w * (y1 - y0)


def _apply_lut(images: Tensor, lut: Tensor) -> Tensor:
    """Per-sample lookup (nearest entry) for the whole batch, as one flat ``index_select``.

    Sample b's pixels index row b of the flattened table (offset b * bins, int32 indices), so
    the whole batch is 4 passes over the pixels and 2 temporaries, with no int64 tensor the
    size of the images. Nearest rather than linear interpolation halves the passes; with 2048
    entries the error stays below a quarter of a uint8 grey level where the slope is <= 4.
    Out-of-range inputs are clamped to [0, 1] (per-row bounds), never read a neighbour's row.
    """
    b, bins = lut.shape
    row = torch.arange(b, device=lut.device, dtype=torch.float32).view(b, 1) * bins
    # float32 whatever the images' dtype: a float64 batch then picks exactly the entries its float32 copy does
    pos = torch.add(row + 0.5, images.reshape(b, -1).float(), alpha=bins - 1)
    idx = pos.clamp_(row, row + (bins - 1)).int()
    out = torch.index_select(lut.reshape(-1).to(pos.dtype), 0, idx.view(-1), out=pos.view(-1))
    return out.view(images.shape).to(images.dtype)


def sample_curves(batch: int, generator: torch.Generator | None = None, *, device: torch.device | str = "cpu",
                  p_decreasing: float = 0.5, curves: str = "random") -> BezierCurves:
    """Draw one curve per sample.

    ``curves="random"``: Models Genesis's sampling, the two inner control points uniform in the
    unit square, with their x and y sorted (order-preserving) so the curve is monotonic.
    ``curves="fixed"``: one of ``FIXED_CURVES`` per sample. Either way the curve is mirrored
    (decreasing) with probability ``p_decreasing``.
    """
    device = torch.device(device)
    check_generator(generator, device, "sample_curves")
    if not 0 <= p_decreasing <= 1:
        raise ConfigError(f"p_decreasing must be in [0, 1], got {p_decreasing}")
    if curves == "random":
        u = rand(generator, batch, 2, 2, device=device)  # (B, point, xy)
        u = u.sort(dim=1).values                           # x1 <= x2 and y1 <= y2
        inner = u.reshape(batch, 4)                        # (x1, y1, x2, y2)
    elif curves == "fixed":
        table = torch.tensor(FIXED_CURVES, device=device)
        pick = (rand(generator, batch, device=device) * len(FIXED_CURVES)).long().clamp_max(len(FIXED_CURVES) - 1)
        inner = table[pick]
    else:
        raise ConfigError(f"curves must be 'random' or 'fixed', got {curves!r}")
    decreasing = rand(generator, batch, device=device) < p_decreasing
    return BezierCurves(inner, decreasing)


def nonlinear_translation(images: Tensor, generator: torch.Generator | None = None, *,
                          p_decreasing: float = 0.5, curves: str = "random") -> Tensor:
    """Models Genesis / TOWER intensity translation: one random monotonic Bézier curve per sample.

    Float images in [0, 1], (B, C, H, W); the sample's curve is applied to all its channels.
    """
    check_images(images, None, "nonlinear_translation")
    cs = sample_curves(images.shape[0], generator, device=images.device, p_decreasing=p_decreasing, curves=curves)
    return cs.apply(images)


def restore_translation(translated: Tensor, curves: BezierCurves) -> Tensor:
    """Inverse of ``curves.apply``; exists to show (and test) that the translation is invertible."""
    check_images(translated, None, "restore_translation")
    return curves.invert(translated)
