"""show-views: one row per sample, one panel per view (+ restoration with a model), fixed pixel size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from benchmark.core import registry
from benchmark.pretraining.views import DPI, PANEL_PX, draw_views, render, views_table
from tests.benchmark.test_pretrain import TOY, tiny_images
from tests.conftest import TINY_DECODER, TINY_ENCODER
from zoo import UNet


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "toy", TOY)


def panels(path) -> tuple[int, int, np.ndarray]:
    """(rows, columns, pixels) of a written grid, from its size in pixels."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    h, w = pixels.shape[:2]
    assert h % PANEL_PX == 0 and w % PANEL_PX == 0, f"{w}x{h} is not a grid of {PANEL_PX}-px panels"
    return h // PANEL_PX, w // PANEL_PX, pixels


def test_grid_has_a_panel_per_sample_and_view(tmp_path):
    out = draw_views("toy", tiny_images(3), out=tmp_path / "v.png")
    rows, cols, pixels = panels(out)
    assert (rows, cols) == (3, 3)  # original, view1, view2
    # the views are noisy copies: each column differs from the original column
    first = pixels[:PANEL_PX, :PANEL_PX].astype(float)
    for j in (1, 2):
        assert np.abs(pixels[:PANEL_PX, j * PANEL_PX : (j + 1) * PANEL_PX] - first).mean() > 1


def test_columns_follow_the_views_dict_and_restoration_needs_a_model():
    images = tiny_images(2)
    method = registry.method_class("toy")(UNet(TINY_ENCODER, 3, 3, TINY_DECODER))
    assert list(views_table(method, images)) == ["original", "view1", "view2"]
    table = views_table(method, images, restore=True)
    assert list(table) == ["original", "view1", "view2", "restored"]
    assert table["restored"].shape == images.shape and 0 <= table["restored"].min() <= table["restored"].max() <= 1
    fig = render(table)
    assert len(fig.axes) == 2 * 4
    assert tuple(fig.get_size_inches() * DPI) == pytest.approx((4 * PANEL_PX, 2 * PANEL_PX))


def test_cli_draws_tower_views_and_restoration(tmp_path):
    for spec in (registry.METHODS["tower"], registry.TASKS.get("synth-fundus")):
        if spec is None:
            pytest.skip("synth-fundus task not registered yet")
        pytest.importorskip(spec.split(":")[0])
    from benchmark.cli import app
    from zoo.hub import save_pretrained

    torch.manual_seed(0)
    model = save_pretrained(UNet(TINY_ENCODER, 3, 3, TINY_DECODER), tmp_path / "model", method="tower",
                            trains_decoder=True)
    runner = CliRunner()
    plain = runner.invoke(app, ["show-views", "--method", "tower", "--n", "2", "--out", str(tmp_path / "a.png")])
    assert plain.exit_code == 0, plain.output
    views = list(registry.method_class("tower")(UNet(TINY_ENCODER, 3, 3, TINY_DECODER)).views(torch.rand(1, 3, 32, 32)))
    assert panels(tmp_path / "a.png")[:2] == (2, 1 + len(views))

    restored = runner.invoke(app, ["show-views", "--method", "tower", "--n", "2", "--model", str(model),
                                   "--out", str(tmp_path / "b.png")])
    assert restored.exit_code == 0, restored.output
    assert panels(tmp_path / "b.png")[:2] == (2, 2 + len(views))


def test_mask_fraction_of_the_fov_is_printed_and_drawn(tmp_path, capsys):
    from benchmark.pretraining.views import masked_fractions

    keep = torch.ones(2, 1, 8, 8)
    keep[0, :, :, :4] = 0  # sample 0 hides the left half
    fov = torch.zeros(2, 8, 8, dtype=torch.bool)
    fov[:, :, 2:] = True  # a FOV of the 6 right columns: 2 of them masked
    fractions = masked_fractions({"original": keep, "mask": keep}, fov)
    assert list(fractions) == ["mask"] and fractions["mask"].tolist() == pytest.approx([2 / 6, 0.0])
    assert masked_fractions({"mask": keep})["mask"].tolist() == pytest.approx([0.5, 0.0])

    images = (torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    disc = torch.ones(4, 64, 64, dtype=torch.bool)
    plain = draw_views("tower", images, out=tmp_path / "a.png", modality="fundus", fov=disc)
    line = capsys.readouterr().out.strip()
    assert line.startswith("mask (rays): ") and "% of the field of view masked" in line
    assert 15 < float(line.split(": ")[1].split("%")[0]) < 60
    assert panels(plain)[:2] == (4, 4)  # the labels sit inside the panels: the grid is unchanged
    draw_views("tower", images, out=tmp_path / "b.png", modality="fundus")
    assert "% of the image masked" in capsys.readouterr().out
    columns = {"original": keep.expand(-1, 3, -1, -1), "mask": keep}
    figures = [render(columns, fractions=f) for f in (None, masked_fractions(columns))]
    for fig in figures:
        fig.canvas.draw()
    bare, drawn = (np.asarray(fig.canvas.buffer_rgba()) for fig in figures)
    assert (bare != drawn)[:, PANEL_PX:].any() and not (bare != drawn)[:, :PANEL_PX].any()  # on the mask panels
