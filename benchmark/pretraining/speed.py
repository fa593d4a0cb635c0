"""``tower-bench speed``: how fast TOWER's views and training step are, measured in one run.

Three comparisons, one Markdown table:
1. proxy tasks (Bézier translation + mask on every image): batched torch (``tower.proxy``) vs a
   per-sample numpy reference written the way Models Genesis / the reference code do it
   (a 100,000-point curve + ``np.interp`` per image; rays drawn one by one, blocks cut one by one);
2. one TOWER training step (views + loss + backward + Adam) vs a plain two-view U-Net step
   (two images through the full U-Net, MSE, backward + Adam) on the same batch;
3. one Adam update of the U-Net's parameters as both phases make it (``schedule.adam``: fused)
   vs torch's default (a Python loop over the parameter tensors on CPU).
This is a benchmark, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.schedule import adam
from benchmark.pretraining.runtime import tune_malloc

TARGETS = {64: 100.0, 512: 30.0}  # proxy speed-up wanted over numpy, per image size
STEP_TARGET = 0.85                # TOWER step throughput wanted, as a fraction of the plain step
ADAM_TARGET = 2.0                 # our Adam update's speed-up wanted over torch's default


def images_per_second(fn: Callable[[], object], n_images: int, iters: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return n_images * iters / (time.perf_counter() - start)


# ---- the per-sample numpy reference --------------------------------------------------------------

def np_bezier(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Models Genesis's nonlinear_transformation: a 100,000-point Bézier curve + np.interp."""
    points = [[0, 0], [rng.random(), rng.random()], [rng.random(), rng.random()], [1, 1]]
    t = np.linspace(0.0, 1.0, 100_000)
    bern = np.array([math.comb(3, i) * t ** (3 - i) * (1 - t) ** i for i in range(4)])
    xs, ys = np.array([p[0] for p in points]) @ bern, np.array([p[1] for p in points]) @ bern
    if rng.random() < 0.5:
        xs = np.sort(xs)
    else:
        xs, ys = np.sort(xs), np.sort(ys)
    return np.interp(image, xs, ys)


