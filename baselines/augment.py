"""Classic contrastive augmentations (SimCLR / MoCo v2 / BYOL), batched on the images' device.

Every sample gets its own random parameters, but nothing loops over samples in Python: crops and
flips are one affine ``grid_sample``, colour operations are per-sample broadcasts, and the blur is
one grouped convolution with a per-sample kernel. All randomness comes from the ``generator``
passed in (on the images' device), so a view is reproducible from a seed and a distributed run
can be checked against one process.

Float images in [0, 1], shaped (B, C, H, W); 3 channels get colour jitter and random greyscale,
any other channel count (grey microscopy, X-ray, CT) gets intensity jitter instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ClassicAugment", "random_resized_crop_flip", "color_jitter", "random_grayscale",
    "intensity_jitter", "gaussian_blur",
]

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


def check_images(images: Tensor, generator: torch.Generator | None, name: str) -> None:
    """Shared input checks: a clear message instead of a shape error deep inside grid_sample."""
    if images.ndim != 4:
        raise ValueError(f"{name} expects images shaped (B, C, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} expects float images in [0, 1], got dtype {images.dtype}; divide uint8 images by 255")
    if generator is not None and generator.device.type != images.device.type:
        raise ValueError(
            f"{name}: generator is on {generator.device} but images are on {images.device}; "
            f"create it with torch.Generator(device=images.device)"
        )


def uniform(generator: torch.Generator | None, low: float, high: float, *shape: int, device) -> Tensor:
    """U(low, high) of the given shape, float32, from ``generator`` on ``device``."""
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def bernoulli(generator: torch.Generator | None, p: float, n: int, device) -> Tensor:
    """(n,) bool, True with probability p (drawn even for p in {0, 1}, so the random stream and
    hence later draws do not depend on the probabilities)."""
    return torch.rand(n, generator=generator, device=device) < p


def _check_range(name: str, pair: tuple[float, float], low: float = 0.0) -> None:
    if len(pair) != 2 or not low <= pair[0] <= pair[1]:
        raise ValueError(f"{name} must be a pair ({low} <= lo <= hi), got {pair!r}")


def random_resized_crop_flip(images: Tensor, generator: torch.Generator | None = None, *,
                             size: tuple[int, int] | None = None, scale: tuple[float, float] = (0.2, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3), p_hflip: float = 0.5,
                             p_vflip: float = 0.5) -> Tensor:
    """Random resized crop plus horizontal / vertical flips as one affine resampling per sample.

    Area fraction ~ U(scale), aspect ratio log-uniform in ``ratio`` (width / height, in pixels);
    where the box would not fit (torchvision retries, then falls back to a centre crop) its sides
    are clamped to the image, so every sample gets a box in one draw. Bilinear, float32 output of
    ``size`` (default: the input's).
    """
    check_images(images, generator, "random_resized_crop_flip")
    _check_range("scale", scale)
    if scale[1] > 1 or scale[0] <= 0:
        raise ValueError(f"scale must lie in (0, 1], got {scale!r}")
    _check_range("ratio", ratio)
    if ratio[0] <= 0:
        raise ValueError(f"ratio must be positive, got {ratio!r}")
    b, c, h, w = images.shape
    out_h, out_w = size if size is not None else (h, w)
    dev = images.device
    area = uniform(generator, scale[0], scale[1], b, device=dev)
    aspect = torch.exp(uniform(generator, math.log(ratio[0]), math.log(ratio[1]), b, device=dev))
    # Box sides as fractions of the image: fw * fh = area and (fw * w) / (fh * h) = aspect.
    fw = torch.sqrt(area * aspect * h / w).clamp(max=1.0)
    fh = torch.sqrt(area / aspect * w / h).clamp(max=1.0)
    # Centre in normalised [-1, 1] coordinates, the box staying inside the image.
    cx = (1 - fw) * uniform(generator, -1.0, 1.0, b, device=dev)
    cy = (1 - fh) * uniform(generator, -1.0, 1.0, b, device=dev)
    sx = torch.where(bernoulli(generator, p_hflip, b, dev), -fw, fw)
    sy = torch.where(bernoulli(generator, p_vflip, b, dev), -fh, fh)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)
    grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(images: Tensor) -> Tensor:
    weights = images.new_tensor(LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _hue_rotation(angle: Tensor) -> Tensor:
    """Per-sample (B, 3, 3) RGB matrices rotating the chroma plane of YIQ by ``angle`` radians.

    A linear stand-in for torchvision's HSV hue shift: same intent (shift hue, keep luma), one
    batched matrix product instead of an HSV round trip.
    """
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=angle.device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rot = torch.stack([torch.stack([one, zero, zero], 1),
                       torch.stack([zero, cos, -sin], 1),
                       torch.stack([zero, sin, cos], 1)], 1)
    return torch.linalg.inv(to_yiq) @ rot @ to_yiq


def color_jitter(images: Tensor, generator: torch.Generator | None = None, *, brightness: float = 0.4,
                 contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1) -> Tensor:
    """RGB brightness, contrast, saturation (factors U(1 - s, 1 + s)) and hue (U(-hue, hue) turns).

    Applied in this fixed order to every sample (torchvision shuffles the order per call; the
    order matters little and a fixed one keeps the op a handful of broadcasts).
    """
    check_images(images, generator, "color_jitter")
    if images.shape[1] != 3:
        raise ValueError(f"color_jitter needs 3 channels, got {images.shape[1]}; use intensity_jitter")
    b, dev = images.shape[0], images.device
    x = images.float()
    f = uniform(generator, max(0.0, 1 - brightness), 1 + brightness, b, 1, 1, 1, device=dev)
    x = (x * f).clamp(0, 1)
    f = uniform(generator, max(0.0, 1 - contrast), 1 + contrast, b, 1, 1, 1, device=dev)
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)
    x = (mean + f * (x - mean)).clamp(0, 1)
    f = uniform(generator, max(0.0, 1 - saturation), 1 + saturation, b, 1, 1, 1, device=dev)
    g = _gray(x)
    x = (g + f * (x - g)).clamp(0, 1)
    angle = 2 * math.pi * uniform(generator, -hue, hue, b, device=dev)
    x = torch.einsum("bij,bjhw->bihw", _hue_rotation(angle), x)
    return x.clamp(0, 1)


def random_grayscale(images: Tensor, generator: torch.Generator | None = None, *, p: float = 0.2) -> Tensor:
    """Replace a sample by its luma (kept 3-channel) with probability ``p``."""
    check_images(images, generator, "random_grayscale")
    if images.shape[1] != 3:
        raise ValueError(f"random_grayscale needs 3 channels, got {images.shape[1]}")
    pick = bernoulli(generator, p, images.shape[0], images.device).view(-1, 1, 1, 1)
    return torch.where(pick, _gray(images).expand_as(images), images)


def intensity_jitter(images: Tensor, generator: torch.Generator | None = None, *, brightness: float = 0.4,
                     contrast: float = 0.4, gamma: tuple[float, float] = (0.67, 1.5)) -> Tensor:
    """Colour jitter's counterpart for grey (or non-RGB) images: brightness and contrast factors
    U(1 - s, 1 + s), then a gamma curve x ** g, g log-uniform in ``gamma``; all channels alike."""
    check_images(images, generator, "intensity_jitter")
    _check_range("gamma", gamma, low=1e-6)
    b, dev = images.shape[0], images.device
    x = images.float()
    f = uniform(generator, max(0.0, 1 - brightness), 1 + brightness, b, 1, 1, 1, device=dev)
    x = (x * f).clamp(0, 1)
    f = uniform(generator, max(0.0, 1 - contrast), 1 + contrast, b, 1, 1, 1, device=dev)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (mean + f * (x - mean)).clamp(0, 1)
    g = torch.exp(uniform(generator, math.log(gamma[0]), math.log(gamma[1]), b, 1, 1, 1, device=dev))
    # clamp_min keeps the gradient-free pow away from 0 ** g edge cases in low precision
    return x.clamp_min(0).pow(g).clamp(0, 1)


def gaussian_blur(images: Tensor, sigma: Tensor, radius: int | None = None) -> Tensor:
    """Blur sample b with an isotropic Gaussian of std ``sigma[b]`` pixels.

    Separable: one grouped 1-D convolution along each axis with a kernel per (sample, channel).
    The kernel radius defaults to 3 x the largest sigma (what a 23-px kernel at sigma <= 2 amounts
    to in SimCLR / MoCo v2; pass it to avoid a device sync), capped by the image size; reflect
    padding as torchvision.
    """
    check_images(images, None, "gaussian_blur")
    b, c, h, w = images.shape
    if sigma.shape != (b,):
        raise ValueError(f"gaussian_blur needs one sigma per sample, shape ({b},), got {tuple(sigma.shape)}")
    if radius is None:
        radius = math.ceil(3 * float(sigma.max()))
    radius = min(radius, (min(h, w) - 1) // 2)
    if radius < 1:
        return images
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma.float().clamp_min(1e-3)[:, None]) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, K)
    x = images.float().reshape(1, b * c, h, w)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=b * c)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=b * c)
    return x.reshape(b, c, h, w)


@dataclass
class ClassicAugment:
    """The SimCLR / MoCo v2 view: crop + flips, colour (or intensity) jitter, greyscale, blur.

    Defaults are MoCo v2's (``aug_plus``), which BYOL's and SimCLR's recipes differ from only in
    strengths; vertical flips are on because microscopy, fundus and CT slices have no canonical
    up/down as natural photos do. ``size=None`` keeps the input size.
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
    gamma: tuple[float, float] = (0.67, 1.5)
    p_grayscale: float = 0.2
    p_blur: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self) -> None:
        for name in ("p_hflip", "p_vflip", "p_jitter", "p_grayscale", "p_blur"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"ClassicAugment.{name} must be a probability, got {getattr(self, name)}")
        _check_range("blur_sigma", self.blur_sigma)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_images(images, generator, "ClassicAugment")
        b, dev = images.shape[0], images.device
        x = random_resized_crop_flip(images, generator, size=self.size, scale=self.scale, ratio=self.ratio,
                                     p_hflip=self.p_hflip, p_vflip=self.p_vflip)
        if x.shape[1] == 3:
            jittered = color_jitter(x, generator, brightness=self.brightness, contrast=self.contrast,
                                    saturation=self.saturation, hue=self.hue)
        else:
            jittered = intensity_jitter(x, generator, brightness=self.brightness, contrast=self.contrast,
                                        gamma=self.gamma)
        x = torch.where(bernoulli(generator, self.p_jitter, b, dev).view(-1, 1, 1, 1), jittered, x)
        if x.shape[1] == 3:
            x = random_grayscale(x, generator, p=self.p_grayscale)
        sigma = uniform(generator, self.blur_sigma[0], self.blur_sigma[1], b, device=dev)
        blur = bernoulli(generator, self.p_blur, b, dev)
        blurred = gaussian_blur(x, sigma, radius=math.ceil(3 * self.blur_sigma[1]))
        x = torch.where(blur.view(-1, 1, 1, 1), blurred, x)
        return x.clamp(0, 1).to(images.dtype)

    def pair(self, images: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Two independent views of every sample, the input of all two-view methods."""
        return {"view1": self(images, generator), "view2": self(images, generator)}
