"""benchmark.finetuning.inits: the fine-tuning inits (random, imagenet, an export folder) and their command-line errors."""
import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from benchmark.finetuning.inits import load_init
from zoo import UNetConfig

from ..conftest import TINY_DECODER, TINY_ENCODER
from ..zoo.test_hub import assert_same_state, make_saved


def test_load_init_random_and_pretrained_folder(tiny_unet, tmp_path):
    cfg = UNetConfig(TINY_ENCODER, 1, 2, TINY_DECODER)
    net = load_init("random", cfg.to_dict())
    assert net.config == cfg and net.export_info is None

    pre = make_saved(tiny_unet, tmp_path / "dec", in_chans=1, out_chans=1, trains_decoder=True)
    torch.manual_seed(1)
    net = load_init(str(tmp_path / "dec"), cfg)
    assert net.config.out_chans == 2 and net.head.weight.shape[0] == 2
    assert_same_state(pre.encoder, net.encoder)
    assert_same_state(pre.decoder, net.decoder)
    assert net.export_info.trains_decoder is True

    pre = make_saved(tiny_unet, tmp_path / "enc", in_chans=1, out_chans=1, trains_decoder=False)
    net = load_init(str(tmp_path / "enc"), cfg)
    assert_same_state(pre.encoder, net.encoder)
    assert not torch.equal(pre.decoder.blocks[0].convs[0][0].weight, net.decoder.blocks[0].convs[0][0].weight)

    with pytest.raises(ValueError, match=r"in_chans=1.*needs 'test_resnet' with in_chans=3"):
        load_init(str(tmp_path / "enc"), UNetConfig(TINY_ENCODER, 3, 2, TINY_DECODER))


def test_load_init_imagenet_offline_without_cache_explains_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    hub_id = timm.models.get_pretrained_cfg(TINY_ENCODER).hf_hub_id
    with pytest.raises(FileNotFoundError) as info:
        load_init("imagenet", UNetConfig(TINY_ENCODER, 1, 1, TINY_DECODER))
    msg = str(info.value)
    assert f"hf download {hub_id}" in msg and "HF_HUB_OFFLINE=1" in msg and "--imagenet-weights" in msg


@pytest.mark.parametrize("in_chans", [1, 3])
def test_load_init_imagenet_from_a_safetensors_file(tmp_path, in_chans):
    torch.manual_seed(0)
    model = timm.create_model(TINY_ENCODER)  # a stand-in for ImageNet weights, classifier included
    file = tmp_path / "imagenet.safetensors"
    save_file(model.state_dict(), str(file))
    net = load_init("imagenet", UNetConfig(TINY_ENCODER, in_chans, 1, TINY_DECODER), imagenet_weights=str(file))
    got = net.encoder.state_dict()
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    assert got.keys() == expected.keys()
    first = expected.pop("conv1.0.weight")
    assert torch.allclose(got["conv1.0.weight"], first if in_chans == 3 else first.sum(1, keepdim=True))
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    with pytest.raises(ValueError, match="only applies to --init imagenet"):
        load_init("random", UNetConfig(TINY_ENCODER, in_chans), imagenet_weights=str(file))
