"""Models Genesis (Zhou et al. 2019/2021), 2D: restore images from a corrupted view.

The corruptions follow Models Genesis' ``generate_pair`` with its default rates, rewritten to
run batched on the device (the reference applies numpy per sample, ~20 s for a batch of 128):

1. local pixel shuffling (p 0.5): pixels are permuted inside small windows;
2. nonlinear intensity translation (p 0.9): the batched Bézier curves TOWER uses
   (``zoo.image_ops.nonlinear_translation``, Models Genesis' curve sampling);
3. painting (p 0.9): in-painting (p 0.2: up to 5 boxes of uniform noise) or else out-painting
   (noise everywhere except up to 5 kept boxes).

The reference's random flips (applied to input and target alike) are plain data augmentation,
not part of the restoration task, and are left out. Loss: MSE(sigmoid(U-Net(view)), image).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo import PretrainMethod, UNet
from zoo.errors import ConfigError
from zoo.image_ops import bernoulli, check_images, nonlinear_translation, randint

__all__ = ["ModelGenesis", "local_pixel_shuffle", "shuffle_within_windows", "paint", "box_mask", "genesis_view"]

MAX_BOXES = 5          # Models Genesis: up to 5 in-painted boxes, 1 + up to 4 out-painting boxes
P_ANOTHER_BOX = 0.95   # ... each further box drawn with this probability
BOX_MARGIN = 3         # ... boxes keep 3 px from the border


def shuffle_within_windows(images: Tensor, window_ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Permute pixels (all channels together) at random among pixels with the same window id.

    ``window_ids`` (B, H, W) integers >= 0. Sorting by (window id, random key) lists every window's
    pixels in random order; a stable sort by window id alone lists them in raster order; both
    orders visit the windows in the same sequence with the same counts, so pairing them position
    by position moves each pixel within its window, and the whole batch is one argsort.
    """
    b, c, h, w = images.shape
    if window_ids.shape != (b, h, w):
        raise ValueError(f"window_ids must be ({b}, {h}, {w}), got {tuple(window_ids.shape)}")
    ids = window_ids.reshape(b, h * w).long()
    noise = torch.randint(0, 2**31, (b, h * w), generator=generator, device=images.device)
    src = (ids * 2**31 + noise).argsort(dim=1)
    dst = ids.argsort(dim=1, stable=True)
    flat = images.reshape(b, c, h * w)
    out = torch.empty_like(flat)
    out.scatter_(2, dst[:, None].expand(b, c, -1), flat.gather(2, src[:, None].expand(b, c, -1)))
    return out.reshape(b, c, h, w)


