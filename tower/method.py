"""TOWER: contrastive (instance level) + generative (context level) pretraining of a whole U-Net.

L = w_c * InfoNCE(h(f(x)), h(f(x''))) + w_g * MSE(sigmoid(d(f(x''))), x), with x'' the
knowledge-based view of ``tower.proxy``. The view's encoder features serve both branches, so
each step runs the encoder once on the batch [x; x''] and the decoder on the view's half.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from zoo import PretrainMethod, UNet, info_nce, projection_head
from zoo.errors import ConfigError

from .proxy import ProxyConfig, make_view


class Tower(PretrainMethod):
    """TOWER on a ``UNet`` whose output restores its input (out_chans == in_chans).

    ``mask`` overrides the modality's default mask ("rays", "stripes", "blocks", "none");
    ``translate=False`` turns the Bézier translation off. A weight of 0 disables its branch,
    skips its compute and freezes the parts only it trains (projection head, or decoder), which
    gives the paper's ablations (contrastive-only, generative-only).
    """

    name = "tower"
    paper_name = "TOWER"
    trains_decoder = True
    tiny_hparams = {"proj_hidden_dim": 32, "proj_dim": 16}
    revision = 2  # 2: images and views encoded in one pass (BatchNorm's running stats; tests/tower/test_batchnorm.py)

    @dataclass(frozen=True)
    class Hparams:
        """Loss weights and temperature, the projector, and the knowledge-based view (``tower.proxy``)."""
        temperature: float = 0.1
        contrastive_weight: float = 1.0
        generative_weight: float = 1.0
        proj_hidden_dim: int = 2048
        proj_dim: int = 128
        mask: str | None = None  # None: the modality's default
        translate: bool = True
        p_translate: float = 0.5
        p_mask: float = 0.5
        num_rays: int = 80
        ray_thickness: float | None = None
        mask_ratio: float = 0.5
        mask_size: int | None = None
        curves: str = "random"

    def __init__(self, net: UNet, modality: str = "generic", **hparams):
        super().__init__(net, modality, **hparams)
        hp = self.hp
        if hp.generative_weight == 0:
            # without the generative branch the decoder learns nothing: say so, so that fine-tuning
            # starts it like random init (the paper's "Contrastive(E) + Random(D)")
            self.freeze_decoder()
        if hp.contrastive_weight < 0 or hp.generative_weight < 0 or hp.contrastive_weight + hp.generative_weight == 0:
            raise ConfigError(
                f"Tower needs non-negative weights, at least one positive; got contrastive_weight="
                f"{hp.contrastive_weight}, generative_weight={hp.generative_weight}"
            )
        if hp.generative_weight > 0 and net.config.out_chans != net.config.in_chans:
            raise ValueError(
                f"Tower's generative branch restores the input, so the UNet needs out_chans == in_chans; "
                f"got in_chans={net.config.in_chans}, out_chans={net.config.out_chans}"
            )
        self.temperature = hp.temperature
        self.contrastive_weight = hp.contrastive_weight
        self.generative_weight = hp.generative_weight
        cfg = ProxyConfig.for_modality(modality)
        self.proxy = replace(
            cfg, mask=cfg.mask if hp.mask is None else hp.mask, num_rays=hp.num_rays, thickness=hp.ray_thickness,
            ratio=hp.mask_ratio, size=hp.mask_size, p_translate=hp.p_translate if hp.translate else 0.0,
            p_mask=hp.p_mask, curves=hp.curves,
        )
        self.projector = projection_head(net.num_features, hp.proj_hidden_dim, hp.proj_dim)
        if hp.contrastive_weight == 0:
            self.projector.requires_grad_(False)

    def views(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """{"view": x'', "translated": x', "mask"}: the last two for pictures and checks."""
        return make_view(images, generator, self.proxy)

    def _project(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.projector(features[-1].mean(dim=(2, 3)))

    def loss(self, images: torch.Tensor, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        view = views["view"]
        n = len(images)
        if self.contrastive_weight > 0:
            # one encoder pass over [x; x'']: BatchNorm then normalises the view's features with the same
            # (image + view) statistics that its running averages hold, so the restoration measured in eval
            # mode (health check, exported weights) is the one trained; two passes left running stats of a
            # mixture that neither training pass saw (held-out restoration 0.0035 vs 0.0024 in train mode)
            both = self.net.forward_features(torch.cat([images, view]))
            feats = [f[n:] for f in both]
        else:
            feats = self.net.forward_features(view)
        out: dict[str, torch.Tensor] = {}
        total = images.new_zeros((), dtype=torch.float32)
        if self.contrastive_weight > 0:
            z = self._project(both)
            out["contrastive"] = info_nce(z[:n], z[n:], self.temperature)
            total = total + self.contrastive_weight * out["contrastive"]
        if self.generative_weight > 0:
            restored = torch.sigmoid(self.net.decode(feats, images.shape[-2:]))
            out["generative"] = F.mse_loss(restored.float(), images.float())
            total = total + self.generative_weight * out["generative"]
        return {"loss": total, **out}

    def positive_pair(self, images, views):
        return None if self.contrastive_weight == 0 else (images, views["view"])

    def embed(self, x):
        return self._project(self.net.forward_features(x))

    def restoration(self, images, views):
        if self.generative_weight == 0:
            return None
        view = views["view"]  # the loss's own path: encoder features of the view, then the decoder
        return torch.sigmoid(self.net.decode(self.net.forward_features(view), view.shape[-2:])), view
