"""Start-up: listing commands import nothing heavy, and what they list is what the classes say.

Times are not asserted (the machine is shared): ``python -m benchmark.tools.startup`` prints them.
"""

import pytest

from benchmark.cli.info import method_summary
from benchmark.core import registry
from benchmark.tools.startup import HEAVY, TASK, imported_modules, write_store


@pytest.mark.parametrize("command", ["--help", "tasks", "methods"])
def test_listing_commands_import_no_heavy_module(command, tmp_path):
    imported = imported_modules([command], tmp_path)
    assert "benchmark.cli" in imported  # the probe ran the CLI
    assert not set(HEAVY) & imported, f"tower-bench {command} imported {sorted(set(HEAVY) & imported)}"


def test_leaderboard_imports_no_torch_or_timm(tmp_path):
    write_store(tmp_path / "results", 32)
    imported = imported_modules(["leaderboard", TASK, "--store", "results", "--out", "boards"], tmp_path)
    assert (tmp_path / "boards" / f"{TASK}-cpu.md").is_file()  # the store's one budget names the board
    assert "pandas" in imported and not {"torch", "timm"} & imported, sorted({"torch", "timm"} & imported)


def test_method_summary_is_what_the_imported_class_says():
    for name, target in registry.METHODS.items():
        cls = registry.method_class(name)
        trains_decoder, hparams = method_summary(target)
        assert trains_decoder == cls.trains_decoder, name
        assert list(hparams.items()) == list(cls.hparams().items()), f"{name}: keep Hparams defaults literal"


def test_leaderboard_table_at_80_columns_cuts_no_cell(tmp_path, monkeypatch, capsys):
    from benchmark.results.leaderboard import Board, refresh_leaderboard
    from benchmark.results.report.terminal import show

    write_store(tmp_path / "results", 32)
    monkeypatch.setenv("COLUMNS", "80")
    show(refresh_leaderboard(Board(TASK, label_fraction=0.5), tmp_path / "results", tmp_path / "boards"))
    text = capsys.readouterr().out
    # not a terminal (captured): plain Markdown, one line per row, so no name is cut or wrapped whatever the width
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert "…" not in text and "│" not in text and len(rows) >= 4
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    for init in ("ImageNet init", "TOWER con. (both)", "*trivial: all-foreground*"):
        assert init in names, (init, names)


def test_rebuild_keeps_the_figure_until_its_records_change(tmp_path):
    from benchmark.results.leaderboard import Board, refresh_leaderboard

    store, out = write_store(tmp_path / "results", 16), tmp_path / "boards"
    png, records = out / f"{TASK}-cpu.png", out / f"{TASK}-cpu.records.jsonl"
    refresh_leaderboard(Board(TASK), store.root, out)
    drawn, written = png.stat().st_mtime_ns, records.stat().st_mtime_ns
    refresh_leaderboard(Board(TASK), store.root, out)
    assert png.stat().st_mtime_ns == drawn
    assert records.stat().st_mtime_ns == written  # unchanged records are not written again
    record = store.records(TASK, label_fraction=1.0)[0]  # on the board (a 0.5 record is not: no redraw)
    store.put({**record, "value": record["value"] + 1.0})
    refresh_leaderboard(Board(TASK), store.root, out)
    assert png.stat().st_mtime_ns != drawn


def test_a_rebuild_with_nothing_new_reads_no_record_and_imports_no_pandas(tmp_path):
    """The second ``leaderboard`` of an unchanged store shows the board as written; a new record, another option
    or a deleted board builds it again."""
    store = write_store(tmp_path / "results", 16)
    args = ["leaderboard", TASK, "--store", "results", "--out", "boards"]
    imported_modules(args, tmp_path)
    board = tmp_path / "boards" / f"{TASK}-cpu.md"
    written = board.read_text()
    assert not {"pandas", "scipy"} & imported_modules(args, tmp_path)
    assert board.read_text() == written  # shown, not rewritten
    assert "pandas" in imported_modules([*args, "--no-holm"], tmp_path)  # other options: another board
    record = store.records(TASK, label_fraction=1.0)[0]
    store.put({**record, "seed": 99})
    assert "pandas" in imported_modules(args, tmp_path)
    assert len(board.with_suffix(".records.jsonl").read_text().splitlines()) == 9  # 8 inits' seed 0, one seed 99
    assert not {"pandas", "scipy"} & imported_modules(args, tmp_path)
    assert not list((tmp_path / "results").rglob("*.json")) or all(  # nothing written beside the records
        p.parent.name == TASK for p in (tmp_path / "results").rglob("*.json"))
    board.unlink()  # a board that is gone is built again
    assert "pandas" in imported_modules(args, tmp_path) and board.is_file()
