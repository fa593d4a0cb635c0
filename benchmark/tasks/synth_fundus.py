"""Synthetic fundus photographs with pixel-exact vessel masks: the embedded default task (no download).

Why: every command must run end to end on a fresh machine, and a real data set's licence forbids shipping
it. The generator mimics what TOWER's fundus knowledge relies on: a circular field of view on a dark
surround, a bright optic disc left or right of centre from which vessel trees leave in upper and lower
arcades (arching around a darker macula) and branch with tapering widths, reddish-orange fundus tones
with illumination falloff, choroidal texture, blur and noise. Optionally small lesions: bright exudates
and dark haemorrhages, whose count sets a severity grade (``synth-fundus-grade``).

Determinism: image i of a split comes from ``numpy.random.default_rng([split seed, i])``; splits use
disjoint fixed seeds, independent of the run seed; same arguments give identical bytes. Rendering is
vectorised: each vessel segment is rasterised in a small pixel window around it (distance to a tapered
segment), all windows of an image at once, merged with a scatter-max.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

from benchmark.errors import ConfigError
from benchmark.tasks.base import Split, Task

SPLIT_SEEDS = {"train": 101, "val": 202, "test": 303, "pool": 404}


@dataclass(frozen=True)
class Fundus:
    """A generated batch. Coordinates in pixels (x right, y down)."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    vessels: torch.Tensor  # (N, S, S) uint8 0/1
    fov: torch.Tensor  # (N, S, S) bool
    grades: torch.Tensor  # (N,) int64 in 0..2
    lesions: torch.Tensor  # (N,) int64 lesion count
    disc: torch.Tensor  # (N, 3) float32: disc centre x, y and radius


# ----------------------------------------------------------------------------------- vessel trees
class Vessel(NamedTuple):
    """Where a vessel starts and how it runs: ``turn`` is its bending rate, toward heading ``target`` when
    it has one (a main arcade), else constant (a branch); ``depth`` counts the branchings above it."""

    start: tuple[float, float]
    heading: float
    r: float
    turn: float
    length: float
    depth: int
    target: float | None = None


def _grow(rng: np.random.Generator, segs: list, vessel: Vessel, ctx: dict) -> None:
    """Grow one vessel as a chain of short segments; spawn thinner side branches on the way.

    A main arcade bends toward its target heading and then runs on; branches curve at a constant small
    rate. Vessels stop at the FOV border and at the avascular zone around the fovea.
    """
    p, heading, r, turn, length, depth, target = vessel
    step, travelled = ctx["step"], 0.0
    (cx, cy), (fx, fy), fov_r, faz = ctx["centre"], ctx["fovea"], ctx["fov_r"] * 0.98, ctx["faz"]
    px_, py_ = float(p[0]), float(p[1])
    wobble = rng.normal(0.0, 0.07, int(length / step) + 2)  # one draw per step: plain floats below
    i = 0
    while travelled < length and r >= ctx["r_min"]:
        if target is not None:
            diff = math.atan2(math.sin(target - heading), math.cos(target - heading))
            heading += math.copysign(min(abs(diff), turn * step), diff)
        else:
            heading += turn * step
        heading += wobble[i]
        i += 1
        qx, qy = px_ + step * math.cos(heading), py_ + step * math.sin(heading)
        if math.hypot(qx - cx, qy - cy) > fov_r or math.hypot(qx - fx, qy - fy) < faz:
            break
        r_next = r * (0.988 - 0.008 * depth)
        segs.append((px_, py_, qx, qy, r, r_next, ctx["strength"]))
        px_, py_, r = qx, qy, r_next
        travelled += step
        if depth < 4 and travelled > 3 * step and rng.random() < 0.08 + 0.02 * depth:
            side = 1.0 if rng.random() < 0.5 else -1.0
            child_r = r * rng.uniform(0.5, 0.75)
            _grow(rng, segs, Vessel((px_, py_), heading + side * rng.uniform(0.5, 1.0), child_r,
                                    rng.normal(0.0, 0.6), (length - travelled) * rng.uniform(0.4, 0.8) + 0.15,
                                    depth + 1), ctx)
            r *= 0.93  # the parent thins after giving off a branch


