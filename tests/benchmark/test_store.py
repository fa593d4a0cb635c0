import json
import multiprocessing as mp

import pytest

from benchmark.results.store import CorruptRecordWarning, ResultStore, key_of
from zoo.io import stable_hash


def rec(seed=0, init="tower", value=80.0, task="drive", **kw):
    r = {"task": task, "init": init, "seed": seed, "label_fraction": 1.0, "budget": "smoke",
         "config": {"lr": 1e-3}, "metric": "dice", "value": value, "curve": [70.0, value], "best_epoch": 1,
         "epochs_run": 2, "wall_time_s": 1.5}
    r.update(kw)
    return r


def _writer(root, worker):
    store = ResultStore(root)
    for i in range(100):
        store.put(rec(seed=i, init=f"w{worker}", value=float(i)))
        store.put(rec(seed=0, init="shared", value=float(worker)))  # every worker races on one key


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")  # spawn would re-import torch in every worker: seconds each
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = [r for r in ResultStore(tmp_path).records("drive") if r["init"] != "shared"]
    assert len(records) == 400
    assert len({(r["init"], r["seed"]) for r in records}) == 400
    assert len(ResultStore(tmp_path).records("drive", init="shared")) == 1
    assert not list(tmp_path.rglob("*.tmp"))
    # the leaderboard over what the workers wrote: every init with all of its 100 seeds
    from benchmark.results.leaderboard import build_leaderboard

    board = build_leaderboard(records, "drive", reference="w0").set_index("init")
    assert sorted(board.index) == ["w0", "w1", "w2", "w3"]
    assert board["n"].tolist() == [100] * 4 and board["seeds"].map(list).tolist() == [list(range(100))] * 4
    assert board["mean"].tolist() == [49.5] * 4


def test_put_get_has_and_completed_fields(tmp_path):
    store = ResultStore(tmp_path)
    r = rec(n_train=20)
    key = ("drive", "tower", 0, 1, "smoke", stable_hash({"lr": 1e-3}))
    assert not store.has(key)
    store.put(r)
    assert store.has(key)  # int label_fraction 1 names the same record as 1.0
    got = store.get(key)
    assert got["config_hash"] == stable_hash(r["config"])  # computed from the config
    assert got["curve"] == [70.0, 80.0] and got["n_train"] == 20
    assert set(got["versions"]) == {"torch", "timm", "tower-bench"} and got["created"] and "host" in got
    assert not store.has({**key_of(got), "seed": 1})
    with pytest.raises(KeyError, match="no result record"):
        store.get({**key_of(got), "seed": 1})


def test_rerun_replaces_same_key(tmp_path):
    store = ResultStore(tmp_path)
    store.put(rec(value=1.0))
    store.put(rec(value=2.0))
    assert [r["value"] for r in store.records()] == [2.0]


def test_filters_and_frame(tmp_path):
    store = ResultStore(tmp_path)
    for s in range(3):
        store.put(rec(seed=s))
        store.put(rec(seed=s, init="random", value=70.0 + s))
    store.put(rec(task="retinamnist", metric="auc"))
    assert len(store.records()) == 7
    assert len(store.records("drive")) == 6
    assert sorted(r["value"] for r in store.records("drive", init="random")) == [70.0, 71.0, 72.0]
    assert store.records("drive", label_fraction=1) and not store.records("drive", label_fraction=0.5)
    assert store.records("drive", nonexistent_field=1) == []
    frame = store.to_frame("drive", init="random")
    assert list(frame.columns[:3]) == ["task", "init", "seed"] and frame["value"].sum() == 213.0
    assert store.to_frame("lits").empty


def test_corrupt_record_is_reported_and_skipped(tmp_path):
    store = ResultStore(tmp_path)
    paths = [store.put(rec(seed=s)) for s in range(3)]
    paths[1].write_text(paths[1].read_text()[:25])  # truncated
    with pytest.warns(CorruptRecordWarning, match=paths[1].name):
        records = store.records("drive")
    assert sorted(r["seed"] for r in records) == [0, 2]
    with pytest.warns(CorruptRecordWarning):
        assert not store.has(rec(seed=1, config_hash=stable_hash({"lr": 1e-3})))
    paths[1].unlink()
    # a valid JSON file under the wrong name is not silently taken for another key
    (tmp_path / "drive" / "0000.json").write_text(json.dumps(records[0]))
    with pytest.warns(CorruptRecordWarning, match="does not match its file name"):
        assert len(store.records("drive")) == 2


def test_merge_copies_missing_and_newer(tmp_path):
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    a.put(rec(seed=0, value=1.0, created="2025-01-01T00:00:00+00:00"))
    b.put(rec(seed=0, value=2.0, created="2025-06-01T00:00:00+00:00"))
    b.put(rec(seed=1, value=3.0))
    assert a.merge(b.root) == 2
    assert sorted(r["value"] for r in a.records()) == [2.0, 3.0]
    assert a.merge(b.root) == 0  # idempotent


def test_invalid_records_are_refused(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(ValueError, match="misses"):
        store.put({"task": "drive", "init": "tower", "seed": 0, "label_fraction": 1.0, "budget": "smoke",
                   "metric": "dice", "config_hash": "x"})
    with pytest.raises(ValueError, match="value is nan"):
        store.put(rec(value=float("nan")))
    with pytest.raises(ValueError, match="folder name"):
        store.put(rec(task="../x"))
