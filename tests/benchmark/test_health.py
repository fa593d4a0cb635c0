"""The pretraining health check: each check beats its free baselines (mean image, identity, raw pixels, the untrained
network) only when the method learned; an untrained U-Net and raw pixels fail it."""
import torch

from benchmark.pretraining.health import (
    HOLDOUT_MAX,
    health_check,
    holdout_split,
    mean_image,
    measure,
    retrieval_bar,
    standardised_pixels,
)
from benchmark.tasks.synth_fundus import generate
from tests.conftest import TINY_DECODER, TINY_ENCODER
from tower.method import Tower
from zoo import PretrainMethod, UNet
from zoo.health import describe


class Stub(PretrainMethod):
    """Restores with a fixed rule and embeds with a fixed rule, so the verdict is known in advance."""

    name = "stub"
    trains_decoder = True

    def __init__(self, net, restore: str, embedding: str):
        super().__init__(net)
        self.restore, self.embedding = restore, embedding

    def views(self, images, generator=None):  # a mirrored, noisy copy: its raw pixels hardly match the image's
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        return {"view": (0.5 * images.flip(-1, -2) + 0.5 * noise)}

    def restoration(self, images, views):
        out = {"perfect": images, "grey": torch.full_like(images, 0.5)}[self.restore]
        return out, views["view"]

    def positive_pair(self, images, views):
        return images, views["view"]

    def embeddings(self, images, views):  # "own": the image itself on both sides, a perfect embedding
        flat = images.flatten(1)
        if self.embedding == "own":
            return flat, flat.clone()
        if self.embedding == "pixels":  # what the raw-pixel baseline computes: nothing learned
            return standardised_pixels(images), standardised_pixels(views["view"])
        return torch.ones_like(flat), torch.ones_like(flat)


def images(n=16, size=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


def tiny_net():
    return UNet(TINY_ENCODER, 3, 3, decoder_channels=TINY_DECODER)


def check(restore, embedding, untrained=None):
    x = images()
    return health_check(Stub(tiny_net(), restore, embedding), x, x.mean(0), untrained)


def test_a_method_that_restores_and_retrieves_passes():
    h = check("perfect", "own")
    assert h["restoration_mse"] == 0 and h["restoration_mse"] < h["mean_image_mse"] and h["identity_mse"] > 0
    assert h["retrieval_top1"] == 1.0 and h["retrieval_chance"] == 1 / 16 and h["retrieval_top1"] > h["retrieval_bar"]
    assert h["passed"] and describe(h).startswith("passed")


def test_worse_than_the_mean_image_or_chance_fails():
    bad_restore = check("grey", "own")
    assert not bad_restore["restoration_ok"] and bad_restore["retrieval_ok"] and not bad_restore["passed"]
    bad_embed = check("perfect", "constant")  # argmax of ties is row 0: top-1 = chance
    assert bad_embed["retrieval_top1"] <= 1 / 16 and not bad_embed["passed"]
    assert describe(bad_embed).startswith("FAILED")


def test_raw_pixels_and_an_untrained_unet_fail_on_real_views_among_512_candidates():
    """TOWER's own views of 512 synthetic fundus images: an embedding that is the raw pixels scores what the
    pixel baseline scores and fails; TOWER's untrained network scores what it scored at step 0 and fails; an
    embedding that really matches the pairs passes."""
    torch.manual_seed(0)
    x = generate(512, 32, seed=5).images.float() / 255
    mean = x.mean(0)
    tower = Tower(tiny_net(), "fundus", proj_dim=16, proj_hidden_dim=32)
    untrained = measure(tower, x)
    assert untrained["n"] == 512 and untrained["retrieval_chance"] == 1 / 512
    h = health_check(tower, x, mean, untrained)
    assert h["retrieval_top1"] == untrained["retrieval_top1"] and not h["retrieval_ok"] and not h["passed"]
    assert "untrained" in describe(h) and "raw pixels" in describe(h)

    pixels = Stub(tiny_net(), "perfect", "pixels")
    pixels.views = tower.views  # the same views TOWER trains on
    h = health_check(pixels, x, mean, measure(pixels, x))
    assert h["pixels_top1"] > 5 / 512, "TOWER's views leave the raw pixels of a pair alike"
    assert abs(h["retrieval_top1"] - h["pixels_top1"]) < 1e-9 and not h["retrieval_ok"] and not h["passed"]

    perfect = Stub(tiny_net(), "perfect", "own")
    perfect.views = tower.views
    h = health_check(perfect, x, mean, untrained)
    assert h["retrieval_ok"] and h["passed"]


def test_the_retrieval_bar_is_the_better_free_baseline_plus_three_standard_errors():
    assert retrieval_bar(0.0, 0.0, 512) == 5 / 512  # nothing free: 5x chance
    bar = retrieval_bar(0.16, 0.05, 512)
    assert 0.16 + 3 * (0.16 * 0.84 / 512) ** 0.5 == bar
    assert retrieval_bar(0.05, 0.16, 512) == bar  # the better of the two, whichever it is


def test_holdout_is_fixed_disjoint_and_small_pools_are_checked_on_training_images():
    train, held, is_held = holdout_split(2048)
    assert is_held and len(held) == HOLDOUT_MAX == 512 and set(train.tolist()).isdisjoint(held.tolist())
    assert len(train) + len(held) == 2048 and torch.equal(held, holdout_split(2048)[1])
    assert len(holdout_split(1080)[1]) == 270  # at most a quarter of a pool
    train, checked, is_held = holdout_split(16)
    assert not is_held and len(train) == 16 and set(checked.tolist()) <= set(train.tolist())


def test_mean_image_of_uint8_images():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    got = mean_image(x, lambda b: b.float() / 255)
    torch.testing.assert_close(got, x.float().mean(0) / 255)