def _trees(rng: np.random.Generator, disc: np.ndarray, side: float, ctx: dict) -> np.ndarray:
    """Segments (x0, y0, x1, y1, r0, r1, strength) of the four arcades, each an artery and a vein."""
    segs: list = []
    temporal = -side  # the macula lies on the other side of the centre from the disc
    for up in (-1.0, 1.0):  # y grows downwards: -1 = superior
        for vein in (False, True):
            ctx["strength"] = 1.0 if vein else 0.7  # veins are darker
            r0 = rng.uniform(0.026, 0.032) if vein else rng.uniform(0.019, 0.024)
            jitter = rng.uniform(-0.1, 0.1) + (0.1 if vein else -0.05)
            start = disc[:2] + rng.normal(0, 0.2 * disc[2], 2)
            # temporal arcade: leaves the disc almost vertically, arches around the macula
            h = math.atan2(up, temporal * 0.3) + jitter * up * temporal
            target = math.atan2(up * rng.uniform(0.05, 0.3), temporal)
            _grow(rng, segs, Vessel(start, h, r0, rng.uniform(1.6, 2.4), rng.uniform(1.4, 1.8), 0, target), ctx)
            # nasal vessels: shorter, straighter, toward the nasal side
            h = math.atan2(up * rng.uniform(0.5, 1.2), -temporal) + rng.normal(0, 0.15)
            _grow(rng, segs, Vessel(start, h, r0 * rng.uniform(0.7, 0.85), rng.normal(0, 0.3),
                                    rng.uniform(0.5, 0.8), 1), ctx)
    return np.asarray(segs, np.float32)


