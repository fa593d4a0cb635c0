"""Every reader in ``readers.py``, fed every corruption it lists, through the CLI: a non-zero exit, no traceback,
one ``tower-bench: error:`` line naming the file and what was expected, and nothing on disk changed.

Good inputs are built once per module and copied per row; rows run in-process (``common.cli``).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from benchmark.results.store import CorruptRecordWarning, ResultStore
from tests.reliability.common import assert_one_line_error, cli, snapshot
from tests.reliability.readers import READERS, RECORD_CORRUPTIONS, Corruption, Reader

ROWS = [pytest.param(r, c, id=f"{r.name}-{c.name}") for r in READERS for c in r.corruptions]
RECORD = {"task": "drive", "init": "random", "seed": 0, "label_fraction": 1.0, "budget": "smoke",
          "config_hash": "abc", "metric": "dice", "value": 50.0}


def test_inventory_is_large_and_unique():
    ids = [p.id for p in ROWS] + [f"record-{c.name}" for c in RECORD_CORRUPTIONS]
    assert len(ids) == len(set(ids)), "two rows share a name"
    assert len(ids) >= 60


@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory):
    """``good_inputs(build)``: the folder ``build`` wrote, built once for the whole module."""
    built: dict = {}

    def get(build) -> Path:
        if build not in built:
            built[build] = tmp_path_factory.mktemp(build.__name__) / "input"
            build(built[build])
        return built[build]

    return get


@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> Path:
    """A results store holding one record: no failure may touch it."""
    root = tmp_path_factory.mktemp("store") / "store"
    ResultStore(root).put(RECORD)
    return root


@pytest.mark.parametrize("reader, corruption", ROWS)
def test_bad_file_gives_one_line_and_changes_nothing(capsys, tmp_path, good_inputs, good_store,
                                                     reader: Reader, corruption: Corruption):
    folder, store = tmp_path / "input", tmp_path / "store"
    shutil.copytree(good_inputs(reader.build), folder)
    shutil.copytree(good_store, store)
    corruption.damage(folder / reader.target)
    before = snapshot(tmp_path)
    res = cli(capsys, *reader.command(folder, store))
    assert_one_line_error(res, str(folder / (corruption.names or reader.target)), *reader.expect, *corruption.expect)
    assert snapshot(tmp_path) == before, "a failed command changed the store or its input folder"


@pytest.mark.parametrize("corruption", RECORD_CORRUPTIONS, ids=[c.name for c in RECORD_CORRUPTIONS])
def test_corrupt_record_is_skipped_with_a_warning(capsys, tmp_path, good_store, corruption: Corruption):
    store = tmp_path / "store"
    shutil.copytree(good_store, store)
    ResultStore(store).put({**RECORD, "seed": 1, "value": 60.0})
    bad = ResultStore(store).path(RECORD)
    corruption.damage(bad)
    before = snapshot(store)
    with pytest.warns(CorruptRecordWarning, match=re.escape(f"skipping corrupt result record {bad}")):
        res = cli(capsys, "leaderboard", "drive", "--store", store, "--out", tmp_path / "boards")
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    assert snapshot(store) == before, "reading the store changed it"
    with pytest.warns(CorruptRecordWarning):
        assert [r["seed"] for r in ResultStore(store).records()] == [1]
