"""TOWER's knowledge-based reconstructive proxy tasks, batched on the images' device.

Every function is a pure function of ``(images, generator)``: float images in [0, 1] shaped
(B, C, H, W), and a ``torch.Generator`` on the images' device (or ``None`` for the global RNG).
Nothing loops over samples in Python and nothing goes through numpy, so the view of a batch of
128 costs about as much as one elementwise op over it, not ~20 s as in per-sample numpy code.

- ``nonlinear_translation``: a monotonic cubic Bézier intensity curve per sample (style).
- ``rays_mask`` / ``stripes_mask`` / ``blocks_mask``: anatomy-shaped masks, 1 = keep (structure).
- ``make_view``: the hybrid scheme (translation, masking, or both per sample) with the
  per-modality defaults of ``ProxyConfig.for_modality``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ConfigError
from zoo.image_ops import (
    FIXED_CURVES,
    BezierCurves,
    check_images,
    nonlinear_translation,
    rand,
    restore_translation,
    sample_curves,
)

__all__ = [
    "BezierCurves", "FIXED_CURVES", "sample_curves", "nonlinear_translation", "restore_translation",
    "brightest_point", "default_thickness", "rays_mask", "stripes_mask", "blocks_mask", "MASKS",
    "ProxyConfig", "MODALITY_MASKS", "make_view",
]


# ----------------------------------------------------------------------------------------------
# Knowledge-based masks (B, 1, H, W), True / 1 = keep: bool for stripes and blocks (whole cells), float
# keep-weights in [0, 1] for rays (anti-aliased lines)
# ----------------------------------------------------------------------------------------------

BLUR_SIZE = 64  # the brightest point is searched on an area-downsampled copy about this large


def brightest_point(images: Tensor, disc_fraction: float = 0.125) -> Tensor:
    """(B, 2) (row, col) pixel coordinates of the brightest point after blurring.

    On fundus photographs this is the optic disc, where the vessels emanate from. The image is
    area-downsampled to ~64 px (O(HW)), then box-blurred with a disc-sized window
    (``disc_fraction`` of the image size: the disc is ~1/7 of DRIVE's field of view), so the
    cost does not grow with the window and small bright specks do not win.
    """
    check_images(images, None, "brightest_point")
    grey = images.float().mean(dim=1, keepdim=True)
    h, w = grey.shape[-2:]
    s = max(1, min(h, w) // BLUR_SIZE)
    if s > 1:
        grey = F.avg_pool2d(grey, s, s, ceil_mode=True)
    k = max(1, round(disc_fraction * min(grey.shape[-2:]))) | 1  # odd window
    p = k // 2
    # Box blur from an integral image: O(HW) whatever the window. Zero padding favours the
    # interior, where the disc is, over bright borders.
    integral = F.pad(grey, (p + 1, p, p + 1, p)).cumsum(-1).cumsum(-2)
    blurred = (integral[..., k:, k:] - integral[..., :-k, k:] - integral[..., k:, :-k] + integral[..., :-k, :-k])
    sw = blurred.shape[-1]
    idx = blurred.flatten(1).argmax(dim=1)
    rc = torch.stack([idx // sw, idx % sw], dim=1).float()
    return ((rc + 0.5) * s - 0.5).clamp_min(0).minimum(torch.tensor([h - 1.0, w - 1.0], device=images.device))


PAPER_RAY_PX = 4.0  # the reference code's line width on the paper's 512-px fundus images
# What that setting masks: 80 rays of 4 px from the brightest blurred point of DRIVE's 20 training images at
# 512 px cover 31.4% of the field of view (mean over images and 4 draws; std 1.8 points between images).
PAPER_RAYS_FRACTION = 0.314


def default_thickness(h: int, w: int) -> float:
    """The paper's 4-px lines at 512 px, scaled with the image (0.5 px at 64 px, drawn anti-aliased)."""
    return PAPER_RAY_PX * max(h, w) / 512


def rays_mask(images: Tensor, generator: torch.Generator | None = None, *, num_rays: int = 80,
              thickness: float | None = None, centre: Tensor | None = None) -> Tensor:
    """Mask out ``num_rays`` rays from the brightest blurred point (fundus: vessels from the disc).

    Returns keep-weights (B, 1, H, W) in [0, 1], 1 = keep: the share of each pixel outside every ray.
    Ray angles are stratified-random: one uniform angle in each of ``num_rays`` equal sectors. A point
    is masked when its distance to the nearest ray (a half-line from the centre) is at most
    ``thickness / 2``. A ray thinner than a pixel is evaluated at f x f points per pixel (f = ceil(1 / t),
    at most 4: the ray is then >= 1 sub-pixel wide) and averaged, so a 0.5-px ray covers half of the
    pixels it crosses instead of being widened to a full pixel. Either way each point is an unbiased
    sample of the area the rays cover, so with the default thickness (``default_thickness``) the masked
    share of the field of view does not depend on the size: DRIVE's training images, 4 draws each,
    31.5% at 64 and 128 px, 31.4% at 512 px (``PAPER_RAYS_FRACTION``), 31.1% at 224, 32.1% at 28 px
    (the disc is found on a coarser grid). From 1 px up (f = 1) the mask is binary, as the paper's.
    """
    check_images(images, generator, "rays_mask")
    if num_rays < 1:
        raise ConfigError(f"num_rays must be >= 1, got {num_rays}")
    b, _, h, w = images.shape
    dev = images.device
    if thickness is None:
        thickness = default_thickness(h, w)
    if thickness <= 0:
        raise ConfigError(f"thickness must be > 0 px, got {thickness}")
    if centre is None:
        centre = brightest_point(images)
    f = min(4, math.ceil(1 / thickness))
    # Pixel i's f sub-pixels sit at i + (k + 0.5) / f - 0.5: in sub-pixel units the centre is (c + 0.5) f - 0.5.
    keep = _rays_keep(b, h * f, w * f, (centre.float() + 0.5) * f - 0.5, num_rays, thickness * f, generator, dev)
    return keep.float() if f == 1 else F.avg_pool2d(keep.float(), f)


def _rays_keep(b: int, h: int, w: int, centre: Tensor, n: int, thickness: float,
               generator: torch.Generator | None, dev: torch.device) -> Tensor:
    """Bool (B, 1, H, W), True outside every ray.

    Instead of comparing every pixel with every ray (O(B·rays·H·W)), a small per-sample table over fine
    angle bins holds sin(angle to the nearest ray); each pixel then costs one atan2, one gather and one
    hypot: O(B·H·W) time and memory. The bins are fine enough that the quantised angle moves a ray by at
    most 1/8 px anywhere in the image.
    """
    bins = max(64, math.ceil(8 * math.pi * math.hypot(h, w)))  # bin width * max radius <= 1/4 px

    # Per sample: sin of the angle from each bin's centre to the nearest ray; 1 behind every ray
    # (past pi/2 the nearest point of a half-line is its origin, at distance r).
    rays = torch.arange(n, device=dev) + rand(generator, b, n, device=dev)  # in sector units, sorted
    rays = torch.cat([rays[:, -1:] - n, rays, rays[:, :1] + n], dim=1)         # neighbours across 0 / 2pi
    at = (torch.arange(bins, device=dev) + 0.5) * (n / bins)                   # bin centres, sector units
    sector = at.long().clamp_max(n - 1)
    gap = torch.stack([(at - rays.index_select(1, sector + k)).abs() for k in range(3)]).amin(dim=0) * (2 * math.pi / n)
    sin_gap = torch.where(gap < math.pi / 2, torch.sin(gap), torch.ones_like(gap))

    dy = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1) - centre[:, :1, None]
    dx = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w) - centre[:, 1:, None]
    angle = torch.atan2(dy, dx).view(b, -1)
    idx = angle.add_(math.pi).mul_(bins / (2 * math.pi)).long().clamp_(max=bins - 1)
    dist = torch.hypot(dy, dx).view(b, -1).mul_(torch.gather(sin_gap, 1, idx, out=angle))
    return (dist > thickness / 2).view(b, 1, h, w)


