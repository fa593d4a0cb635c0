"""benchmark/results/reference.py holds every cell of the paper's Tables 1, 2, 4 and 5 as shared/PAPER.md transcribes them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.results import reference as ref
from benchmark.results.reference import paper_stars, paper_value

PAPER = Path(__file__).resolve().parents[3] / "shared" / "PAPER.md"
BOLD = re.compile(r"^\*\*(.+)\*\*$")
CAPTION_STARS = re.compile(r"Stars \(vs the second-best\): (.+?)\.")  # Table 4 puts its stars in the caption
CELL = re.compile(r"^(\d+\.\d+)±(\d+\.\d+)\s*(\**)$")
ROW_NAMES = {"TOWER (all)": "TOWER"}  # the paper's label for the row reference.py keys as "TOWER"
COLUMN_TASKS = {"dice": "drive"}  # Table 1's single column


def paper_tables(text: str) -> dict[int, dict[str, dict[str, tuple[float, float, str] | None]]]:
    """{table: {task: {row: (mean, std, stars) or None for "/"}}} from the markdown tables after "(Table N".

    A line may hold several (init, value...) groups, each starting at an "init" header (Table 1 has two).
    """
    tables: dict[int, dict] = {}
    caption_stars: dict[tuple[str, str], str] = {}
    number = header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            found = re.search(r"\(Table (\d)", line)
            for mark in CAPTION_STARS.findall(line):
                for item in mark.split(", "):
                    task, row, stars = item.split(" ", 1)[0], *item.split(" ", 1)[1].rsplit(" ", 1)
                    caption_stars[task.lower(), row] = stars
            if found or header is not None:  # a caption may run over several lines; a table ends its own
                number = int(found.group(1)) if found else None
            header = None
            continue
        cells = [BOLD.sub(r"\1", c.strip()) for c in line.strip().strip("|").split("|")]
        if number is None or set("".join(cells)) <= set("-"):
            continue
        if header is None:
            header = cells
            continue
        row = None
        for head, cell in zip(header, cells):
            if head == "init":
                row = ROW_NAMES.get(cell, cell)
            elif head and row:
                match = CELL.match(cell)
                assert match or cell == "/", f"{PAPER}: table {number}, row {row!r}: cannot read cell {cell!r}"
                task = COLUMN_TASKS.get(head.lower(), head.lower())
                tables.setdefault(number, {}).setdefault(task, {})[row] = match and (
                    float(match.group(1)), float(match.group(2)), match.group(3) or caption_stars.get((task, row), ""))
    return tables


def test_every_cell_of_the_paper_md_tables():
    if not PAPER.is_file():
        pytest.skip(f"{PAPER} absent")
    tables = paper_tables(PAPER.read_text())
    assert sorted(tables) == [1, 2, 4, 5]
    assert {t: sorted(c) for t, c in tables.items()} == {t: sorted(c) for t, c in ref.TABLES.items()}
    cells = 0
    for number, columns in tables.items():
        for task, rows in columns.items():
            ours = ref.TABLES[number][task]
            assert sorted(r for r, v in rows.items() if v is not None) == sorted(ours), (number, task)
            for row, cell in rows.items():
                if cell is None:
                    continue
                mean, std, stars = cell
                assert ours[row] == (mean, std), (number, task, row)
                assert ref.STARS.get(number, {}).get(task, {}).get(row, "") == stars, (number, task, row)
                cells += 1
    # 19 + 8*4 + 21*4 - 4 ("/") + 8*2: a parser that silently skipped a table would fail here.
    assert cells == 19 + 32 + 80 + 16


def test_spot_checks_without_the_file():
    assert paper_value("breastmnist", "random") == (83.42, 2.77)
    assert paper_value("organamnist", "gen-mask") == (99.49, 0.07)
    assert paper_value("montgomery", "CMC") == (98.49, 0.11) and paper_stars("montgomery", "cmc") == "***"
    assert paper_value("shenzhen", "DiRA") is None and paper_value("chexpert", "dira") == (87.59, 0.28)
    assert paper_value("drive", "swav") == (79.65, 0.14) and paper_stars("drive", "swav") == "**"
    assert paper_stars("drive", "tower") == "" and paper_stars("retinamnist", "random") == ""
    assert str(paper_value("drive", "tower")) == "80.38±0.41"  # Table 1 before Table 2's 80.38±0.30


def test_moco_is_the_ablation_row_and_moco_v2_elsewhere():
    assert ref.paper_name("moco") == "MoCo"
    assert paper_value("breastmnist", "moco") == (87.80, 2.49)  # Table 5 "MoCo"
    assert paper_value("shenzhen", "moco") == (95.57, 0.90)  # Table 4 "MoCo-v2"
    assert paper_value("drive", "moco") == (79.23, 0.19) and paper_stars("drive", "moco") == "***"  # Table 1
    assert paper_value("pathmnist", "moco-v2") is None  # Table 2 has only "MoCo"
