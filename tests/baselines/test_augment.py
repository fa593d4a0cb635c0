from dataclasses import replace

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from baselines import augment
from baselines.augment import JITTER_OPS, ClassicAugment, color_jitter, gaussian_blur, resized_crop, sample_boxes

ATOL = 1e-5  # float32 images in [0, 1]: summation order is the only difference from torchvision


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def torchvision_view(aug: ClassicAugment, image: torch.Tensor, params, b: int) -> torch.Tensor:
    """Sample b of the view, built with torchvision.transforms.v2.functional from its parameters."""
    size = list(aug.size or image.shape[-2:])
    top, left, height, width = params.box[b].tolist()
    x = TF.resized_crop(image, top, left, height, width, size, antialias=True)
    if params.hflip[b]:
        x = TF.horizontal_flip(x)
    if params.vflip[b]:
        x = TF.vertical_flip(x)
    if params.jitter[b]:
        for op in params.order[b].tolist():
            if JITTER_OPS[op] != "hue" or aug.hue > 0:  # torchvision skips a zero hue range
                x = getattr(TF, f"adjust_{JITTER_OPS[op]}")(x, params.factors[b, op].item())
    if params.grayscale[b]:
        x = TF.rgb_to_grayscale(x, num_output_channels=x.shape[0])  # as RandomGrayscale; grey stays grey
    if params.blur[b]:
        sigma = params.sigma[b].item()
        x = TF.gaussian_blur(x, [aug.kernel_size] * 2, [sigma, sigma])
    return x


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("hw, size", [((32, 32), None), ((40, 28), (24, 20)), ((20, 24), (36, 30))],
                         ids=["same-size", "shrink", "enlarge"])
def test_batched_view_equals_torchvision_per_sample(channels, hw, size):
    aug = ClassicAugment(size=size, scale=(0.08, 1.0), p_hflip=0.5, p_vflip=0.5, p_jitter=0.5, hue=0.5,
                         p_grayscale=0.5, p_blur=0.5, blur_kernel_size=9)
    images = torch.rand(24, channels, *hw)
    params = aug.sample_params(images, gen(3))
    for flag in (params.hflip, params.vflip, params.jitter, params.grayscale, params.blur):
        assert flag.any() and not flag.all()  # both branches of every step are exercised
    out = aug.apply(images, params)
    expected = torch.stack([torchvision_view(aug, images[b], params, b) for b in range(len(images))])
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.equal(out, aug(images, gen(3)))  # __call__ is sample_params + apply


def test_accelerator_path_gives_the_same_views(monkeypatch):
    # off SUBSET_DEVICES every sample runs every step and `where` picks (no host sync on a GPU)
    aug = ClassicAugment(p_jitter=0.5, gamma=(0.5, 2.0))
    for channels in (1, 3):
        images = torch.rand(16, channels, 24, 24)
        params = aug.sample_params(images, gen())
        subset = aug.apply(images, params)
        monkeypatch.setattr(augment, "SUBSET_DEVICES", ())
        torch.testing.assert_close(aug.apply(images, params), subset, atol=1e-6, rtol=0)
        monkeypatch.undo()


@pytest.mark.parametrize("op", range(4))
def test_each_jitter_op_alone_equals_torchvision(op):
    images = torch.rand(16, 3, 12, 12)
    factors = torch.stack([torch.rand(16) * 2, torch.rand(16) * 2, torch.rand(16) * 2, torch.rand(16) - 0.5], 1)
    order = torch.tensor([[op] + [o for o in range(4) if o != op]] * 16)
    identity = torch.tensor([1.0, 1.0, 1.0, 0.0])
    factors[:, [o for o in range(4) if o != op]] = identity[[o for o in range(4) if o != op]]
    out = color_jitter(images, factors, order, hue=op == 3)
    fn = getattr(TF, f"adjust_{JITTER_OPS[op]}")
    expected = torch.stack([fn(images[b], factors[b, op].item()) for b in range(16)])
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


def test_every_sample_runs_the_jitter_ops_in_its_own_order():
    aug = ClassicAugment()
    n = 2400
    params = aug.sample_params(torch.rand(n, 3, 4, 4), gen())
    assert torch.equal(params.order.sort(dim=1).values, torch.arange(4).expand(n, 4))
    # all 24 orders occur, uniformly: chi-square below its 99.9% quantile at 23 degrees of freedom
    counts = torch.unique(params.order, dim=0, return_counts=True)[1].double()
    assert len(counts) == 24 and ((counts - n / 24) ** 2 / (n / 24)).sum() < 49.7