def np_rays(image: np.ndarray, rng: np.random.Generator, num_rays: int = 80) -> np.ndarray:
    """Reference-code style: blur, brightest point, then each ray drawn as a thick line to a border."""
    c, h, w = image.shape
    grey = image.mean(axis=0)
    k = max(1, h // 8) | 1
    integral = np.pad(grey, ((k // 2 + 1, k // 2), (k // 2 + 1, k // 2))).cumsum(0).cumsum(1)
    blurred = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
    cy, cx = np.unravel_index(blurred.argmax(), blurred.shape)
    thick = max(1, round(4 * max(h, w) / 512))
    mask = np.ones((h, w), dtype=image.dtype)
    per_side = num_rays // 4
    for side in range(4):
        for _ in range(per_side):
            u = rng.random()
            ey, ex = [(0, u * (w - 1)), (h - 1, u * (w - 1)), (u * (h - 1), 0), (u * (h - 1), w - 1)][side]
            n = int(2 * math.hypot(ey - cy, ex - cx)) + 2
            ys, xs = np.linspace(cy, ey, n), np.linspace(cx, ex, n)
            for dy in range(-(thick // 2), thick - thick // 2):
                for dx in range(-(thick // 2), thick - thick // 2):
                    mask[np.clip(np.round(ys + dy).astype(int), 0, h - 1), np.clip(np.round(xs + dx).astype(int), 0, w - 1)] = 0
    return mask


def np_blocks(image: np.ndarray, rng: np.random.Generator, ratio: float = 0.5) -> np.ndarray:
    """Per-sample grid of blocks, the chosen ones cut out one by one."""
    _, h, w = image.shape
    size = max(1, h // 8)
    rows, cols = -(-h // size), -(-w // size)
    mask = np.ones((h, w), dtype=image.dtype)
    for cell in rng.permutation(rows * cols)[: round(ratio * rows * cols)]:
        r, c = divmod(int(cell), cols)
        mask[r * size:(r + 1) * size, c * size:(c + 1) * size] = 0
    return mask


def np_views(images: np.ndarray, mask: str, rng: np.random.Generator) -> list[np.ndarray]:
    make_mask = np_rays if mask == "rays" else np_blocks
    return [np_bezier(img, rng) * make_mask(img, rng) for img in images]


# ---- the measurements ---------------------------------------------------------------------------

def proxy_rows(size: int, batch: int, np_images: int, iters: int) -> list[list[str]]:
    from tower.proxy import ProxyConfig, make_view

    rows = []
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    subset = images[:np_images].numpy().astype(np.float64)
    for mask in ("rays", "blocks"):
        cfg = ProxyConfig(mask=mask, p_translate=1.0, p_mask=1.0)  # both on every image, like the reference
        gen = torch.Generator().manual_seed(0)
        ours = images_per_second(lambda: make_view(images, gen, cfg), batch, iters)
        rng = np.random.default_rng(0)
        ref = images_per_second(lambda: np_views(subset, mask, rng), np_images, 1, warmup=0)
        ratio = ours / ref
        rows.append([f"proxy {mask} (translation + mask)", f"{size} px, batch {batch} (numpy: {np_images} imgs)",
                     f"{ours:,.0f}", f"{ref:,.1f}", f"{ratio:,.0f}x",
                     f">= {TARGETS.get(size, 30):.0f}x: {'met' if ratio >= TARGETS.get(size, 30) else 'NOT met'}"])
    return rows


def step_rows(encoder: str, size: int, batch: int, iters: int, modality: str = "fundus") -> list[list[str]]:
    from tower.method import Tower
    from zoo import UNet

    torch.manual_seed(0)
    images = torch.rand(batch, 3, size, size)
    tower = Tower(UNet(encoder, 3, 3), modality=modality)
    plain = UNet(encoder, 3, 3)
    opt_t = adam([p for p in tower.parameters() if p.requires_grad], 1e-4)
    opt_p = adam(list(plain.parameters()), 1e-4)
    gen = torch.Generator().manual_seed(0)
    second = images.flip(-1)

    def tower_step():
        opt_t.zero_grad(set_to_none=True)
        tower(images, gen)["loss"].backward()
        opt_t.step()

    def plain_step():
        opt_p.zero_grad(set_to_none=True)
        loss = F.mse_loss(torch.sigmoid(plain(images)), images) + F.mse_loss(torch.sigmoid(plain(second)), second)
        loss.backward()
        opt_p.step()

    ours = images_per_second(tower_step, batch, iters)
    ref = images_per_second(plain_step, batch, iters)
    ratio = ours / ref
    return [[f"TOWER step ({modality} views + loss + backward + Adam) vs plain two-view U-Net step",
             f"{encoder}, {size} px, batch {batch}", f"{ours:,.1f}", f"{ref:,.1f}", f"{ratio:.0%}",
             f">= {STEP_TARGET:.0%}: {'met' if ratio >= STEP_TARGET else 'NOT met'}"]]


def optimizer_rows(encoder: str, iters: int) -> list[list[str]]:
    from zoo import UNet

    params = list(UNet(encoder, 3, 3).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    ours = adam(params, 1e-4)
    default = torch.optim.Adam(params, lr=1e-4)
    rate, rate_default = (images_per_second(opt.step, 1, iters * 4) for opt in (ours, default))
    ratio = rate / rate_default
    values = sum(p.numel() for p in params)
    return [[f"Adam update (updates/s): ours ({'fused' if ours.defaults['fused'] else 'default'}) vs torch's default",
             f"{encoder} U-Net, {len(params)} tensors, {values / 1e6:.1f}M values", f"{rate:,.1f}",
             f"{rate_default:,.1f}", f"{ratio:.1f}x", f">= {ADAM_TARGET:.0f}x: {'met' if ratio >= ADAM_TARGET else 'NOT met'}"]]


def run(quick: bool = False, encoder: str = "resnet18", size: int = 64, batch: int = 32, iters: int = 5) -> str:
    """Measure everything in this process and return the Markdown table."""
    tuned = tune_malloc()
    if quick:
        rows = proxy_rows(32, 8, 2, 1) + step_rows("test_resnet", 32, 4, 1) + optimizer_rows("test_resnet", 1)
    else:
        rows = (proxy_rows(64, 128, 128, iters) + proxy_rows(512, 32, 8, iters)
                + step_rows(encoder, size, batch, iters) + optimizer_rows(encoder, iters))
    head = ["what", "setting", "ours (img/s)", "reference (img/s)", "ratio", "target"]
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU"
             f"{', glibc trim/mmap thresholds raised' if tuned else ''}{', --quick' if quick else ''}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