def _select_cells(b: int, cells: int, ratio: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """(B, cells) bool, True = keep, with exactly round(ratio * cells) masked cells per sample."""
    if not 0 <= ratio <= 1:
        raise ConfigError(f"masked ratio must be in [0, 1], got {ratio}")
    rank = rand(generator, b, cells, device=device).argsort(dim=1).argsort(dim=1)
    return rank >= round(ratio * cells)


def _cell_index(n: int, size: int, device: torch.device) -> tuple[Tensor, int]:
    cells = -(-n // size)
    return torch.arange(n, device=device) // size, cells


def stripes_mask(images: Tensor, generator: torch.Generator | None = None, *, ratio: float = 0.5,
                 width: int | None = None, orientation: str = "both") -> Tensor:
    """Mask out full-length stripes (X-ray: bone texture), ``ratio`` of them, ``width`` px wide.

    ``orientation``: "horizontal", "vertical", or "both" (each sample picks one at random).
    Exactly round(ratio * stripes) stripes are masked, so the masked fraction is ``ratio``
    up to one partial stripe at the border. Default width: 1/16 of the image side.
    """
    check_images(images, generator, "stripes_mask")
    b, _, h, w = images.shape
    dev = images.device
    if orientation not in ("horizontal", "vertical", "both"):
        raise ConfigError(f"orientation must be 'horizontal', 'vertical' or 'both', got {orientation!r}")
    rows, n_rows = _cell_index(h, width or max(1, h // 16), dev)
    cols, n_cols = _cell_index(w, width or max(1, w // 16), dev)
    keep_rows = _select_cells(b, n_rows, ratio, generator, dev)[:, rows].view(b, 1, h, 1)
    keep_cols = _select_cells(b, n_cols, ratio, generator, dev)[:, cols].view(b, 1, 1, w)
    if orientation == "horizontal":
        vertical = torch.zeros(b, 1, 1, 1, dtype=torch.bool, device=dev)
    elif orientation == "vertical":
        vertical = torch.ones(b, 1, 1, 1, dtype=torch.bool, device=dev)
    else:
        vertical = rand(generator, b, 1, 1, 1, device=dev) < 0.5
    return torch.where(vertical, keep_cols.expand(b, 1, h, w), keep_rows.expand(b, 1, h, w))


def blocks_mask(images: Tensor, generator: torch.Generator | None = None, *, ratio: float = 0.5,
                size: int | None = None) -> Tensor:
    """Mask out ``ratio`` of a grid of ``size`` px blocks (CT, ultrasound: organ layout).

    Exactly round(ratio * blocks) blocks per sample; default block: 1/8 of the image side.
    """
    check_images(images, generator, "blocks_mask")
    b, _, h, w = images.shape
    dev = images.device
    rows, n_rows = _cell_index(h, size or max(1, h // 8), dev)
    cols, n_cols = _cell_index(w, size or max(1, w // 8), dev)
    keep = _select_cells(b, n_rows * n_cols, ratio, generator, dev).view(b, n_rows, n_cols)
    return keep[:, rows][:, :, cols].unsqueeze(1)


MASKS = ("rays", "stripes", "blocks", "none")

# The "knowledge": which structure each modality's mask imitates (see PAPER.md, "The method").
MODALITY_MASKS = {
    "fundus": "rays",
    "xray": "stripes",
    "ct": "blocks",
    "ultrasound": "blocks",
    "pathology": "blocks",
    "dermatoscopy": "blocks",
    "blood": "blocks",  # blood smears: round cells, no directional structure
    "oct": "blocks",  # retinal OCT B-scans: layered, but at MedMNIST sizes blocks hide whole layers' context
    "generic": "blocks",
}


# ----------------------------------------------------------------------------------------------
# The hybrid scheme
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyConfig:
    """How TOWER makes the view x'' of an image x. ``size=None`` means a size relative to the image.

    mask: "rays" | "stripes" | "blocks" | "none"; ratio: masked fraction (stripes, blocks);
    size: stripe width / block side in px; thickness: ray width in px; p_translate / p_mask:
    per-sample probabilities, at least one of the two is always applied ("either or both").
    """

    mask: str = "blocks"
    num_rays: int = 80
    thickness: float | None = None
    ratio: float = 0.5
    size: int | None = None
    orientation: str = "both"
    p_translate: float = 0.5
    p_mask: float = 0.5
    curves: str = "random"
    p_decreasing: float = 0.5

    def __post_init__(self):
        if self.mask not in MASKS:
            raise ConfigError(f"mask must be one of {MASKS}, got {self.mask!r}")
        for name in ("p_translate", "p_mask", "p_decreasing", "ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.p_translate == 0 and (self.mask == "none" or self.p_mask == 0):
            raise ConfigError("ProxyConfig makes no change to the image: enable translation (p_translate > 0) or a mask")

    @classmethod
    def for_modality(cls, modality: str, **overrides) -> "ProxyConfig":
        """The per-modality default (fundus: 80 rays; X-ray: 50% stripes; others: 50% blocks)."""
        key = modality.lower().replace("-", "").replace("_", "").replace(" ", "")
        if key not in MODALITY_MASKS:
            raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITY_MASKS)}")
        return replace(cls(mask=MODALITY_MASKS[key]), **overrides)

    def make_mask(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.mask == "rays":
            return rays_mask(images, generator, num_rays=self.num_rays, thickness=self.thickness)
        if self.mask == "stripes":
            return stripes_mask(images, generator, ratio=self.ratio, width=self.size, orientation=self.orientation)
        if self.mask == "blocks":
            return blocks_mask(images, generator, ratio=self.ratio, size=self.size)
        b, _, h, w = images.shape
        return torch.ones(b, 1, h, w, dtype=torch.bool, device=images.device)


def make_view(images: Tensor, generator: torch.Generator | None = None,
              cfg: ProxyConfig | None = None) -> dict[str, Tensor]:
    """TOWER's view x'' = B(x) * Mask, translation and mask each applied per sample ("either or both").

    Returns {"translated": x' (x where not translated), "mask": float keep-weights (B,1,H,W) in [0, 1]
    (1 = kept; all 1 where not masked; fractional on anti-aliased ray edges), "view": x'' = x' * mask}.
    Masks are computed from the *original* images: a decreasing curve would turn the optic disc into the
    darkest spot.
    """
    cfg = cfg or ProxyConfig()
    check_images(images, generator, "make_view")
    b, dev = images.shape[0], images.device
    p_t = cfg.p_translate
    p_m = cfg.p_mask if cfg.mask != "none" else 0.0
    u = rand(generator, b, 3, device=dev)
    do_t, do_m = u[:, 0] < p_t, u[:, 1] < p_m
    neither = ~(do_t | do_m)
    pick_t = u[:, 2] * (p_t + p_m) < p_t  # when neither was drawn, pick one in proportion
    do_t, do_m = do_t | (neither & pick_t), do_m | (neither & ~pick_t)

    translated = images
    if p_t > 0:
        curves = sample_curves(b, generator, device=dev, p_decreasing=cfg.p_decreasing, curves=cfg.curves)
        translated = torch.where(do_t.view(b, 1, 1, 1), curves.apply(images), images)
    keep = cfg.make_mask(images, generator).to(images.dtype)
    mask = torch.where(do_m.view(b, 1, 1, 1), keep, torch.ones_like(keep))
    return {"translated": translated, "mask": mask, "view": translated * mask}
