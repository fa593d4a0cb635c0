"""``tower-bench show-views``: a picture of what a method trains on, to check its proxy task by eye.

Rows are samples; columns are the original, then every tensor the method's ``views()`` returns
(in its order), then, with ``--model`` and a method that trains the decoder, the restoration
``sigmoid(net(view))``. Generic over the views dict, so a new method needs nothing here. Every
``*mask`` view (keep-weights, 1 = kept) gets its masked share of the field of view (the task's FOV
where its training split has one, else the whole image) printed and written on its panels: a mask
that hides far more or less than the paper's is visible at a glance.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchmark.core import registry
from benchmark.errors import ConfigError
from zoo import PretrainMethod, UNet

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
        columns = {"original": x}
        for k, v in views.items():  # a multi-crop view: one column per crop
            columns.update({f"{k} {i + 1}": c.float() for i, c in enumerate(v)} if isinstance(v, list) else {k: v.float()})
        source = _restore_input(views, x)
        if restore and method.trains_decoder and source is not None:
            method.net.eval()
            columns["restored"] = torch.sigmoid(method.net(source.float()))
    return columns


def masked_fractions(columns: dict[str, torch.Tensor], fov: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Mask column -> (n,) masked share of each sample's ``fov`` ((n, H, W) bool; None: the whole image)."""
    out = {}
    for name, keep in columns.items():
        if name.endswith("mask"):
            masked = 1 - keep.float().mean(dim=1)
            region = torch.ones_like(masked) if fov is None else fov.to(masked.device, masked.dtype)
            out[name] = (masked * region).sum(dim=(1, 2)) / region.sum(dim=(1, 2)).clamp_min(1)
    return out


def fraction_lines(fractions: dict[str, torch.Tensor], kind: str | None, fov: bool) -> list[str]:
    """One sentence per mask column: its kind and mean masked share over the samples it masks."""
    lines = []
    for name, per in fractions.items():
        applied = per[per > 0]
        where = "field of view" if fov else "image"
        what = f"{name} ({kind})" if kind else name
        if len(applied):
            lines.append(f"{what}: {100 * applied.mean():.1f}% of the {where} masked (mean of the {len(applied)} "
                         f"of {len(per)} samples it masks)")
        else:
            lines.append(f"{what}: masks none of the {len(per)} samples")
    return lines


def render(columns: dict[str, torch.Tensor], panel_px: int = PANEL_PX, dpi: int = DPI,
           fractions: dict[str, torch.Tensor] | None = None):
    """A matplotlib Figure of ``panel_px``-square panels: one row per sample, one column per entry.

    ``fractions`` (from ``masked_fractions``): each mask panel is labelled with its masked share.
    """
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
            if fractions and name in fractions:
                ax.text(0.03, 0.03, f"{100 * fractions[name][i]:.1f}% masked", transform=ax.transAxes, fontsize=7,
                        color="yellow", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
        axes[0, j].text(0.03, 0.97, name, transform=axes[0, j].transAxes, va="top", fontsize=8, color="yellow",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
    return fig


def show_views(method: str, task: str, *, model: str | Path | None = None, n: int = 6,
               out: str | Path = "views.png", data_root: str | None = None, image_size: int | None = None,
               seed: int = 0) -> Path:
    """Write the views figure of ``method`` on the first ``n`` training images of ``task`` to ``out``
    (``draw_views``, with the task's modality and, on segmentation, its field of view)."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    t = registry.task_class(task)(data_root=data_root, image_size=image_size, seed=seed)
    images = t.pretrain_images()
    train = t.load("train") if t.kind == "segmentation" else None
    fov = train.valid[:n] if train is not None and train.images is images else None  # the FOV of these images
    return draw_views(method, images[:n], modality=t.modality, fov=fov, model=model, out=out, seed=seed)


def draw_views(method: str, images: torch.Tensor, *, modality: str = "generic", fov: torch.Tensor | None = None,
               model: str | Path | None = None, out: str | Path = "views.png", seed: int = 0) -> Path:
    """Write the views figure of ``method`` on ``images`` to ``out``: one row per image, one column per view
    (and the restoration, given a pretrained ``model``).

    Prints the masked share of the field of view (``fov``, else of the image) of every mask it draws.
    """
    cls = registry.method_class(method)
    if model is not None:
        from zoo.unet import from_pretrained

        net = from_pretrained(model)
    else:  # views do not depend on the network: the smallest one will do
        net = UNet("test_resnet", images.shape[1], images.shape[1])
    m = cls(net, modality=modality)
    columns = views_table(m, images, seed, restore=model is not None)
    fractions = masked_fractions(columns, fov)
    for line in fraction_lines(fractions, getattr(getattr(m, "proxy", None), "mask", None), fov is not None):
        print(line)
    fig = render(columns, fractions=fractions)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out
