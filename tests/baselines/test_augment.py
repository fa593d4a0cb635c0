import pytest
import torch

from baselines.augment import (ClassicAugment, color_jitter, gaussian_blur, intensity_jitter,
                               random_grayscale, random_resized_crop_flip)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("hw", [(32, 32), (28, 45)])
def test_classic_augment_shape_range_and_variety(channels, hw):
    images = torch.rand(1, channels, *hw).repeat(8, 1, 1, 1)  # the same image 8 times
    out = ClassicAugment()(images, gen())
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    # every sample got its own parameters: no two views of the identical input coincide
    flat = out.flatten(1)
    assert torch.cdist(flat, flat).add(torch.eye(8) * 1e3).min() > 1e-3


def test_classic_augment_is_reproducible_from_the_generator_seed():
    images = torch.rand(6, 3, 32, 32)
    aug = ClassicAugment()
    assert torch.equal(aug(images, gen(1)), aug(images, gen(1)))
    assert not torch.allclose(aug(images, gen(1)), aug(images, gen(2)))


def test_classic_augment_output_size_and_pair():
    images = torch.rand(4, 1, 40, 30)
    views = ClassicAugment(size=(16, 24)).pair(images, gen())
    assert views["view1"].shape == views["view2"].shape == (4, 1, 16, 24)
    assert not torch.allclose(views["view1"], views["view2"])


def test_full_crop_without_flips_is_the_identity_and_flips_flip():
    images = torch.rand(3, 3, 16, 16)
    kw = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    same = random_resized_crop_flip(images, gen(), p_hflip=0.0, p_vflip=0.0, **kw)
    assert torch.allclose(same, images, atol=1e-5)
    flipped = random_resized_crop_flip(images, gen(), p_hflip=1.0, p_vflip=1.0, **kw)
    assert torch.allclose(flipped, images.flip(-1).flip(-2), atol=1e-5)


def test_small_crops_zoom_in():
    # a linear ramp: a crop of area fraction s spans about sqrt(s) of the intensity range
    ramp = torch.linspace(0, 1, 64).expand(4, 1, 64, 64).contiguous()
    out = random_resized_crop_flip(ramp, gen(), scale=(0.25, 0.25), ratio=(1.0, 1.0), p_hflip=0, p_vflip=0)
    spans = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    assert torch.allclose(spans, torch.full((4,), 0.5), atol=0.05)


def test_color_jitter_keeps_grey_grey_and_changes_colour():
    grey = torch.rand(5, 1, 12, 12).expand(5, 3, 12, 12)
    out = color_jitter(grey, gen())
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)
    colour = torch.rand(5, 3, 12, 12)
    out = color_jitter(colour, gen())
    assert out.min() >= 0 and out.max() <= 1 and (out - colour).abs().mean() > 0.01


def test_random_grayscale_probability_one_and_zero():
    images = torch.rand(4, 3, 8, 8)
    out = random_grayscale(images, gen(), p=1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    assert torch.equal(random_grayscale(images, gen(), p=0.0), images)


def test_intensity_jitter_for_grey_images():
    images = torch.rand(6, 1, 16, 16)
    out = intensity_jitter(images, gen())
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    per_sample_change = (out - images).abs().mean(dim=(1, 2, 3))
    assert (per_sample_change > 1e-3).all()


def test_gaussian_blur_per_sample_sigma():
    impulse = torch.zeros(2, 1, 21, 21)
    impulse[:, :, 10, 10] = 1
    out = gaussian_blur(impulse, torch.tensor([0.5, 2.0]))
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)  # mass preserved
    assert out[0, 0, 10, 10] > out[1, 0, 10, 10]  # wider sigma spreads more
    # separable Gaussian: the response is the outer product of the 1-D kernel
    k = torch.exp(-0.5 * (torch.arange(-6, 7.0) / 2.0) ** 2)
    k = k / k.sum()
    assert torch.allclose(out[1, 0, 4:17, 4:17], torch.outer(k, k), atol=1e-6)
    constant = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(constant, torch.tensor([1.5])), constant, atol=1e-6)


def test_clear_errors():
    aug = ClassicAugment()
    with pytest.raises(ValueError, match="B, C, H, W"):
        aug(torch.rand(3, 8, 8), gen())
    with pytest.raises(TypeError, match="255"):
        aug(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match="probability"):
        ClassicAugment(p_blur=1.5)
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop_flip(torch.rand(1, 1, 8, 8), scale=(0.5, 2.0))
