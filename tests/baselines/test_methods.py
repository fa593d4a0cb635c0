"""The baselines' own behaviour; what every method shares is checked by tests/contract on every registered one."""
import pytest
import torch

from baselines import BYOL, MoCo, ModelGenesis, SimCLR
from benchmark.core.registry import method_class

BASELINES = [SimCLR, BYOL, MoCo, ModelGenesis]


def make(cls, tiny_unet, channels=3, seed=0):
    torch.manual_seed(seed)
    return cls(tiny_unet(channels, seed=seed), **cls.tiny_hparams)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_names_every_baseline():
    for name, cls in (("simclr", SimCLR), ("byol", BYOL), ("moco", MoCo), ("genesis", ModelGenesis)):
        assert method_class(name) is cls and cls.name == name
    assert ModelGenesis.trains_decoder and not any(c.trains_decoder for c in (SimCLR, BYOL, MoCo))
    assert [c.paper_name for c in BASELINES] == ["SimCLR-v1", "BYOL", "MoCo", "Model Genesis"]


def test_hparams_show_the_papers_defaults():
    assert SimCLR.hparams()["temperature"] == 0.1
    assert BYOL.hparams()["base_momentum"] == 0.996
    moco = MoCo.hparams()
    assert (moco["temperature"], moco["momentum"], moco["queue_size"]) == (0.2, 0.999, 4096)
    assert ModelGenesis.hparams()["p_translation"] == 0.9


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.name)
def test_views_are_image_shaped(cls, tiny_unet):
    """No baseline view is a mask: each is a whole corrupted or augmented image."""
    images = torch.rand(4, 3, 32, 32)
    views = make(cls, tiny_unet).views(images, gen(3))
    assert views and all(v.shape == images.shape for v in views.values())


def test_genesis_loss_is_the_mse_of_the_sigmoid_restoration(tiny_unet):
    method = make(ModelGenesis, tiny_unet)
    images = torch.rand(4, 3, 32, 32)
    views = method.views(images, gen())
    expected = ((torch.sigmoid(method.net(views["view"])) - images) ** 2).mean()
    assert torch.allclose(method.loss(images, views)["loss"], expected, atol=1e-6)


def test_genesis_needs_a_restoring_unet(tiny_unet):
    with pytest.raises(ValueError, match="out_chans == in_chans"):
        ModelGenesis(tiny_unet(3, out_chans=2))
    with pytest.raises(ValueError, match="probability"):
        ModelGenesis(tiny_unet(3), p_paint=2.0)


def test_bad_hyper_parameters_are_refused(tiny_unet):
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(tiny_unet(3), temperature=0)
    with pytest.raises(ValueError, match="base_momentum"):
        BYOL(tiny_unet(3), base_momentum=1.5)
    with pytest.raises(ValueError, match="queue_size"):
        MoCo(tiny_unet(3), queue_size=0)