def local_pixel_shuffle(images: Tensor, generator: torch.Generator | None = None, *, p: float = 0.5,
                        max_window: float = 0.1) -> Tensor:
    """Shuffle pixels inside small windows (texture corrupted, global shape kept), per sample w.p. ``p``.

    Models Genesis shuffles 10,000 random windows of 1 .. 10% of the image side, which covers the
    image many times over; here each sample gets a tiling of square windows of one random side in
    [2, ``max_window`` x side] at a random offset, and every window is shuffled.
    """
    check_images(images, generator, "local_pixel_shuffle")
    b, _, h, w = images.shape
    dev = images.device
    hi = max(2, round(max_window * min(h, w)))
    side = randint(generator, 2, hi, b, device=dev)
    off_y = (torch.rand(b, generator=generator, device=dev) * side).long()
    off_x = (torch.rand(b, generator=generator, device=dev) * side).long()
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    s = side.view(b, 1, 1)
    ids = ((ys + off_y.view(b, 1, 1)) // s) * (w + 1) + (xs + off_x.view(b, 1, 1)) // s
    shuffled = shuffle_within_windows(images, ids, generator)
    return torch.where(bernoulli(generator, p, b, dev).view(b, 1, 1, 1), shuffled, images)


def box_mask(shape: tuple[int, int, int], active: Tensor, side_h: tuple[int, int], side_w: tuple[int, int],
             generator: torch.Generator | None = None, *, margin: int = BOX_MARGIN) -> Tensor:
    """Union of axis-aligned boxes, (B, 1, H, W) bool; box k of sample b drawn where ``active[b, k]``.

    Sides uniform in the inclusive ranges, positions uniform with ``margin`` px to the border
    (less where the image is too small). One broadcast comparison per box slot.
    """
    b, h, w = shape
    dev = active.device
    count = active.shape[1]
    bh = randint(generator, side_h[0], side_h[1], b, count, device=dev)
    bw = randint(generator, side_w[0], side_w[1], b, count, device=dev)
    my = max(0, min(margin, (h - side_h[1]) // 2))
    mx = max(0, min(margin, (w - side_w[1]) // 2))
    y0 = my + (torch.rand(b, count, generator=generator, device=dev) * (h - bh - 2 * my + 1)).long()
    x0 = mx + (torch.rand(b, count, generator=generator, device=dev) * (w - bw - 2 * mx + 1)).long()
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    mask = torch.zeros(b, h, w, dtype=torch.bool, device=dev)
    for k in range(count):
        y, x, dy, dx = (t[:, k].view(b, 1, 1) for t in (y0, x0, bh, bw))
        mask |= (ys >= y) & (ys < y + dy) & (xs >= x) & (xs < x + dx) & active[:, k].view(b, 1, 1)
    return mask[:, None]


def paint(images: Tensor, generator: torch.Generator | None = None, *, p: float = 0.9,
          p_inpaint: float = 0.2) -> Tensor:
    """Models Genesis' image deformation: w.p. ``p``, in-painting (w.p. ``p_inpaint``) or out-painting.

    In-painting: up to 5 boxes with sides in [1/6, 1/3] of the image replaced by U(0, 1) noise.
    Out-painting: noise everywhere except 1 + up to 4 boxes with sides in [3/7, 4/7] of the image.
    """
    check_images(images, generator, "paint")
    b, _, h, w = images.shape
    dev = images.device
    do_paint = bernoulli(generator, p, b, dev)
    inpaint = bernoulli(generator, p_inpaint, b, dev)
    noise = torch.rand(images.shape, generator=generator, device=dev).to(images.dtype)
    more = torch.rand(b, MAX_BOXES, generator=generator, device=dev) < P_ANOTHER_BOX
    in_boxes = box_mask((b, h, w), more.cumprod(dim=1).bool(),
                        (max(1, h // 6), max(1, h // 3)), (max(1, w // 6), max(1, w // 3)), generator)
    keep_first = torch.ones(b, 1, dtype=torch.bool, device=dev)
    out_active = torch.cat([keep_first, more[:, 1:].cumprod(dim=1).bool()], dim=1)
    out_boxes = box_mask((b, h, w), out_active,
                         (h - 4 * h // 7, h - 3 * h // 7), (w - 4 * w // 7, w - 3 * w // 7), generator)
    inpainted = torch.where(in_boxes, noise, images)
    outpainted = torch.where(out_boxes, images, noise)
    painted = torch.where(inpaint.view(b, 1, 1, 1), inpainted, outpainted)
    return torch.where(do_paint.view(b, 1, 1, 1), painted, images)


def genesis_view(images: Tensor, generator: torch.Generator | None = None, *, p_shuffle: float = 0.5,
                 p_translation: float = 0.9, p_paint: float = 0.9, p_inpaint: float = 0.2) -> Tensor:
    """The corrupted input for one batch: shuffle -> translate -> paint, as Models Genesis orders them."""
    check_images(images, generator, "genesis_view")
    b, dev = images.shape[0], images.device
    x = local_pixel_shuffle(images, generator, p=p_shuffle)
    translate = bernoulli(generator, p_translation, b, dev).view(b, 1, 1, 1)
    x = torch.where(translate, nonlinear_translation(x, generator), x)
    return paint(x, generator, p=p_paint, p_inpaint=p_inpaint)


class ModelGenesis(PretrainMethod):
    """Restoration only: the whole U-Net (encoder and decoder) learns to undo ``genesis_view``."""

    name = "genesis"
    paper_name = "Model Genesis"
    trains_decoder = True

    @dataclass(frozen=True)
    class Hparams:
        p_shuffle: float = 0.5
        p_translation: float = 0.9
        p_paint: float = 0.9
        p_inpaint: float = 0.2

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        if net.config.out_chans != net.config.in_chans:
            raise ValueError(
                f"Model Genesis restores its input, so the UNet needs out_chans == in_chans, "
                f"got in_chans={net.config.in_chans}, out_chans={net.config.out_chans}"
            )
        self.rates = asdict(self.hp)
        for name, value in self.rates.items():
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must be a probability, got {value}")

    def views(self, images: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        return {"view": genesis_view(images, generator, **self.rates)}

    def loss(self, images: Tensor, views: dict[str, Tensor]) -> dict[str, Tensor]:
        restored = torch.sigmoid(self.net(views["view"]))
        return {"loss": F.mse_loss(restored.float(), images.float())}

    def restoration(self, images, views):
        return torch.sigmoid(self.net(views["view"])), views["view"]
