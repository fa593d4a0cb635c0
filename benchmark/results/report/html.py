"""A leaderboard as a self-contained static HTML page, and ``index.html`` linking every board in a folder.

No external resource of any kind (styles, script and the per-seed dot strips are inline), so a page
works from a file:// URL with no network. Columns sort on a click (numbers as numbers, blanks last).
"""
from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from benchmark.core.names import display_name
from benchmark.results.report.style import colors
from zoo.io import atomic_write_text

INDEX = "index.html"
_STRIP_W, _STRIP_H = 240, 26

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;
 padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th{cursor:pointer;user-select:none;border-bottom:2px solid #444;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.trivial td{font-style:italic;color:#666}.best{font-weight:bold}.beats{text-decoration:underline}
dl.stamp{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.9em}
dl.stamp dt{font-weight:bold}dl.stamp dd{margin:0;font-family:monospace;overflow-wrap:anywhere}
p.legend{font-size:.9em;color:#444;max-width:60em}
"""

SCRIPT = """
document.querySelectorAll("table.board").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir);
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var v = row.cells[col].getAttribute("data-sort");
        return v === null ? row.cells[col].textContent.trim() : v;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var blankX = x === "" || x === "NaN", blankY = y === "" || y === "NaN";
        if (blankX || blankY) { return blankX - blankY; }
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return dir === "ascending" ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _sort(x: float) -> str:
    return "" if x is None or not math.isfinite(x) else repr(float(x))


def dots_svg(values: list[float], mean: float, paper: float, top: float, color: str) -> str:
    """Inline SVG strip from 0 to ``top``: a dot per seed, the mean as a bar, the paper's value as a diamond."""
    def x(v: float) -> float:
        return round(4 + (_STRIP_W - 8) * min(max(v / top, 0.0), 1.0), 1)

    parts = [f'<line x1="4" y1="{_STRIP_H - 1}" x2="{_STRIP_W - 4}" y2="{_STRIP_H - 1}" stroke="#bbb"/>']
    parts += [f'<circle class="seed" cx="{x(v)}" cy="7" r="3" fill="{color}" fill-opacity="0.7">'
              f"<title>{v:.2f}</title></circle>" for v in values]
    if values:
        parts.append(f'<line x1="{x(mean)}" y1="1" x2="{x(mean)}" y2="13" stroke="#000" stroke-width="1.5"/>')
    if math.isfinite(paper):  # below the seeds, so it hides none of them
        px, c = x(paper), _STRIP_H - 7
        parts.append(f'<path d="M{px} {c - 5}L{px + 4} {c}L{px} {c + 5}L{px - 4} {c}Z" fill="#fff" stroke="#000">'
                     f"<title>paper {paper:.2f}</title></path>")
    return (f'<svg class="dots" width="{_STRIP_W}" height="{_STRIP_H}" viewBox="0 0 {_STRIP_W} {_STRIP_H}" '
            f'role="img" aria-label="per-seed values from 0 to {top:g}">{"".join(parts)}</svg>')


def board_page(df: pd.DataFrame, stamp: Mapping[str, Any], name: str, legend: str) -> str:
    """One board as a standalone page."""
    metric = escape(str(df.attrs.get("metric", "value")))
    reference = escape(str(df.attrs.get("reference", "tower")))
    values = [v for vs in df["values"] for v in vs] + list(df["mean"]) + list(df["paper_mean"].dropna())
    top = max([v for v in values if math.isfinite(v)] + [1.0]) * 1.05
    palette = colors(df.loc[df["kind"] == "init", "init"])
    heads = ["init", "budget", "n", f"{metric} (%)", "95% CI ±", f"p vs {reference}", "paper", f"seeds (0–{top:.0f})",
             "counts", "note"]
    rows = []
    for r in df.itertuples():
        trivial = r.kind != "init"  # trivial and reference rows: no model of ours
        cell = _num(r.mean) if not math.isfinite(r.std) else f"{_num(r.mean)} ± {_num(r.std)}"
        cls = " ".join(c for c, on in (("best", r.bold), ("beats", r.underline)) if on)
        cell = f'<span class="{cls}">{cell}</span>' if cls else cell
        counts = "–" if trivial else ("yes" if r.counts else "<b>no</b>")
        dots = "" if trivial else dots_svg(list(r.values), r.mean, r.paper_mean, top, palette[r.init])
        rows.append(
            f'<tr class="{"trivial" if trivial else "init"}" data-init="{escape(r.init)}">'
            f"<td>{escape(r.init if trivial else display_name(r.init))}</td><td>{escape(r.budget)}</td>"
            f'<td class="num" data-sort="{r.n if r.n else ""}">{r.n or "–"}</td>'
            f'<td class="num" data-sort="{_sort(r.mean)}">{cell}<sup>{escape(r.stars)}</sup></td>'
            f'<td class="num" data-sort="{_sort(r.ci)}">{_num(r.ci)}</td>'
            f'<td class="num" data-sort="{_sort(r.p)}">{"–" if not math.isfinite(r.p) else f"{r.p:.2g}"}</td>'
            f'<td class="num" data-sort="{_sort(r.paper_mean)}">{escape(r.paper) or "–"}</td>'
            f'<td data-sort="{_sort(r.mean)}">{dots}</td><td>{counts}</td><td>{escape(r.note)}</td></tr>')
    stamp_html = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in stamp.items())
    head = "".join(f'<th scope="col">{h}</th>' for h in heads)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="description" content="{escape(_summary(df))}">'
            f"<title>{escape(name)}</title><style>{STYLE}</style></head><body>"
            f'<p><a href="{INDEX}">all leaderboards</a></p><h1>{escape(name)}</h1>'
            f'<dl class="stamp">{stamp_html}</dl>'
            f'<table class="board"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p class="legend">{escape(legend)} Click a column heading to sort. Dots: one per seed on an axis '
            f"from 0; black bar: the mean; diamond: the paper's value.</p>"
            f"<script>{SCRIPT}</script></body></html>\n")


def _summary(df: pd.DataFrame) -> str:
    inits = df[df["kind"] == "init"]
    return (f"{df.attrs.get('task', '?')}, {df.attrs.get('metric', 'value')}: {len(inits)} inits, "
            f"budget {', '.join(sorted(set(df['budget'])))}")


def natural_key(path: Path) -> list:
    """Numbers in a name sort as numbers: ``-1pct`` before ``-5pct`` before ``-10pct``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def index_page(out_dir: str | Path) -> str:
    """``index.html``: a link per board page in ``out_dir``, with the summary each page carries."""
    entries = []
    for page in sorted(Path(out_dir).glob("*.html"), key=natural_key):
        if page.name == INDEX:
            continue
        text = page.read_text(encoding="utf-8")
        summary = re.search(r'<meta name="description" content="([^"]*)">', text)
        if summary is None:
            continue  # not a board page
        entries.append(f'<li><a href="{escape(page.name)}">{escape(page.stem)}</a> — {summary.group(1)}</li>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>tower-bench leaderboards</title>'
            f"<style>{STYLE}</style></head><body><h1>tower-bench leaderboards</h1>"
            f'<ul class="boards">{"".join(entries)}</ul></body></html>\n')


def write_board(df: pd.DataFrame, stamp: Mapping[str, Any], out_dir: str | Path, name: str, legend: str) -> list[Path]:
    """``<name>.html`` and the refreshed ``index.html`` beside it."""
    page = atomic_write_text(Path(out_dir) / f"{name}.html", board_page(df, stamp, name, legend))
    return [page, atomic_write_text(Path(out_dir) / INDEX, index_page(out_dir))]
