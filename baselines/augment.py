"""Classic contrastive augmentations (SimCLR / MoCo v2 / BYOL), batched on the images' device.

Every operation equals its ``torchvision.transforms.v2.functional`` namesake (``resized_crop`` with
bilinear antialiased resizing, ``horizontal_flip`` / ``vertical_flip``, ``adjust_brightness`` /
``contrast`` / ``saturation`` / ``hue``, ``rgb_to_grayscale``, ``gaussian_blur``) applied sample by
sample with that sample's parameters, and the parameters are drawn as torchvision's transforms draw
them; tests/baselines/test_augment.py checks both. Nothing loops over samples in Python: the crop,
resize and flips are two batched matrix products with per-sample interpolation weights, colour
operations are per-sample broadcasts, and the blur is a grouped convolution with a kernel per sample.

``ClassicAugment.sample_params`` draws every random number from the ``generator`` passed in (on the
images' device), so a view is reproducible from a seed and a distributed run can be checked against
one process; ``ClassicAugment.apply`` is deterministic given those parameters.

Float images in [0, 1], shaped (B, C, H, W). As in torchvision, saturation, hue and greyscale leave
images that are not RGB unchanged, and contrast then blends towards the mean of all their values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ConfigError
from zoo.image_ops import bernoulli, check_images, uniform

__all__ = [
    "ClassicAugment", "ViewParams", "JITTER_OPS", "sample_boxes", "resized_crop", "rgb_to_grayscale", "adjust_hue",
    "color_jitter", "gaussian_blur",
]

LUMA = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights (ITU-R 601 as it rounds them)
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")  # column order of ViewParams.factors
SUBSET_DEVICES = ("cpu",)  # device types where a step runs only on the samples that take it (see _on_subset)


def _check_range(name: str, pair: tuple[float, float], low: float = 0.0) -> None:
    if len(pair) != 2 or not low <= pair[0] <= pair[1]:
        raise ConfigError(f"{name} must be a pair ({low} <= lo <= hi), got {pair!r}")


def _per_sample(values: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1), to broadcast one value per sample over an image batch."""
    return values.view(-1, 1, 1, 1)


# ----------------------------------------------------------------------------- crop, resize, flips

