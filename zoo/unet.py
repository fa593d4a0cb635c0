"""A 2D U-Net on any timm encoder.

Inputs and restoration targets stay in [0, 1]: the ImageNet normalisation the encoder expects
lives inside the model, so proxy tasks, losses and metrics never see normalised tensors.
Any H x W works: the input is padded to a multiple of the encoder's total stride and the
output cropped back, so there is no special case for 28-px MedMNIST or 584x565 DRIVE.
"""
from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .hub import HubMixin
from .unet_config import UNetConfig


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn_relu(cin + cskip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """One block per encoder stage (deepest first), then a last block back to input resolution."""

    def __init__(self, encoder_channels: list[int], decoder_channels: tuple[int, ...]):
        super().__init__()
        skips = list(reversed(encoder_channels[:-1])) + [0]
        if len(decoder_channels) != len(skips):
            raise ValueError(
                f"decoder_channels needs {len(skips)} entries for this encoder "
                f"({len(encoder_channels)} feature stages), got {len(decoder_channels)}"
            )
        cins = [encoder_channels[-1]] + list(decoder_channels[:-1])
        self.blocks = nn.ModuleList(DecoderBlock(ci, cs, co) for ci, cs, co in zip(cins, skips, decoder_channels))

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = features[-1]
        skips = list(reversed(features[:-1]))
        for i, block in enumerate(self.blocks):
            skip = skips[i] if i < len(skips) else None
            x = block(x, skip, skip.shape[-2:] if skip is not None else size)
        return x


def _channel_stats(values: tuple[float, ...], in_chans: int) -> torch.Tensor:
    """ImageNet mean/std for 3 channels; their average for grey; cycled for other counts."""
    if in_chans == 1:
        values = (sum(values) / len(values),)
    else:
        values = tuple(values[i % len(values)] for i in range(in_chans))
    return torch.tensor(values, dtype=torch.float32).view(1, in_chans, 1, 1)


class UNet(HubMixin, nn.Module):
    """U-Net: ``encoder`` (timm, features_only, timm's parameter names), ``decoder``, ``head``.

    ``forward(x)`` maps images in [0, 1] (B, in_chans, H, W) to (B, out_chans, H, W) logits.
    ``forward_pooled(x)`` gives the globally pooled last encoder feature map, which projection
    heads and classifiers use. ``UNet.from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` come from
    ``HubMixin`` (``zoo.hub``).
    """

    def __init__(
        self,
        encoder: str = "resnet50",
        in_chans: int = 3,
        out_chans: int = 3,
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
        encoder_kwargs: dict | None = None,
        pretrained_encoder: bool = False,
    ):
        super().__init__()
        self.config = UNetConfig(encoder, in_chans, out_chans, tuple(decoder_channels), dict(encoder_kwargs or {}))
        try:
            self.encoder = timm.create_model(
                encoder, features_only=True, in_chans=in_chans, pretrained=pretrained_encoder, **self.config.encoder_kwargs
            )
        except RuntimeError as err:
            if "Unknown model" in str(err):
                raise ConfigError(f"unknown timm encoder {encoder!r}; see timm.list_models()") from err
            raise
        channels = self.encoder.feature_info.channels()
        self.stride = max(self.encoder.feature_info.reduction())
        self.num_features = channels[-1]
        self.decoder = UNetDecoder(channels, self.config.decoder_channels)
        self.head = nn.Conv2d(self.config.decoder_channels[-1], out_chans, kernel_size=1)
        cfg = getattr(self.encoder, "pretrained_cfg", None) or {}
        self.register_buffer("mean", _channel_stats(tuple(cfg.get("mean", (0.485, 0.456, 0.406))), in_chans), persistent=False)
        self.register_buffer("std", _channel_stats(tuple(cfg.get("std", (0.229, 0.224, 0.225))), in_chans), persistent=False)

    @classmethod
    def from_config(cls, config: UNetConfig | dict) -> "UNet":
        if isinstance(config, dict):
            config = UNetConfig.from_dict(config)
        return cls(config.encoder, config.in_chans, config.out_chans, config.decoder_channels, config.encoder_kwargs)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"UNet({self.config.encoder}) expects images of shape (B, {self.config.in_chans}, H, W), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"UNet expects float images in [0, 1], got dtype {x.dtype}; divide uint8 images by 255")

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        return x

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder feature maps (shallow to deep) of the normalised, padded input."""
        self._check(x)
        return self.encoder(self._pad((x - self.mean) / self.std))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[-1].mean(dim=(2, 3))

    def decode(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Decoder + head on given features, cropped back to ``size`` (the un-padded input size)."""
        padded = (size[0] + (-size[0]) % self.stride, size[1] + (-size[1]) % self.stride)
        y = self.head(self.decoder(features, padded))
        top, left = (padded[0] - size[0]) // 2, (padded[1] - size[1]) // 2
        return y[..., top : top + size[0], left : left + size[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.forward_features(x), x.shape[-2:])


def from_pretrained(name_or_path, **kwargs) -> UNet:
    """``UNet.from_pretrained`` as a function, for code that loads without naming the class."""
    return UNet.from_pretrained(name_or_path, **kwargs)
