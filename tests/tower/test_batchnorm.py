"""TOWER's restoration measured in eval mode (health check, exported weights) is the one it trained.

The encoder sees the images and their views; if they ran through BatchNorm in separate passes, the
running statistics would mix two distributions that neither training pass normalised with, and the
eval-mode restoration would differ from the trained one (held-out MSE 0.0035 vs 0.0024 on synth-fundus).
"""
import torch
from torch import nn

from tower.method import Tower


def test_eval_mode_restoration_matches_training(tiny_unet):
    torch.manual_seed(0)
    method = Tower(tiny_unet(), modality="fundus", proj_hidden_dim=32, proj_dim=16)
    for m in method.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0  # running stats := the last training pass's batch stats
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    views = method.views(images, torch.Generator().manual_seed(2))
    method.train()
    with torch.no_grad():
        trained = method.loss(images, views)["generative"]
        method.eval()
        restored, _ = method.restoration(images, views)
    measured = torch.nn.functional.mse_loss(restored, images)
    # 1%: running variances are unbiased (n/(n-1)), batch normalisation's are not; separate passes were 4.6% off
    assert torch.allclose(measured, trained, rtol=1e-2), (measured.item(), trained.item())
