"""The pretraining health check: each check beats its trivial baseline only when the method learned."""
import torch

from benchmark.health import HOLDOUT_MAX, health_check, holdout_split, mean_image
from benchmark.health_report import describe
from tests.conftest import TINY_DECODER, TINY_ENCODER
from zoo import PretrainMethod, UNet


class Stub(PretrainMethod):
    """Restores with a fixed rule and embeds with a fixed rule, so the verdict is known in advance."""

    name = "stub"
    trains_decoder = True

    def __init__(self, net, restore: str, embed: str):
        super().__init__(net)
        self.restore, self.embed = restore, embed

    def views(self, images, generator=None):
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        return {"view": (0.7 * images + 0.3 * noise)}

    def restoration(self, images, views):
        out = {"perfect": images, "grey": torch.full_like(images, 0.5)}[self.restore]
        return out, views["view"]

    def embeddings(self, images, views):
        flat = images.flatten(1)
        if self.embed == "own":
            return flat, views["view"].flatten(1) * 0 + flat
        return torch.ones_like(flat), torch.ones_like(flat)


def images(n=16, size=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


def check(restore, embed):
    net = UNet(TINY_ENCODER, 3, 3, decoder_channels=TINY_DECODER)
    x = images()
    return health_check(Stub(net, restore, embed), x, x.mean(0), torch.device("cpu"))


def test_a_method_that_restores_and_retrieves_passes():
    h = check("perfect", "own")
    assert h["restoration_mse"] == 0 and h["restoration_mse"] < h["mean_image_mse"] and h["identity_mse"] > 0
    assert h["retrieval_top1"] == 1.0 and h["retrieval_chance"] == 1 / 16
    assert h["passed"] and describe(h).startswith("passed")


def test_worse_than_the_mean_image_or_chance_fails():
    bad_restore = check("grey", "own")
    assert not bad_restore["restoration_ok"] and bad_restore["retrieval_ok"] and not bad_restore["passed"]
    bad_embed = check("perfect", "constant")  # argmax of ties is row 0: top-1 = chance
    assert bad_embed["retrieval_top1"] <= 1 / 16 and not bad_embed["passed"]
    assert describe(bad_embed).startswith("FAILED")


def test_holdout_is_fixed_disjoint_and_small_pools_are_checked_on_training_images():
    train, held, is_held = holdout_split(2048)
    assert is_held and len(held) == HOLDOUT_MAX and set(train.tolist()).isdisjoint(held.tolist())
    assert len(train) + len(held) == 2048 and torch.equal(held, holdout_split(2048)[1])
    train, checked, is_held = holdout_split(16)
    assert not is_held and len(train) == 16 and set(checked.tolist()) <= set(train.tolist())


def test_mean_image_of_uint8_images():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    got = mean_image(x, lambda b: b.float() / 255)
    torch.testing.assert_close(got, x.float().mean(0) / 255)
