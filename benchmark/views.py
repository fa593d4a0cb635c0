"""``tower-bench show-views``: a picture of what a method trains on, to check its proxy task by eye.

Rows are samples; columns are the original, then every tensor the method's ``views()`` returns
(in its order), then, with ``--model`` and a method that trains the decoder, the restoration
``sigmoid(net(view))``. Generic over the views dict, so a new method needs nothing here.
"""
from __future__ import annotations

from pathlib import Path

import torch

from zoo import PretrainMethod, UNet

from . import registry

PANEL_PX = 128
DPI = 100


def _restore_input(views: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor | None:
    """The view the decoder restores from: ``views["view"]`` by convention, else the last image-shaped one."""
    if "view" in views:
        return views["view"]
    shaped = [v for v in views.values() if v.shape == like.shape]
    return shaped[-1] if shaped else None


def _as_picture(x: torch.Tensor):
    """(C, H, W) in [0, 1] -> an array imshow draws: grey for 1 channel, RGB for 3, the first channel otherwise."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] != 3 else x.permute(1, 2, 0).numpy()


def views_table(method: PretrainMethod, images: torch.Tensor, seed: int = 0,
                restore: bool = False) -> dict[str, torch.Tensor]:
    """Column name -> (n, C, H, W) tensor for the figure; ``images`` are uint8."""
    x = images.float() / 255
    with torch.no_grad():
        views = method.views(x, torch.Generator(device=x.device).manual_seed(seed))
        columns = {"original": x, **{k: v.float() for k, v in views.items()}}
        source = _restore_input(views, x)
        if restore and method.trains_decoder and source is not None:
            method.net.eval()
            columns["restored"] = torch.sigmoid(method.net(source.float()))
    return columns


def render(columns: dict[str, torch.Tensor], panel_px: int = PANEL_PX, dpi: int = DPI):
    """A matplotlib Figure of ``panel_px``-square panels: one row per sample, one column per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, cols = len(next(iter(columns.values()))), len(columns)
    size = panel_px / dpi
    fig, axes = plt.subplots(n, cols, figsize=(cols * size, n * size), dpi=dpi, squeeze=False)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1, wspace=0.02, hspace=0.02)
    for j, (name, batch) in enumerate(columns.items()):
        for i in range(n):
            ax = axes[i, j]
            picture = _as_picture(batch[i])
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_axis_off()
        axes[0, j].text(0.03, 0.97, name, transform=axes[0, j].transAxes, va="top", fontsize=8, color="yellow",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
    return fig


def show_views(method: str, task: str, *, model: str | Path | None = None, n: int = 6,
               out: str | Path = "views.png", data_root: str | None = None, image_size: int | None = None,
               seed: int = 0, images: torch.Tensor | None = None, modality: str | None = None) -> Path:
    """Write the views figure of ``method`` on the first ``n`` training images of ``task`` to ``out``."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    cls = registry.method_class(method)
    if images is None:
        t = registry.task_class(task)(data_root=data_root, image_size=image_size, seed=seed)
        images, modality = t.pretrain_images(), modality or t.modality
    images = images[:n]
    if model is not None:
        from zoo.hub import from_pretrained

        net = from_pretrained(model)
    else:  # views do not depend on the network: the smallest one will do
        net = UNet("test_resnet", images.shape[1], images.shape[1])
    m = cls(net, modality=modality or "generic")
    fig = render(views_table(m, images, seed, restore=model is not None))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out
