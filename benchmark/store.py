"""Results store: one JSON file per record, so many processes on many machines write with no lock.

A record's file name is the stable hash of its key (task, init, seed, label_fraction, budget,
config_hash): a rerun of the same key replaces the file atomically, different keys never touch
the same file, and two stores merge by copying files. Nothing is appended, nothing is rewritten
in place, so a crash loses at most the record being written.
"""
from __future__ import annotations

import json
import math
import platform
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union

from zoo.io import atomic_write_text, package_version, stable_hash

KEY_FIELDS = ("task", "init", "seed", "label_fraction", "budget", "config_hash")
REQUIRED_FIELDS = KEY_FIELDS + ("metric", "value")
FIELDS = REQUIRED_FIELDS + ("config", "curve", "best_epoch", "epochs_run", "wall_time_s",
                            "versions", "created", "host")

Key = Union[Sequence[Any], Mapping[str, Any]]


class CorruptRecordWarning(UserWarning):
    """A record file that cannot be read; it is skipped, every other record is kept."""


def versions() -> dict[str, str]:
    """Installed versions of what produced a result (read from package metadata, imports nothing)."""
    out = {}
    for dist in ("torch", "timm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return {**out, "tower-bench": package_version()}


def key_of(key: Key) -> dict[str, Any]:
    """Canonical key dict from a record, a key dict or a tuple in ``KEY_FIELDS`` order.

    seed becomes int and label_fraction float, so (seed=1, label_fraction=1) and
    (seed=1.0, label_fraction=1.0) name the same file.
    """
    if isinstance(key, Mapping):
        missing = [f for f in KEY_FIELDS if f not in key]
        if missing:
            raise ValueError(f"result key misses {missing}; a key needs {list(KEY_FIELDS)}")
        k = {f: key[f] for f in KEY_FIELDS}
    else:
        if len(key) != len(KEY_FIELDS):
            raise ValueError(f"result key must have {len(KEY_FIELDS)} parts {KEY_FIELDS}, got {tuple(key)}")
        k = dict(zip(KEY_FIELDS, key))
    k["seed"] = int(k["seed"])
    k["label_fraction"] = float(k["label_fraction"])
    for f in ("task", "init", "budget", "config_hash"):
        if not isinstance(k[f], str) or not k[f]:
            raise ValueError(f"result key field {f!r} must be a non-empty string, got {k[f]!r}")
    if "/" in k["task"] or k["task"].startswith("."):
        raise ValueError(f"result key: task name {k['task']!r} cannot be a folder name")
    return k


def make_record(**fields: Any) -> dict[str, Any]:
    """A complete record: checks required fields, hashes ``config`` when no config_hash is given,
    and fills versions, created (UTC ISO time) and host. Extra fields (n_train, ...) are kept."""
    rec = {"config": {}, "curve": [], "best_epoch": None, "epochs_run": None, "wall_time_s": None}
    rec.update(fields)
    if "config_hash" not in rec:
        rec["config_hash"] = stable_hash(rec["config"])
    missing = [f for f in REQUIRED_FIELDS if f not in rec]
    if missing:
        raise ValueError(f"result record misses {missing}")
    rec.update(key_of(rec))
    rec["value"] = float(rec["value"])
    if not math.isfinite(rec["value"]):
        raise ValueError(f"result record value is {rec['value']} for {key_of(rec)}")
    rec.setdefault("versions", versions())
    rec.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rec.setdefault("host", platform.node())
    return rec


class ResultStore:
    """A folder ``root/<task>/<stable_hash(key)>.json``; safe for concurrent writers with no lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: Key) -> Path:
        k = key_of(key)
        return self.root / k["task"] / f"{stable_hash(k)}.json"

    def put(self, record: Mapping[str, Any]) -> Path:
        """Write one record atomically (completing it with ``make_record``); replaces the same key."""
        rec = make_record(**record)
        return atomic_write_text(self.path(rec), json.dumps(rec, indent=1, sort_keys=True, allow_nan=False))

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            rec = json.loads(path.read_text())
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            if self.path(rec) != path:
                raise ValueError("its key does not match its file name")
            missing = [f for f in REQUIRED_FIELDS if f not in rec]
            if missing:
                raise ValueError(f"missing fields {missing}")
            if not isinstance(rec["value"], (int, float)) or not math.isfinite(rec["value"]):
                raise ValueError(f"value {rec['value']!r} is not a finite number")
            return rec
        except (OSError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
            warnings.warn(f"skipping corrupt result record {path}: {err}", CorruptRecordWarning, stacklevel=3)
            return None

    def has(self, key: Key) -> bool:
        """True when a readable record exists for ``key``: lets a rerun skip finished work."""
        path = self.path(key)
        return path.is_file() and self._read(path) is not None

    def get(self, key: Key) -> dict[str, Any]:
        path = self.path(key)
        rec = self._read(path) if path.is_file() else None
        if rec is None:
            raise KeyError(f"no result record for {key_of(key)} in {self.root}")
        return rec

    def _files(self, task: str | None) -> Iterator[Path]:
        folders = [self.root / task] if task is not None else sorted(p for p in self.root.glob("*") if p.is_dir())
        for folder in folders:
            yield from sorted(folder.glob("*.json"))

    def records(self, task: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """All readable records, optionally only those whose fields equal ``filters``
        (a record without a filtered field does not match)."""
        if "label_fraction" in filters:
            filters["label_fraction"] = float(filters["label_fraction"])
        out = []
        for path in self._files(task):
            rec = self._read(path)
            if rec is not None and all(f in rec and rec[f] == v for f, v in filters.items()):
                out.append(rec)
        return out

    def to_frame(self, task: str | None = None, **filters: Any):
        """The records as a pandas DataFrame, one row per record, ``FIELDS`` first, then extras."""
        import pandas as pd

        frame = pd.DataFrame(self.records(task, **filters))
        first = [f for f in FIELDS if f in frame.columns]
        return frame[first + [c for c in frame.columns if c not in first]] if len(frame) else pd.DataFrame(columns=list(FIELDS))

    def merge(self, other_root: str | Path) -> int:
        """Copy records from another store; on a shared key the later ``created`` wins.

        Returns how many records were written here.
        """
        copied = 0
        for rec in ResultStore(other_root).records():
            path = self.path(rec)
            mine = self._read(path) if path.is_file() else None
            if mine is None or str(rec.get("created", "")) > str(mine.get("created", "")):
                self.put(rec)
                copied += 1
        return copied
