import pytest
import torch

from tests.conftest import TINY_DECODER, TINY_ENCODER
from zoo import UNet, UNetConfig


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("size", [(28, 28), (64, 64), (224, 224), (584, 565)])
def test_forward_backward_any_size(in_chans, size, tiny_unet):
    net = tiny_unet(in_chans)
    x = torch.rand(2, in_chans, *size, requires_grad=True)
    y = net(x)
    assert y.shape == (2, in_chans, *size)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())


def test_resnet50_is_the_default_and_pools_2048():
    net = UNet()
    assert net.config.encoder == "resnet50" and net.num_features == 2048
    assert net.forward_pooled(torch.rand(1, 3, 64, 64)).shape == (1, 2048)


def test_encoder_keeps_timm_parameter_names():
    import timm

    net = UNet("resnet18", 1, 1)
    plain = timm.create_model("resnet18", in_chans=1, num_classes=0)
    assert set(net.encoder.state_dict()) == set(plain.state_dict())


def test_normalisation_is_inside_the_model(tiny_unet):
    net = tiny_unet(3).eval()
    assert "mean" not in net.state_dict()  # not a weight: rebuilt from the encoder's config
    x = torch.rand(1, 3, 32, 32)
    feats = net.encoder((x - net.mean) / net.std)
    assert torch.allclose(feats[-1], net.forward_features(x)[-1])


def test_padding_crops_back_to_the_input_and_keeps_content_aligned(tiny_unet):
    net = tiny_unet(1).eval()
    x = torch.rand(1, 1, 30, 30)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    assert torch.allclose(net(x), net(padded)[..., 1:-1, 1:-1], atol=1e-5)


def test_clear_errors_for_wrong_input(tiny_unet):
    net = tiny_unet(3)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, H, W\)"):
        net(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match="uint8"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown timm encoder"):
        UNet("no_such_encoder")


def test_config_round_trip():
    cfg = UNetConfig(TINY_ENCODER, 1, 2, TINY_DECODER)
    net = UNet.from_config(cfg.to_dict())
    assert net.config == cfg