def _rasterise(segs: np.ndarray, owner: np.ndarray, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Vessel masks (pixel centre within r of a centreline) and antialiased darkening depth in [0, 1].

    All segments of all ``n`` images at once: each gets the same small pixel window around it, distances
    to the tapered segment are computed for every window pixel, and a scatter-max merges them.
    """
    import torch

    px = 2.0 / size
    s = torch.from_numpy(segs)
    x0, y0, x1, y1, r0, r1, strength = (v[:, None, None] for v in s.unbind(1))
    pad = torch.maximum(r0, r1) + 1.5 * px
    to_px = lambda v: (v + 1.0) / px - 0.5  # noqa: E731  normalised coordinate -> pixel index
    cx0 = torch.floor(to_px(torch.minimum(x0, x1) - pad)).long()
    cy0 = torch.floor(to_px(torch.minimum(y0, y1) - pad)).long()
    k = int(torch.ceil((torch.maximum((x1 - x0).abs(), (y1 - y0).abs()) + 2 * pad).max() / px).item()) + 2
    off = torch.arange(k)
    ix = cx0 + off[None, None, :]  # (M, 1, k)
    iy = cy0 + off[None, :, None]  # (M, k, 1)
    X = (ix.float() + 0.5) * px - 1.0
    Y = (iy.float() + 0.5) * px - 1.0
    dx, dy = x1 - x0, y1 - y0
    t = (((X - x0) * dx + (Y - y0) * dy) / (dx * dx + dy * dy).clamp_min(1e-12)).clamp(0, 1)
    d = torch.hypot(X - (x0 + t * dx), Y - (y0 + t * dy))  # (M, k, k)
    r = r0 + t * (r1 - r0)
    r_eff = r.clamp_min(0.5 * px)  # the thinnest vessels still cover their centre pixel
    fade = (r / (0.8 * px)).clamp(0.35, 1.0)  # sub-pixel vessels look fainter
    depth = ((r_eff - d) / px + 0.5).clamp(0, 1) * fade * strength
    ok = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    base = torch.from_numpy(owner).long()[:, None, None] * (size * size)
    flat = (base + iy.clamp(0, size - 1) * size + ix.clamp(0, size - 1))[ok]
    q = torch.full((n * size * size,), -1.0).scatter_reduce_(0, flat, (r_eff - d)[ok], "amax")
    dep = torch.zeros(n * size * size).scatter_reduce_(0, flat, depth[ok], "amax")
    return (q >= 0).view(n, size, size), dep.view(n, size, size)


# ----------------------------------------------------------------------------------- one image
def _image(rng: np.random.Generator, size: int) -> dict:
    """Everything of one image except the vessels' darkening, blur and noise (done batched)."""
    import torch
    import torch.nn.functional as F

    px = 2.0 / size
    c = (np.arange(size, dtype=np.float32) + 0.5) * px - 1.0
    X, Y = np.meshgrid(c, c)  # X right, Y down
    centre = rng.uniform(-0.02, 0.02, 2)
    fov_r = rng.uniform(0.88, 0.95)
    R = np.hypot(X - centre[0], Y - centre[1])

    side = rng.choice((-1.0, 1.0))
    disc = np.array([side * rng.uniform(0.36, 0.5), rng.uniform(-0.1, 0.1), rng.uniform(0.11, 0.14)])
    fovea = disc[:2] + np.array([-side * rng.uniform(0.75, 0.85), rng.uniform(0.0, 0.08)])

    # fundus background: reddish-orange, per-image pigmentation, gradient + vignetting + choroid texture
    red = rng.uniform(0.72, 0.92)
    base = np.array([red, red * rng.uniform(0.36, 0.52), red * rng.uniform(0.08, 0.2)], np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    illum = 1.0 + rng.uniform(0.04, 0.12) * (np.cos(theta) * X + np.sin(theta) * Y)
    illum *= 1.0 - rng.uniform(0.25, 0.4) * np.clip(R / fov_r, 0, 1) ** 2.5
    coarse = torch.from_numpy(rng.normal(0, 1, (1, 1, 7, 7)).astype(np.float32))
    texture = 1.0 + 0.05 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0, 0].numpy()
    macula = 1.0 - rng.uniform(0.2, 0.35) * np.exp(-((X - fovea[0]) ** 2 + (Y - fovea[1]) ** 2) / (2 * 0.15 ** 2))
    img = base[:, None, None] * (illum * texture * macula)[None]

    # optic disc: pale yellow, soft rim, brighter cup
    dd = np.hypot(X - disc[0], Y - disc[1])
    rim = 1.0 / (1.0 + np.exp((dd - disc[2]) / (0.12 * disc[2])))
    disc_col = np.array([1.0, 0.86, 0.56], np.float32) * rng.uniform(0.88, 1.0)
    img = img * (1 - 0.8 * rim) + disc_col[:, None, None] * (0.8 * rim)
    img += 0.12 * np.exp(-(dd / (0.45 * disc[2])) ** 2)[None]

    # lesions: the grade sets their number (0: none, 1: 1-3, 2: 5-10), away from the disc
    grade = int(rng.integers(3))
    n_les = (0, int(rng.integers(1, 4)), int(rng.integers(5, 11)))[grade]
    for _ in range(n_les):
        while True:
            p = rng.uniform(-0.8, 0.8, 2)
            if np.hypot(*(p - centre)) < fov_r - 0.08 and np.hypot(*(p - disc[:2])) > 2 * disc[2]:
                break
        sd = rng.uniform(0.02, 0.04) / 1.5
        prof = np.exp(-((X - p[0]) ** 2 + (Y - p[1]) ** 2) / (2 * sd ** 2))[None]
        if rng.random() < 0.5:  # hard exudate: bright yellow
            img = img * (1 - 0.75 * prof) + np.array([0.98, 0.85, 0.38], np.float32)[:, None, None] * 0.75 * prof
        else:  # haemorrhage: dark red
            img = img * (1 - prof * np.array([0.45, 0.7, 0.6], np.float32)[:, None, None])

    ctx = dict(step=0.04, r_min=max(0.006, 0.4 * px), centre=centre, fov_r=fov_r, fovea=fovea, faz=0.09)
    return dict(
        img=img.astype(np.float32), fov=R <= fov_r, edge=np.clip((fov_r - R) / px + 0.5, 0, 1).astype(np.float32),
        segs=_trees(rng, disc, side, ctx), grade=grade, lesions=n_les,
        disc=[(disc[0] + 1) / px - 0.5, (disc[1] + 1) / px - 0.5, disc[2] / px],
        # vessels are darker in green than in red, as in real fundus photographs
        contrast=np.array([rng.uniform(0.22, 0.32), rng.uniform(0.5, 0.62), rng.uniform(0.35, 0.45)], np.float32),
        sigma=rng.uniform(0.45, 0.75) * size / 64,
        noise=rng.normal(0, 0.012, (3, size, size)).astype(np.float32),
    )


def _blur(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with one sigma per image (the camera's point spread)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    radius = max(1, int(math.ceil(3 * float(sigmas.max()))))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-t[None] ** 2 / (2 * sigmas[:, None] ** 2))
    g = (g / g.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, 2R+1)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), g[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), g[:, None, :, None], groups=n * c)
    return y.view(n, c, h, w)


@lru_cache(maxsize=16)
def generate(n: int, size: int = 64, seed: int = 0) -> Fundus:
    """``n`` images of ``size`` px; image i depends only on (seed, i, size). Cached per process."""
    import torch

    if size < 32:
        raise ConfigError(f"synth-fundus needs image_size >= 32 (got {size})")
    parts = [_image(np.random.default_rng([seed, i]), size) for i in range(n)]
    segs = np.concatenate([p["segs"] for p in parts])
    owner = np.concatenate([np.full(len(p["segs"]), i) for i, p in enumerate(parts)])
    vessels, depth = _rasterise(segs, owner, n, size)
    stack = lambda key: torch.from_numpy(np.stack([p[key] for p in parts]))  # noqa: E731
    fov = stack("fov")
    img = stack("img") * (1 - stack("contrast")[:, :, None, None] * depth[:, None])
    edge = stack("edge")[:, None]  # soft FOV border in the image only
    img = img * edge + 0.015 * (1 - edge)
    img = _blur(img, torch.tensor([p["sigma"] for p in parts], dtype=torch.float32)) + stack("noise")
    return Fundus(
        images=(img.clamp(0, 1) * 255).round().to(torch.uint8),
        vessels=(vessels & fov).to(torch.uint8),
        fov=fov,
        grades=torch.tensor([p["grade"] for p in parts]),
        lesions=torch.tensor([p["lesions"] for p in parts]),
        disc=torch.tensor([p["disc"] for p in parts], dtype=torch.float32),
    )


# ----------------------------------------------------------------------------------- tasks
class SynthFundus(Task):
    """Vessel segmentation on generated fundus images; the same interface as ``drive``."""

    name = "synth-fundus"
    kind = "segmentation"
    modality = "fundus"
    metric = "dice"
    in_chans = 3
    num_classes = 2
    image_size = 64
    description = ("synthetic fundus vessel segmentation (embedded, no download): 2,048 unlabelled images for "
                   "pretraining, 16/16/64 labelled train/val/test, Dice inside the FOV")
    source = "built in (procedurally generated, deterministic)"
    layout = "  nothing: images are generated in memory (--data-root is ignored)"
    # The self-supervised regime: unlabelled images are plentiful, labels are few. The pool is drawn
    # from its own seed, so no labelled image (of any split) is ever pretrained on.
    sizes = {"train": 16, "val": 16, "test": 64, "pool": 2048}
    base_seed = 1000

    @classmethod
    def miniature(cls, root) -> dict:
        return {}  # generated in memory: nothing to write

    def _fundus(self, split: str) -> Fundus:
        return generate(self.sizes[split], int(self.image_size), self.base_seed + SPLIT_SEEDS[split])

    def pretrain_images(self) -> torch.Tensor:
        """The unlabelled pool, disjoint from the labelled splits."""
        return self._fundus("pool").images

    def _load(self, split: str) -> Split:
        f = self._fundus(split)
        return Split(f.images, f.vessels, valid=f.fov, ids=[f"{self.name}/{split}/{i}" for i in range(len(f.images))])

    def supervised_split(self) -> Split:
        """The pool with its free labels: the images the methods pretrain on, none of them in a labelled split."""
        if "pool" not in self._cache:
            self._cache["pool"] = self._load("pool")
        return self._cache["pool"]

    @property
    def supervised_note(self) -> str:
        return f"the unlabelled pool's {self.sizes['pool']} images with their generated labels"


class SynthFundusGrade(SynthFundus):
    """Severity grade 0-2 from the number of small bright/dark lesions, on the same generator."""

    name = "synth-fundus-grade"
    kind = "multiclass"
    metric = "auc"
    num_classes = 3
    description = ("synthetic fundus lesion grading 0-2 (embedded, no download): 2,048 unlabelled images for "
                   "pretraining, 96/32/64 labelled train/val/test, multi-class AUC")
    sizes = {"train": 96, "val": 32, "test": 64, "pool": 2048}
    base_seed = 2000

    def _load(self, split: str) -> Split:
        f = self._fundus(split)
        return Split(f.images, f.grades, ids=[f"{self.name}/{split}/{i}" for i in range(len(f.images))])
