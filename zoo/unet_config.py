"""``UNetConfig``: what rebuilds a ``UNet``, on its own so that the weights format reads it without the model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class UNetConfig:
    """Everything needed to rebuild a UNet; stored in config.json next to the weights."""

    encoder: str = "resnet50"
    in_chans: int = 3
    out_chans: int = 3
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    encoder_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_channels"] = list(self.decoder_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "decoder_channels" in known:
            known["decoder_channels"] = tuple(known["decoder_channels"])
        return cls(**known)
