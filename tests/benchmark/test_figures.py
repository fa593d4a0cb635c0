"""Every figure kind, drawn from fixture records on Agg: no text outside the figure, no two texts overlapping,
the shared palette, honest axes, and the three file formats."""
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.text import Text

from benchmark.analyses import ablation, convergence, label_efficiency, mixing, representations
from benchmark.results.leaderboard import build_leaderboard, figure
from benchmark.results.report import style

INITS = ["tower", "random", "imagenet", "simclr", "moco", "gen-both", "con-both", "gen-mask"]
FOOTER = ("tower-bench run --method tower,random,imagenet,simclr,moco --task drive --data-root ../shared/data/DRIVE "
          "--seeds 5 --budget cpu --store results --out leaderboards | 2026-12-01")


def fake_records(inits, task="drive", seeds=5, fractions=(1.0,), budget="cpu", metric="dice", epochs=12):
    """Records shaped like fine-tuning's: a value per seed, a validation curve, the trivial rows."""
    rng = np.random.default_rng(0)
    out = []
    for k, init in enumerate(inits):
        for f in fractions:
            for seed in range(seeds):
                level = 60 + 2.5 * k + 15 * math.log10(10 * f) + rng.normal(0, 1.5)
                n = epochs - seed % 3
                curve = list(level * (1 - np.exp(-np.arange(1, n + 1) / 3)) + rng.normal(0, 0.5, n))
                out.append({"task": task, "init": init, "seed": seed, "label_fraction": f, "budget": budget,
                            "config_hash": "abc123", "metric": metric, "value": float(level), "curve": curve,
                            "best_epoch": int(np.argmax(curve)), "trivial": {"all-foreground": 22.6,
                                                                               "all-background": 0.0}})
    return out


def board(inits=INITS, budgets=("cpu",)):
    return build_leaderboard([r for b in budgets for r in fake_records(inits, budget=b)], "drive")


def leaderboard_fig(df):
    return style.render(lambda fig: figure(df, "drive: dice, every seed with the mean ± 95% CI; stars vs tower",
                                           into=fig), FOOTER)


def label_efficiency_fig():
    recs = fake_records(["random", "simclr", "tower"], fractions=label_efficiency.FRACTIONS, task="retinamnist",
                        metric="auc")
    data = label_efficiency.curves(recs)
    costs = label_efficiency.cost_table(data, ["random", "simclr"], n_boot=50)
    return style.render(lambda fig: label_efficiency.draw(fig, data, costs, ["random", "simclr"], "retinamnist",
                                                          "cpu", "auc"), FOOTER)


def convergence_fig():
    groups = convergence.by_init(fake_records(list(convergence.INITS)))
    return style.render(lambda fig: convergence.draw(fig, groups, "drive", "cpu", 5, "dice"), FOOTER)


def mixing_fig():
    labels = list(mixing.PAIRS)
    recs = fake_records(labels)
    df = build_leaderboard(recs, "drive", reference=labels[0])
    df = df[df["kind"] == "init"].reset_index(drop=True)
    return style.render(lambda fig: mixing.draw(fig, df, convergence.by_init(recs), labels), FOOTER)


def representations_fig():
    rng = np.random.default_rng(1)
    inits = list(representations.INITS)
    points = {i: (rng.normal(size=(60, 2)), rng.integers(0, 5, 60)) for i in inits}
    table = pd.DataFrame([{"init": i, "knn5": 40.0 + j, "knn10": 41.5, "knn20": 42.25} for j, i in enumerate(inits)])
    return style.render(lambda fig: representations.draw(fig, points, table, [5, 10, 20],
                                                         "representations-retinamnist-cpu"), FOOTER)


def ablation_fig():
    df = board(list(ablation.INITS))
    df = df[df["kind"] == "init"].reset_index(drop=True)
    return style.render(lambda fig: ablation.draw(fig, df, ablation.paper_table2(list(df["init"])), "drive"), FOOTER)


FIGURES = {"leaderboard": lambda: leaderboard_fig(board()),
           "leaderboard-two-budgets": lambda: leaderboard_fig(board(INITS[:5], ("cpu", "paper"))),
           "label-efficiency": label_efficiency_fig, "convergence": convergence_fig, "mixing": mixing_fig,
           "representations": representations_fig, "ablation": ablation_fig}