def sample_boxes(n: int, height: int, width: int, generator: torch.Generator | None = None, *,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 device=None, tries: int = 10) -> Tensor:
    """(n, 4) long crop boxes (top, left, height, width), drawn as torchvision's RandomResizedCrop.

    Up to ``tries`` candidates of area U(scale) x image area and aspect (width / height)
    log-uniform in ``ratio``, sides rounded half-to-even; the first that fits is placed uniformly,
    and a sample where none fits gets torchvision's centre-crop fallback. All candidates are drawn
    for every sample (in float64, as torchvision's Python floats), so the stream is fixed-size.
    """
    area = height * width * uniform(generator, scale[0], scale[1], n, tries, device=device, dtype=torch.float64)
    aspect = torch.exp(uniform(generator, math.log(ratio[0]), math.log(ratio[1]), n, tries, device=device,
                               dtype=torch.float64))
    box_w, box_h = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
    fits = (box_w >= 1) & (box_w <= width) & (box_h >= 1) & (box_h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first fitting try
    found = fits.any(dim=1)
    in_ratio = width / height
    if in_ratio < min(ratio):
        fallback_w, fallback_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = int(round(height * max(ratio))), height
    else:
        fallback_w, fallback_h = width, height
    box_w = torch.where(found, box_w.gather(1, first)[:, 0], fallback_w)
    box_h = torch.where(found, box_h.gather(1, first)[:, 0], fallback_h)
    position = torch.rand(n, 2, generator=generator, device=device, dtype=torch.float64)
    top = torch.where(found, torch.floor(position[:, 0] * (height - box_h + 1)), (height - box_h) // 2)
    left = torch.where(found, torch.floor(position[:, 1] * (width - box_w + 1)), (width - box_w) // 2)
    return torch.stack([top, left, box_h, box_w], dim=1).long()


def _resize_weights(start: Tensor, length: Tensor, out_size: int, in_size: int) -> Tensor:
    """(B, out_size, in_size) float32 weights resizing input pixels [start, start + length) of each
    sample to ``out_size`` pixels as ``F.interpolate(mode="bilinear", antialias=True,
    align_corners=False)`` does (torchvision's resize): a triangle filter widened by the scale
    when shrinking, plain bilinear with edge clamping when enlarging, renormalised at the edges."""
    length = length.to(torch.float64)[:, None, None]
    scale = length / out_size
    support = scale.clamp_min(1.0)
    centre = scale * (torch.arange(out_size, dtype=torch.float64, device=start.device)[None, :, None] + 0.5)
    pixel = torch.arange(in_size, dtype=torch.float64, device=start.device)[None, None, :] - start[:, None, None]
    weights = (1 - ((pixel + 0.5 - centre) / support).abs()).clamp_min(0)
    weights = weights * ((pixel >= 0) & (pixel < length))
    return (weights / weights.sum(dim=2, keepdim=True)).float()


def resized_crop(images: Tensor, boxes: Tensor, size: tuple[int, int], hflip: Tensor | None = None,
                 vflip: Tensor | None = None) -> Tensor:
    """Crop sample b to ``boxes[b]`` (top, left, height, width), resize it to ``size`` (bilinear,
    antialiased, as torchvision's resized_crop) and flip it where ``hflip`` / ``vflip`` say.

    Resizing is separable, so it is two batched matrix products with per-sample weights; a flip
    reverses the rows of a weight matrix. Float32 output.
    """
    check_images(images, None, "resized_crop")
    b, c, h, w = images.shape
    if boxes.shape != (b, 4):
        raise ValueError(f"resized_crop needs one (top, left, height, width) box per sample, got {tuple(boxes.shape)}")
    top, left, box_h, box_w = boxes.unbind(1)
    rows = _resize_weights(top, box_h, size[0], h)
    cols = _resize_weights(left, box_w, size[1], w)
    if vflip is not None:
        rows = torch.where(vflip[:, None, None], rows.flip(1), rows)
    if hflip is not None:
        cols = torch.where(hflip[:, None, None], cols.flip(1), cols)
    x = torch.bmm(images.float().reshape(b, c * h, w), cols.transpose(1, 2)).reshape(b * c, h, size[1])
    rows = rows[:, None].expand(b, c, size[0], h).reshape(b * c, size[0], h)  # bmm: faster than broadcast @
    return torch.bmm(rows, x).reshape(b, c, size[0], size[1])


# ----------------------------------------------------------------------------- colour

def rgb_to_grayscale(images: Tensor) -> Tensor:
    """(B, 1, H, W) luma of RGB images with torchvision's weights."""
    r, g, b = images.unbind(dim=1)
    return (r * LUMA[0] + g * LUMA[1] + b * LUMA[2]).unsqueeze(1)


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``_blend``: factor * images + (1 - factor) * other, clamped to [0, 1]; exactly
    ``images`` (clamped) where the factor is 1."""
    factor = _per_sample(factor)
    return (images * factor + other * (1 - factor)).clamp(0, 1)


def _on_subset(mask: Tensor, fn, images: Tensor, *per_sample: Tensor) -> Tensor:
    """``fn(images, *per_sample)`` for the samples where ``mask`` is True, the others unchanged.

    On SUBSET_DEVICES only the chosen samples are computed (nothing to wait for when reading the
    subset's size); elsewhere every sample is computed and ``where`` picks, which costs no host sync.
    """
    if images.device.type in SUBSET_DEVICES:
        idx = mask.nonzero()[:, 0]
        if len(idx) == 0:
            return images
        return images.index_copy(0, idx, fn(images[idx], *(t[idx] for t in per_sample)))
    return torch.where(_per_sample(mask), fn(images, *per_sample), images)


def adjust_hue(images: Tensor, factor: Tensor) -> Tensor:
    """Rotate RGB sample b's HSV hue by ``factor[b]`` turns (|factor| <= 0.5); other images are
    returned unchanged.

    torchvision converts to HSV (after Pillow), adds the factor to H mod 1, and converts back with a
    table of (v, p, q, t) per hue sextant. Value and saturation survive the shift, so a pixel keeps
    its max M and its min m, and each channel is M - (M - m) clamp(min(k, 4 - k), 0, 1) with
    k = (n + 6 H) mod 6, n = 5, 3, 1: the same function in closed form, equal to rounding, without
    the table's index gather (several times slower batched on CPU).
    """
    if images.shape[1] != 3:
        return images
    r, g, b = images.unbind(dim=1)
    high, low = torch.maximum(torch.maximum(r, g), b), torch.minimum(torch.minimum(r, g), b)
    chroma = high - low
    divisor = chroma.clamp_min(1e-12)  # grey pixels: chroma 0, hue irrelevant, no 0 / 0
    max_is_r = high == r
    max_is_g = (high == g) & ~max_is_r
    max_is_b = ~(max_is_r | max_is_g)
    hue6 = ((g - b) * max_is_r + (b - r) * max_is_g + (r - g) * max_is_b) / divisor + 2.0 * max_is_g + 4.0 * max_is_b
    n = torch.tensor([5.0, 3.0, 1.0], device=images.device).view(1, 3, 1, 1)
    k = (n + (hue6 + 6 * factor.view(-1, 1, 1)).unsqueeze(1)).remainder(6)
    return high.unsqueeze(1) - chroma.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def color_jitter(images: Tensor, factors: Tensor, order: Tensor, hue: bool = True) -> Tensor:
    """torchvision's ColorJitter with sample b's factors ``factors[b]`` (columns as JITTER_OPS) and
    its own op order ``order[b]`` (a permutation of 0..3 into JITTER_OPS); ``hue=False`` skips hue,
    as torchvision does when its hue range is 0. Images that are not RGB get brightness and
    contrast only (as 1-channel images in torchvision).

    Brightness, contrast and saturation are all ``_blend(x, other, factor)``, with ``other`` 0, the
    mean luma or the luma, so each of the 4 steps is one blend of the whole batch, each sample with
    its own op's ``other`` and factor (factor 1, the identity, where that op is hue).
    """
    check_images(images, None, "color_jitter")
    b, c = images.shape[:2]
    if factors.shape != (b, 4) or order.shape != (b, 4):
        raise ValueError(f"color_jitter needs factors and order shaped ({b}, 4), "
                         f"got {tuple(factors.shape)} and {tuple(order.shape)}")
    contrast, saturation, hue_op = (JITTER_OPS.index(name) for name in ("contrast", "saturation", "hue"))
    x = images.float()
    for step in range(4):
        op = order[:, step]
        grey = rgb_to_grayscale(x) if c == 3 else x
        mean = grey.mean(dim=(1, 2, 3), keepdim=True)
        other = grey * _per_sample(op == saturation) + mean * _per_sample(op == contrast)
        skip = (op == hue_op) | ((op == saturation) & (c != 3))
        x = _blend(x, other, torch.where(skip, 1.0, factors.gather(1, op[:, None])[:, 0]))
        if hue and c == 3:
            x = _on_subset(op == hue_op, adjust_hue, x, factors[:, hue_op])
    return x


# ----------------------------------------------------------------------------- blur

def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur sample b as torchvision's gaussian_blur(kernel_size, sigma[b]): a ``kernel_size``-tap
    Gaussian of std ``sigma[b]`` pixels, reflect padding.

    Separable: one grouped 1-D convolution along each axis with a kernel per (sample, channel). A
    kernel wider than torchvision's reflect padding allows (half-width >= the image side, where it
    would raise) is cut to the widest allowed.
    """
    check_images(images, None, "gaussian_blur")
    b, c, h, w = images.shape
    if sigma.shape != (b,):
        raise ValueError(f"gaussian_blur needs one sigma per sample, shape ({b},), got {tuple(sigma.shape)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"gaussian_blur needs an odd positive kernel_size, got {kernel_size}")
    radius = min(kernel_size // 2, min(h, w) - 1)
    if radius < 1:
        return images.float()
    lim = radius / math.sqrt(2.0)  # torchvision's _get_gaussian_kernel1d
    offsets = torch.linspace(-lim, lim, 2 * radius + 1, device=images.device)
    kernel = torch.softmax(-(offsets / sigma.float()[:, None]).pow(2), dim=1).repeat_interleave(c, dim=0)
    x = images.float().reshape(1, b * c, h, w)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=b * c)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=b * c)
    return x.reshape(b, c, h, w)


# ----------------------------------------------------------------------------- the view

@dataclass(frozen=True)
class ViewParams:
    """One view's random draws, one row per sample, on the images' device.

    ``box``: (B, 4) long crop (top, left, height, width) in input pixels; ``hflip``, ``vflip``,
    ``jitter``, ``grayscale``, ``blur``: (B,) bool, whether each step is applied; ``factors``:
    (B, 4) colour-jitter factors, columns as JITTER_OPS; ``order``: (B, 4) long, the order the
    jitter ops run in (a permutation of 0..3); ``gamma``: (B,) exponents or None; ``sigma``: (B,)
    blur std in pixels.
    """

    box: Tensor
    hflip: Tensor
    vflip: Tensor
    jitter: Tensor
    factors: Tensor
    order: Tensor
    gamma: Tensor | None
    grayscale: Tensor
    blur: Tensor
    sigma: Tensor


@dataclass
class ClassicAugment:
    """The SimCLR / MoCo v2 view: resized crop + flips, colour jitter, greyscale, blur.

    Defaults are MoCo v2's (``aug_plus``), which BYOL's and SimCLR's recipes differ from only in
    strengths; vertical flips are on because microscopy, fundus and CT slices have no canonical
    up/down as natural photos do. Steps run crop + flips, jitter, greyscale, blur: MoCo v2 flips
    last, but a flip commutes with the others (the blur kernel is symmetric), so the views are the
    same. ``size=None`` keeps the input size. ``blur_kernel_size=None``
    means 3 sigma each side at the largest sigma (13 taps for sigma <= 2, what PIL's blur in MoCo v2
    amounts to; SimCLR uses about 10% of the image side). ``gamma``, off by default and not part of
    any of the three recipes, adds a per-sample gamma curve x ** g (g log-uniform in ``gamma``) to
    the jitter of images that are not RGB, whose jitter is otherwise only brightness and contrast.
    """

    size: tuple[int, int] | None = None
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    p_hflip: float = 0.5
    p_vflip: float = 0.5
    p_jitter: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    gamma: tuple[float, float] | None = None
    p_grayscale: float = 0.2
    p_blur: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_size: int | None = None

    @classmethod
    def with_color_strength(cls, strength: float = 1.0) -> "ClassicAugment":
        """The recipe with SimCLR's colour-distortion strength s (Chen et al. 2020, appendix A): jitter
        strengths scale with s, and s = 0 turns colour jitter and greyscale off (crops, flips and blur stay).

        Measured on 64-px synth-fundus (150 steps, README): with s = 1 or 0.5, SimCLR's loss stays at
        chance and positive retrieval at 1/64; with s = 0 it reaches 80%. Images of one modality differ
        little in colour, so colour distortion leaves too little to tell instances apart in a short run.
        """
        if strength < 0:
            raise ConfigError(f"colour strength must be >= 0, got {strength}")
        base = cls()
        on = strength > 0
        return cls(brightness=base.brightness * strength, contrast=base.contrast * strength,
                   saturation=base.saturation * strength, hue=min(0.5, base.hue * strength),
                   p_jitter=base.p_jitter if on else 0.0, p_grayscale=base.p_grayscale if on else 0.0)

    def __post_init__(self) -> None:
        for name in ("p_hflip", "p_vflip", "p_jitter", "p_grayscale", "p_blur"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"ClassicAugment.{name} must be a probability, got {getattr(self, name)}")
        _check_range("scale", self.scale)
        if self.scale[1] > 1 or self.scale[0] <= 0:
            raise ConfigError(f"ClassicAugment.scale must lie in (0, 1], got {self.scale!r}")
        _check_range("ratio", self.ratio)
        if self.ratio[0] <= 0:
            raise ConfigError(f"ClassicAugment.ratio must be positive, got {self.ratio!r}")
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ClassicAugment.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ConfigError(f"ClassicAugment.hue must lie in [0, 0.5] turns, got {self.hue}")
        if self.gamma is not None:
            _check_range("gamma", self.gamma, low=1e-6)
        _check_range("blur_sigma", self.blur_sigma, low=1e-6)
        if self.blur_kernel_size is not None and (self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0):
            raise ConfigError(f"ClassicAugment.blur_kernel_size must be odd and positive, got {self.blur_kernel_size}")

    @property
    def kernel_size(self) -> int:
        """Taps of the blur kernel (see the class docstring for the default)."""
        if self.blur_kernel_size is not None:
            return self.blur_kernel_size
        return 2 * math.ceil(3 * self.blur_sigma[1]) + 1

    def sample_params(self, images: Tensor, generator: torch.Generator | None = None) -> ViewParams:
        """Draw one view's parameters for every sample, as torchvision's transforms draw them
        (jitter factors U(max(0, 1 - s), 1 + s), hue U(-hue, hue), a uniformly random op order)."""
        check_images(images, generator, "ClassicAugment")
        b, _, h, w = images.shape
        dev = images.device
        box = sample_boxes(b, h, w, generator, scale=self.scale, ratio=self.ratio, device=dev)
        hflip = bernoulli(generator, self.p_hflip, b, dev)
        vflip = bernoulli(generator, self.p_vflip, b, dev)
        jitter = bernoulli(generator, self.p_jitter, b, dev)
        factors = torch.stack([uniform(generator, max(0.0, 1 - s), 1 + s, b, device=dev)
                               for s in (self.brightness, self.contrast, self.saturation)]
                              + [uniform(generator, -self.hue, self.hue, b, device=dev)], dim=1)
        order = torch.rand(b, 4, generator=generator, device=dev).argsort(dim=1)
        gamma = None
        if self.gamma is not None:
            gamma = torch.exp(uniform(generator, math.log(self.gamma[0]), math.log(self.gamma[1]), b, device=dev))
        grayscale = bernoulli(generator, self.p_grayscale, b, dev)
        blur = bernoulli(generator, self.p_blur, b, dev)
        sigma = uniform(generator, self.blur_sigma[0], self.blur_sigma[1], b, device=dev)
        return ViewParams(box=box, hflip=hflip, vflip=vflip, jitter=jitter, factors=factors, order=order,
                          gamma=gamma, grayscale=grayscale, blur=blur, sigma=sigma)

    def apply(self, images: Tensor, params: ViewParams) -> Tensor:
        """The view of ``images`` that ``params`` describe (float32 maths, the input's dtype out)."""
        check_images(images, None, "ClassicAugment")
        b, c, h, w = images.shape
        if params.box.shape[0] != b:
            raise ValueError(f"ClassicAugment.apply: params are for {params.box.shape[0]} samples, images has {b}")
        x = resized_crop(images, params.box, self.size or (h, w), hflip=params.hflip, vflip=params.vflip)
        gamma = params.gamma if params.gamma is not None and c != 3 else None
        x = _on_subset(params.jitter, self._jitter, x, params.factors, params.order,
                       *([gamma] if gamma is not None else []))
        if c == 3:
            x = torch.where(_per_sample(params.grayscale), rgb_to_grayscale(x).expand_as(x), x)
        x = _on_subset(params.blur, partial(gaussian_blur, kernel_size=self.kernel_size), x, params.sigma)
        return x.clamp(0, 1).to(images.dtype)

    def _jitter(self, images: Tensor, factors: Tensor, order: Tensor, gamma: Tensor | None = None) -> Tensor:
        x = color_jitter(images, factors, order, hue=self.hue > 0)
        return x if gamma is None else x.pow(_per_sample(gamma))

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.apply(images, self.sample_params(images, generator))

    def pair(self, images: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Two independent views of every sample, the input of all two-view methods."""
        return {"view1": self(images, generator), "view2": self(images, generator)}
