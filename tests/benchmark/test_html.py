"""The table writers beside Markdown: LaTeX (booktabs, the same marks) and the static HTML board, the latter
opened in headless Chromium (sorted by a click, screenshot, no console errors, no external resource)."""
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.core.names import display_name
from benchmark.results.leaderboard import build_leaderboard, write_leaderboard
from benchmark.results.report.latex import escape, to_latex

ROOT = Path(__file__).resolve().parents[2]

VALUES = {"tower": [80.0, 81.1, 82.3], "imagenet": [79.0, 79.4, 80.1], "simclr": [79.6, 80.2, 80.9],
          "random": [70.0, 71.0, 72.0]}
STAMP = {"command": "tower-bench leaderboard drive --store results", "budget": "smoke",
         "data": "12 records of drive from DRIVE", "config hashes": "abc123"}

RECORDS = [{"task": "drive", "init": init, "seed": s, "label_fraction": 1.0, "budget": "smoke",
            "config_hash": "abc123", "metric": "dice", "value": v,
            "trivial": {"all-foreground": 22.6, "all-background": 0.0}}
           for init, vals in VALUES.items() for s, v in enumerate(vals)]


def board():
    return build_leaderboard(RECORDS, "drive")


def test_latex_marks_match_the_markdown():
    df = board()
    tex = to_latex(df, STAMP, "drive-test", "drive, finetune (all labels), Dice")
    assert tex.count(r"\toprule") == tex.count(r"\midrule") == tex.count(r"\bottomrule") == 1
    lines = {line.split(" & ")[0]: line for line in tex.splitlines() if " & " in line}
    best = df.iloc[0]
    assert best["init"] == "tower" and best["bold"] and best["underline"]
    assert rf"\underline{{\textbf{{{best['mean']:.2f} $\pm$ {best['std']:.2f}}}}}" in lines["TOWER"]  # display names
    for row in df.itertuples():
        key = rf"\textit{{{escape(row.init)}}}" if row.kind == "trivial" else display_name(row.init)
        assert lines[key].count("*") == len(row.stars), row.init
        assert (r"\underline" in lines[key]) == row.underline
        assert (r"\textbf{" + f"{row.mean:.2f}" in lines[key]) == row.bold
    assert "80.38$\\pm$0.41" in lines["TOWER"]  # the paper's value beside ours
    assert "% command: tower-bench leaderboard drive" in tex and escape("50%_&") == r"50\%\_\&"


def pdflatex() -> str:
    exe = shutil.which("pdflatex")
    if exe:
        return exe
    if os.environ.get("CI") == "true":
        pytest.fail("pdflatex is not installed, and CI=true: .ci/run installs it (texlive-latex-base, -recommended)")
    pytest.skip("pdflatex is not installed (apt-get install -y texlive-latex-base texlive-latex-recommended)")


def test_every_latex_table_compiles(tmp_path):
    """The fixture board and every committed board, each \\input into a plain article with booktabs."""
    exe = pdflatex()
    tables = [tmp_path / "drive-test.tex"]
    tables[0].write_text(to_latex(board(), STAMP, "drive-test", "drive, finetune (all labels), Dice"))
    tables += sorted((ROOT / "leaderboards").glob("*.tex"))
    for table in tables:
        doc = tmp_path / "doc.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                       f"\\input{{{table.as_posix()}}}\n\\end{{document}}\n")
        proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and (tmp_path / "doc.pdf").stat().st_size > 0, \
            f"{table.name}: " + proc.stdout[-1500:]
        assert "Overfull \\hbox" not in proc.stdout or table.parent == ROOT / "leaderboards", proc.stdout[-1500:]


def test_html_is_self_contained(tmp_path):
    paths = write_leaderboard(board(), tmp_path, "drive-test", STAMP, records=RECORDS)
    page = paths["html"].read_text()
    digest = hashlib.sha256(paths["records"].read_bytes()).hexdigest()[:16]
    for kind in ("html", "md", "tex"):  # the data named by file and content hash, in every format
        assert f"drive-test.records.jsonl (sha256 {digest})" in paths[kind].read_text(), kind
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|@import|url\(""", page), "an external resource"
    assert page.count('<tr class="init"') == len(VALUES) and page.count('<svg class="dots"') == len(VALUES)
    assert page.count('<circle class="seed"') == sum(map(len, VALUES.values()))
    assert "80.38±0.41" in page and html.escape(STAMP["command"]) in page
    index = paths["index"].read_text()
    assert '<a href="drive-test.html">' in index and index.count("<li>") == 1
    assert {"md", "tex", "csv", "png", "pdf", "svg", "html", "index"} <= set(paths)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed, and CI=true: .ci/run installs it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def run_chromium(exe, tmp_path, *args):
    """Headless Chromium, offline (every host name resolves to nothing), a throwaway profile."""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)


# Loaded first: records every error and console.error. Loaded last: clicks headings, records the row orders.
CATCH = """<script>window.__errors = [];
window.addEventListener("error", function (e) { __errors.push(String(e.message)); });
var __err = console.error; console.error = function () { __errors.push([].join.call(arguments, " "));
  __err.apply(console, arguments); };</script>"""
PROBE = """<script>(function () {
  function order() { return Array.prototype.map.call(document.querySelectorAll("table.board tbody tr"),
                                                     function (r) { return r.getAttribute("data-init"); }); }
  var heads = document.querySelectorAll("table.board thead th"), out = {initial: order()};
  var mean = Array.prototype.findIndex.call(heads, function (h) { return h.textContent.indexOf("dice") === 0; });
  heads[mean].click(); out.down = order(); out.state = heads[mean].getAttribute("aria-sort");
  heads[mean].click(); out.up = order();
  heads[0].click(); heads[0].click(); out.names = order();
  out.errors = window.__errors;
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();</script>"""


def test_board_in_headless_chromium(tmp_path):
    exe = chromium()
    df = board()
    paths = write_leaderboard(df, tmp_path, "drive-test", STAMP)
    shot = tmp_path / "board.png"
    run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1280,900", paths["html"].as_uri())
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 900) and len(im.convert("L").getcolors(1 << 16)) > 10  # something was drawn

    page = paths["html"].read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + CATCH, 1).replace("</body>", PROBE + "</body>", 1))
    dom = run_chromium(exe, tmp_path, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; DOM starts {dom[:300]!r}"
    out = json.loads(html.unescape(found.group(1)))
    assert out["errors"] == []
    assert out["initial"] == list(df["init"])  # every row, in the board's order
    by_mean = list(df.sort_values("mean", ascending=False, kind="stable")["init"])
    assert out["state"] == "descending" and out["down"] == by_mean and out["up"] == by_mean[::-1]
    assert out["names"] == sorted(df["init"])  # second click on a text column: A to Z
    index = run_chromium(exe, tmp_path, "--dump-dom", paths["index"].as_uri()).stdout
    links = re.findall(r'<a href="([^"]+)">', index)
    assert links == ["drive-test.html"] and (tmp_path / links[0]).is_file()


def test_index_lists_boards_in_natural_order(tmp_path):
    from benchmark.results.report.html import index_page

    for name in ("t-10pct", "t-1pct", "t", "t-5pct"):
        write_leaderboard(board(), tmp_path, name, STAMP)
    page = index_page(tmp_path)
    at = [page.index(f'href="{n}.html"') for n in ("t", "t-1pct", "t-5pct", "t-10pct")]
    assert at == sorted(at)  # 1 before 5 before 10, not "10" before "1"
