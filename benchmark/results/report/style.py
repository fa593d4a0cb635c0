"""The one figure style every board and analysis uses: a colour per init, seed dots with a 95% CI, honest
axes, text that fits, and the files a paper needs (PNG at 200 dpi, PDF, SVG).

One palette, defined here and nowhere else, so an init has the same colour in every figure.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from benchmark.core.names import SHOWN
from zoo.io import atomic_write

# Each init's colour is declared with its display name (benchmark.core.names.SHOWN).
INIT_COLORS: Mapping[str, str] = {name: shown.color for name, shown in SHOWN.items() if shown.color}
# Names outside the palette (mixing pairs, new methods) take these in order of appearance.
EXTRA_COLORS = ("#000000", "#AEC7E8", "#FFBB78", "#98DF8A", "#FF9896", "#C5B0D5", "#C49C94", "#DBDB8D")
# Classes are categories, not a scale: one discrete colour each, shown in a legend.
CLASS_COLORS = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F",
                "#BCBD22", "#17BECF")
TRIVIAL_STYLES = ("--", ":", "-.")
DPI = 200
FORMATS = ("png", "pdf", "svg")
FOOTER_SIZE = 6.0
RASTER_ABOVE = 200  # a row with more dots is a bitmap inside the PDF and SVG (its axes and text stay vector)


def init_color(name: str) -> str:
    """An init's colour; ``X+X`` (a mixing pair of one init) is X's colour."""
    enc, _, dec = name.partition("+")
    return INIT_COLORS.get(name) or (INIT_COLORS.get(enc) if dec in ("", enc) else None) or ""


def colors(names: Iterable[str]) -> dict[str, str]:
    """A colour per name: the palette's where it has one, else the next unused extra colour."""
    names = list(dict.fromkeys(names))
    out = {n: init_color(n) for n in names if init_color(n)}
    spare = [c for c in EXTRA_COLORS if c not in out.values()] or list(EXTRA_COLORS)
    for i, n in enumerate(n for n in names if n not in out):
        out[n] = spare[i % len(spare)]
    return out


def class_colors(classes: Sequence[int]) -> dict[int, str]:
    if len(classes) > len(CLASS_COLORS):
        raise ValueError(f"{len(classes)} classes but only {len(CLASS_COLORS)} distinct class colours")
    return {c: CLASS_COLORS[i] for i, c in enumerate(sorted(classes))}


def wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` (a generous glyph width)."""
    chars = max(10, int(width_in * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in text.split("\n"))


def new_figure(size: tuple[float, float]):
    """A constrained-layout figure without pyplot (no global backend state, safe in workers)."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def title(fig, text: str, fontsize: float = 9.0) -> None:
    """A figure title wrapped to the figure's width (constrained layout makes room for it)."""
    fig.suptitle(wrap(text, fig.get_figwidth() - 0.2, fontsize), fontsize=fontsize)


def axis_title(ax, text: str, fontsize: float = 8.0) -> None:
    """An axes title wrapped to that axes' share of the figure width (from its grid's width ratios)."""
    spec = ax.get_subplotspec()
    ratios = spec.get_gridspec().get_width_ratios() or [1.0] * spec.get_gridspec().ncols
    share = sum(ratios[spec.colspan.start:spec.colspan.stop]) / sum(ratios)
    ax.set_title(wrap(text, 0.85 * share * ax.get_figure().get_figwidth(), fontsize), fontsize=fontsize)


def footer(fig, text: str) -> None:
    """The stamp line under everything; as a figure x-label, so the layout keeps it clear of the axes."""
    fig.supxlabel(wrap(text, fig.get_figwidth() - 0.2, FOOTER_SIZE), fontsize=FOOTER_SIZE, color="grey",
                  x=0.99, ha="right")


def seed_dots(ax, rows: Sequence[Any], positions: Sequence[float], colors_: Mapping[str, str],
              horizontal: bool = False, label_seeds: bool = True) -> None:
    """Per row (``.init``, ``.values``, ``.mean``, ``.ci``): every seed as a dot, the mean as a short tick with
    its 95% CI as an error bar. Dots spread sideways by seed; a row whose seeds all gave one value (one checkpoint,
    a deterministic protocol: kNN) is one dot marked with the count, not a row of identical dots."""
    for k, (pos, r) in enumerate(zip(positions, rows)):
        vals = list(r.values)
        if len(vals) > 1 and len(set(vals)) == 1:
            label = (vals[0], pos) if horizontal else (pos, vals[0])
            ax.annotate(f"×{len(vals)}", label, xytext=(5, 5), textcoords="offset points", fontsize=7)
            vals = vals[:1]
        spread = [pos + 0.3 * (j / max(1, len(vals) - 1) - 0.5) * (len(vals) > 1) for j in range(len(vals))]
        color = colors_[r.init]
        ci = r.ci if r.ci is not None and math.isfinite(r.ci) else 0.0
        xy = (vals, spread) if horizontal else (spread, vals)
        # thousands of dots drawn one by one as vector shapes make a PDF/SVG slow to write and to open
        ax.scatter(*xy, s=14, color=color, alpha=0.7, edgecolor="none", zorder=3, rasterized=len(vals) > RASTER_ABOVE)
        kw = dict(fmt="_" if not horizontal else "|", color="black", ecolor="black", capsize=4, markersize=16,
                  elinewidth=1.2, zorder=4, label="mean ± 95% CI" if k == 0 else None)
        if horizontal:
            ax.errorbar(r.mean, pos, xerr=ci, **kw)
        else:
            ax.errorbar(pos, r.mean, yerr=ci, **kw)
    if label_seeds and rows:
        ax.scatter([], [], s=14, color="#7F7F7F", alpha=0.7, label="seeds (init's colour)")  # legend proxy only


def percent_fraction_axis(ax, fractions: Sequence[float]) -> None:
    """A label-fraction x-axis in percent, log-spaced, ticked at the measured fractions."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(fractions)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))


def integer_axis(axis) -> None:
    """Whole-number ticks (epochs, checks, steps): no 2.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def save(fig, path: str | Path) -> dict[str, Path]:
    """``path`` with each of PNG (200 dpi), PDF and SVG, written atomically; returns format -> path."""
    base = Path(path).with_suffix("")
    out = {}
    for fmt in FORMATS:
        out[fmt] = atomic_write(base.with_suffix(f".{fmt}"),
                                lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=DPI, metadata=_metadata(fmt)))
    return out


def _metadata(fmt: str) -> dict[str, Any] | None:
    """No creation date in PDF/SVG, so regenerating an unchanged figure gives the same file."""
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)


def render(draw: Callable[[Any], None], stamp_line: str | None = None):
    """A figure drawn by ``draw(fig)`` (which may set its size to fit its panels) with the stamp as its footer;
    not yet saved."""
    fig = new_figure((7.0, 4.5))
    draw(fig)
    if stamp_line:
        footer(fig, stamp_line)
    return fig