def drawn_texts(fig, monkeypatch):
    """(Text, pixel box) of every non-empty text the Agg renderer actually draws."""
    drawn = []
    original = Text.draw

    def spy(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    monkeypatch.setattr(Text, "draw", spy)
    FigureCanvasAgg(fig).draw()
    return drawn


def overlap(a, b, tol=0.5) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


@pytest.mark.parametrize("kind", FIGURES)
def test_no_text_clipped_or_overlapping(kind, monkeypatch):
    fig = FIGURES[kind]()
    drawn = drawn_texts(fig, monkeypatch)
    texts = [(t.get_text(), b) for t, b in drawn]
    assert any(FOOTER[:20] in t.replace("\n", " ") for t, _ in texts), "the stamp footer is drawn"
    box = fig.bbox
    for text, b in texts:
        assert b.x0 >= box.x0 - 0.5 and b.y0 >= box.y0 - 0.5 and b.x1 <= box.x1 + 0.5 and b.y1 <= box.y1 + 0.5, \
            f"{kind}: {text!r} lies outside the figure ({b} vs {box})"
    for i, (t1, b1) in enumerate(texts):
        for t2, b2 in texts[i + 1:]:
            assert not overlap(b1, b2), f"{kind}: {t1!r} overlaps {t2!r}"
    renderer = fig.canvas.get_renderer()
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        own = {id(t) for t in legend.get_texts() + [legend.get_title()]}
        frame = legend.get_window_extent(renderer)
        for t, b in drawn:
            assert id(t) in own or not overlap(frame, b), f"{kind}: the legend covers {t.get_text()!r}"


def test_the_checker_catches_a_clipped_and_an_overlapping_text(monkeypatch):
    fig = style.new_figure((3.0, 2.0))
    fig.text(0.5, 0.5, "here")
    fig.text(0.5, 0.5, "again")
    fig.text(0.99, 0.5, "runs off the right edge")
    texts = drawn_texts(fig, monkeypatch)
    assert [t.get_text() for t, _ in texts] == ["here", "again", "runs off the right edge"]
    assert overlap(texts[0][1], texts[1][1])
    assert texts[2][1].x1 > fig.bbox.x1


def _colors(ax) -> set[str]:
    return {to_hex(c) for coll in ax.collections for c in coll.get_facecolors()}


def test_honest_axes_and_one_palette():
    lb = leaderboard_fig(board())
    ax = lb.axes[0]
    assert ax.get_ylim()[0] == 0  # never a cut axis
    assert style.INIT_COLORS["tower"].lower() in _colors(ax)
    conv = convergence_fig()
    lines = {line.get_label(): to_hex(line.get_color()) for line in conv.axes[0].get_lines()}
    assert lines["tower"] == style.INIT_COLORS["tower"].lower()  # the same init, the same colour
    assert lines["random"] == style.INIT_COLORS["random"].lower()
    FigureCanvasAgg(conv).draw()
    assert all(float(t.get_text().replace("−", "-")).is_integer() for t in conv.axes[0].get_xticklabels()
               if t.get_text())
    le = label_efficiency_fig()
    FigureCanvasAgg(le).draw()
    ticks = [t.get_text() for t in le.axes[0].get_xticklabels() if t.get_text()]
    assert ticks == ["1%", "5%", "10%", "25%", "50%", "100%"]
    rep = representations_fig()
    assert len(rep.axes) == len(representations.INITS)  # no colour-bar axes
    assert [t.get_text() for t in rep.legends[0].get_texts()] == ["0", "1", "2", "3", "4"]
    assert style.colors(["tower+tower", "a+b", "c+d"]) == {"tower+tower": style.INIT_COLORS["tower"],
                                                           "a+b": style.EXTRA_COLORS[0], "c+d": style.EXTRA_COLORS[1]}


def test_an_auc_axis_starts_at_chance_and_every_legend_entry_can_be_seen():
    dice = leaderboard_fig(board()).axes[0]
    assert dice.get_ylim()[0] == 0
    labels = [t.get_text() for t in dice.get_legend().get_texts()]
    assert "trivial: all-foreground" in labels and "trivial: all-background" not in labels  # 0.00: on the axis itself
    records = [{**r, "metric": "auc", "value": 70 + r["value"] / 10, "trivial": {"class prior": 50.0}}
               for r in fake_records(["tower", "random"])]
    auc = leaderboard_fig(build_leaderboard(records, "drive")).axes[0]
    assert auc.get_ylim()[0] == 50 and "from chance (50)" in auc.get_ylabel()
    assert not any("class prior" in t.get_text() for t in auc.get_legend().get_texts())
    below = [{**r, "value": 45.0 if r["seed"] == 0 else r["value"]} for r in records]
    assert leaderboard_fig(build_leaderboard(below, "drive")).axes[0].get_ylim()[0] == 0  # no seed hidden


def test_seeds_with_one_value_are_one_dot_with_their_count():
    records = [{**r, "value": 71.0} if r["init"] == "tower" else r for r in fake_records(["tower", "random"])]
    ax = leaderboard_fig(build_leaderboard(records, "drive")).axes[0]
    sizes = sorted(len(c.get_offsets()) for c in ax.collections if len(c.get_offsets()))
    assert 1 in sizes and 5 in sizes  # tower: one dot; random: five
    assert any(t.get_text() == "×5" for t in ax.texts)


def test_saved_as_png_pdf_svg(tmp_path):
    paths = style.save(convergence_fig(), tmp_path / "fig.png")
    assert sorted(paths) == ["pdf", "png", "svg"]
    from PIL import Image

    with Image.open(paths["png"]) as im:
        assert round(im.info["dpi"][0]) >= 200
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-" and b"<svg" in paths["svg"].read_bytes()[:2000]