@pytest.mark.parametrize("hw, scale, ratio", [((24, 40), (0.08, 1.0), (3 / 4, 4 / 3)),
                                              ((32, 32), (0.5, 1.0), (0.5, 2.0))])
def test_crop_boxes_are_distributed_as_torchvision(hw, scale, ratio):
    n = 3000
    ours = sample_boxes(n, *hw, gen(), scale=scale, ratio=ratio).double()
    rrc = T.RandomResizedCrop(size=8, scale=scale, ratio=ratio)
    torch.manual_seed(0)
    image = torch.zeros(1, *hw)
    theirs = torch.tensor([list(rrc.make_params([image]).values()) for _ in range(n)]).double()
    assert (ours[:, 2:] >= 1).all() and (ours[:, :2] + ours[:, 2:] <= torch.tensor(hw)).all()

    def stats(boxes):  # area fraction, log aspect, box centre (relative), each mean and std
        top, left, h, w = boxes.unbind(1)
        values = torch.stack([h * w / (hw[0] * hw[1]), torch.log(w / h),
                              (top + h / 2) / hw[0], (left + w / 2) / hw[1]], 1)
        return torch.cat([values.mean(0), values.std(0)])

    torch.testing.assert_close(stats(ours), stats(theirs), atol=0.025, rtol=0)


def test_crop_falls_back_to_torchvision_centre_crop():
    # an aspect of 3-4 never fits a square image at these areas: every try fails
    hw, scale, ratio = (16, 16), (0.9, 1.0), (3.0, 4.0)
    theirs = list(T.RandomResizedCrop(size=8, scale=scale, ratio=ratio).make_params([torch.zeros(1, *hw)]).values())
    assert torch.equal(sample_boxes(5, *hw, gen(), scale=scale, ratio=ratio), torch.tensor([theirs] * 5))


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
    images = torch.rand(3, 3, 16, 20)
    full = torch.tensor([[0, 0, 16, 20]] * 3)
    assert torch.equal(resized_crop(images, full, (16, 20)), images)
    yes = torch.ones(3, dtype=torch.bool)
    assert torch.equal(resized_crop(images, full, (16, 20), hflip=yes, vflip=yes), images.flip(-1).flip(-2))


def test_grey_images_get_brightness_and_contrast_only():
    # saturation and hue are no-ops on 1 channel, as in torchvision; an optional gamma adds to the jitter
    images = torch.rand(8, 1, 16, 16)
    kw = dict(p_hflip=0, p_vflip=0, scale=(1.0, 1.0), ratio=(1.0, 1.0), p_jitter=1.0, p_blur=0.0)
    plain, curved = ClassicAugment(**kw), ClassicAugment(gamma=(0.5, 2.0), **kw)
    params = curved.sample_params(images, gen())
    assert params.gamma is not None and plain.sample_params(images, gen()).gamma is None
    out = plain.apply(images, replace(params, gamma=None))
    expected = torch.stack([torchvision_view(plain, images[b], params, b) for b in range(8)])
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(curved.apply(images, params), out.pow(params.gamma.view(-1, 1, 1, 1)))


def test_gaussian_blur_per_sample_sigma():
    impulse = torch.zeros(2, 1, 21, 21)
    impulse[:, :, 10, 10] = 1
    out = gaussian_blur(impulse, torch.tensor([0.5, 2.0]), kernel_size=13)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)  # mass preserved
    assert out[0, 0, 10, 10] > out[1, 0, 10, 10]  # wider sigma spreads more
    constant = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(constant, torch.tensor([1.5]), kernel_size=13), constant, atol=1e-6)


def test_clear_errors():
    aug = ClassicAugment()
    with pytest.raises(ValueError, match="B, C, H, W"):
        aug(torch.rand(3, 8, 8), gen())
    with pytest.raises(TypeError, match="255"):
        aug(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match="probability"):
        ClassicAugment(p_blur=1.5)
    with pytest.raises(ValueError, match="scale"):
        ClassicAugment(scale=(0.5, 2.0))
    with pytest.raises(ValueError, match="hue"):
        ClassicAugment(hue=0.6)
    with pytest.raises(ValueError, match="odd"):
        ClassicAugment(blur_kernel_size=4)
    with pytest.raises(ValueError, match="params are for 2 samples"):
        aug.apply(torch.rand(3, 3, 8, 8), aug.sample_params(torch.rand(2, 3, 8, 8), gen()))
