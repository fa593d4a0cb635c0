import pytest
import torch

from baselines.genesis import box_mask, genesis_view, local_pixel_shuffle, paint, shuffle_within_windows


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_genesis_view_is_batched_reproducible_and_varied(channels):
    images = torch.rand(1, channels, 32, 40).repeat(8, 1, 1, 1)
    a, b = genesis_view(images, gen(4)), genesis_view(images, gen(4))
    assert torch.equal(a, b) and a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, genesis_view(images, gen(5)))
    flat = a.flatten(1)  # each sample its own corruption
    assert torch.cdist(flat, flat).add(torch.eye(8) * 1e3).min() > 1e-3


def test_all_rates_zero_is_the_identity():
    images = torch.rand(4, 3, 24, 24)
    assert torch.equal(genesis_view(images, gen(), p_shuffle=0, p_translation=0, p_paint=0), images)


def test_shuffle_within_windows_preserves_every_window_multiset():
    b, h, w = 3, 12, 10
    images = torch.rand(b, 2, h, w)
    ids = torch.randint(0, 7, (b, h, w), generator=gen(1))  # arbitrary, even non-contiguous, windows
    out = shuffle_within_windows(images, ids, gen(2))
    assert not torch.equal(out, images)
    for s in range(b):
        for win in ids[s].unique():
            where = ids[s] == win
            before, after = images[s][:, where], out[s][:, where]  # (C, pixels)
            # pixels move as a whole (channels together): compare sorted columns
            assert torch.equal(before[:, before[0].argsort()], after[:, after[0].argsort()])


def test_local_pixel_shuffle_moves_pixels_only_locally():
    b, h, w = 4, 40, 40
    images = torch.arange(b * h * w, dtype=torch.float32).view(b, 1, h, w) / (b * h * w)
    out = local_pixel_shuffle(images, gen(), p=1.0, max_window=0.1)
    src = (out * (b * h * w)).round().long().view(b, h * w) - torch.arange(b)[:, None] * h * w
    assert torch.equal(src.sort(dim=1).values, torch.arange(h * w).expand(b, -1))  # a permutation per sample
    ys, xs = torch.arange(h * w) // w, torch.arange(h * w) % w
    assert (src // w - ys).abs().max() < 4 and (src % w - xs).abs().max() < 4  # windows of side <= 4
    assert ((src != torch.arange(h * w)).float().mean(dim=1) > 0.3).all()  # and most pixels moved
    assert torch.equal(local_pixel_shuffle(images, gen(), p=0.0), images)


def test_box_mask_sides_margin_and_activity():
    active = torch.tensor([[True, False], [False, False]])
    mask = box_mask((2, 30, 20), active, (6, 6), (4, 4), gen())
    assert mask.shape == (2, 1, 30, 20) and mask.dtype == torch.bool
    assert int(mask[0].sum()) == 24 and int(mask[1].sum()) == 0
    rows, cols = mask[0, 0].nonzero().unbind(1)
    assert rows.min() >= 3 and rows.max() <= 26 and cols.min() >= 3 and cols.max() <= 16


def test_inpainting_noises_boxes_and_outpainting_keeps_boxes():
    images = torch.full((16, 1, 42, 42), 0.5)
    inpainted = paint(images, gen(), p=1.0, p_inpaint=1.0)
    changed = (inpainted != 0.5).float().mean(dim=(1, 2, 3))
    # up to 5 boxes of 7..14 px sides: some, but well under half, of the image is noise
    assert (changed > 0).float().mean() > 0.9 and changed.max() < 0.5
    outpainted = paint(images, gen(), p=1.0, p_inpaint=0.0)
    kept = (outpainted == 0.5).float().mean(dim=(1, 2, 3))
    # at least one kept box of 18..24 px sides; the rest is noise
    assert (kept >= (18 * 18) / 42**2 - 1e-6).all() and (kept < 0.9).all()
    assert torch.equal(paint(images, gen(), p=0.0), images)


def test_tiny_images_still_work():
    images = torch.rand(4, 1, 8, 8)
    out = genesis_view(images, gen(), p_shuffle=1, p_translation=1, p_paint=1)
    assert out.shape == images.shape and torch.isfinite(out).all()
