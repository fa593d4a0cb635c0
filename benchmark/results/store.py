"""Results store: one JSON file per record, so many processes on many machines write with no lock.

A record's file name is the stable hash of its key (task, init, seed, label_fraction, budget,
config_hash, protocol; the paper's protocol "finetune" is left out of the hash, so records written before
protocols existed keep their file names and read as "finetune"): a rerun of the same key replaces the
file atomically, different keys never touch the same file, and two stores merge by copying files.
Nothing is appended, nothing is rewritten in place, so a crash loses at most the record being written.

Two runs on one store never compute the same record at once: a job first claims its key with a lock
file next to the record (``ResultStore.claim``); the other run waits for the record, or takes the claim
over once its owner is gone.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from benchmark.core.config import DEFAULT_PROTOCOL
from zoo.io import atomic_write_text, package_version, public_command, public_paths, stable_hash

KEY_FIELDS = ("task", "init", "seed", "label_fraction", "budget", "config_hash", "protocol")
REQUIRED_FIELDS = tuple(f for f in KEY_FIELDS if f != "protocol") + ("metric", "value")
FIELDS = REQUIRED_FIELDS + ("config", "curve", "best_epoch", "epochs_run", "wall_time_s",
                            "versions", "created", "host")

Key = Union[Sequence[Any], Mapping[str, Any]]
# A claim by another host older than this is taken over (its pid cannot be checked from here): longer
# than any fine-tuning job runs. On the same host a claim is taken over as soon as its process is gone.
STALE_CLAIM_S = 24 * 3600.0
BROKEN_LOCK_S = 60.0  # an unreadable lock (its owner died between creating and writing it) or break-lock


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
    (seed=1.0, label_fraction=1.0) name the same file; a missing protocol is "finetune".
    """
    if isinstance(key, Mapping):
        key = {"protocol": DEFAULT_PROTOCOL, **key}
        missing = [f for f in KEY_FIELDS if f not in key]
        if missing:
            raise ValueError(f"result key misses {missing}; a key needs {list(KEY_FIELDS)}")
        k = {f: key[f] for f in KEY_FIELDS}
    else:
        key = tuple(key)
        if len(key) == len(KEY_FIELDS) - 1:
            key += (DEFAULT_PROTOCOL,)
        if len(key) != len(KEY_FIELDS):
            raise ValueError(f"result key must have {len(KEY_FIELDS)} parts {KEY_FIELDS}, got {key}")
        k = dict(zip(KEY_FIELDS, key))
    k["seed"] = int(k["seed"])
    k["label_fraction"] = float(k["label_fraction"])
    for f in ("task", "init", "budget", "config_hash", "protocol"):
        if not isinstance(k[f], str) or not k[f]:
            raise ValueError(f"result key field {f!r} must be a non-empty string, got {k[f]!r}")
    if "/" in k["task"] or k["task"].startswith("."):
        raise ValueError(f"result key: task name {k['task']!r} cannot be a folder name")
    return k


def file_name(key: dict[str, Any]) -> str:
    """A canonical key's file name; the paper's protocol is left out, as records had before protocols existed."""
    if key["protocol"] == DEFAULT_PROTOCOL:
        key = {f: v for f, v in key.items() if f != "protocol"}
    return f"{stable_hash(key)}.json"


def public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a committed board carries it: paths naming one machine (a data root, an export folder, the
    command's arguments) by their last names only. Records written today are already so; older ones are made so
    when a board is written from them. The numbers are untouched."""
    out = dict(record)
    if isinstance(out.get("command"), str):
        out["command"] = public_command(out["command"])
    if isinstance(out.get("config"), dict):
        out["config"] = public_paths(out["config"])  # as fine-tuning writes it today (protocols.public_config)
    return out


def records_jsonl(records: Sequence[Mapping[str, Any]]) -> str:
    """The records behind a board, one public record per line in a stable order (budget, init, seed)."""
    rows = sorted(map(public_record, records), key=lambda r: (r["budget"], r["init"], int(r["seed"])))
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


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
        return self.root / k["task"] / file_name(k)

    def put(self, record: Mapping[str, Any]) -> Path:
        """Write one record atomically (completing it with ``make_record``); replaces the same key."""
        rec = make_record(**record)
        return atomic_write_text(self.path(rec), json.dumps(rec, indent=1, sort_keys=True, allow_nan=False))

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The record in ``path`` (a file ``root/<folder>/<name>``), or None with a warning when it is unusable.

        Compares names, not whole paths, and parses bytes: a leaderboard reads thousands of records.
        """
        try:
            rec = json.loads(path.read_bytes())
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            key = key_of(rec)
            if path.name != file_name(key) or path.parent.name != key["task"]:
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
            yield from sorted(folder.glob("*.json"), key=lambda p: p.name)  # names: Path comparisons are slow

    def records(self, task: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """All readable records, optionally only those whose fields equal ``filters``
        (a record without a filtered field does not match; one without ``protocol`` is "finetune")."""
        if "label_fraction" in filters:
            filters["label_fraction"] = float(filters["label_fraction"])
        out = []
        for path in self._files(task):
            rec = self._read(path)
            if rec is not None:
                rec = {"protocol": DEFAULT_PROTOCOL, **rec} if "protocol" in filters else rec
            if rec is not None and all(f in rec and rec[f] == v for f, v in filters.items()):
                out.append(rec)
        return out

    def lock_path(self, key: Key) -> Path:
        return self.path(key).with_name(self.path(key).name + ".lock")

    def claim(self, key: Key, poll_s: float = 1.0, stale_after_s: float = STALE_CLAIM_S):
        """Hold ``key``'s claim (``<record>.lock``, see ``hold_claim``) while its record is computed."""
        return hold_claim(self.lock_path(key), lambda: self.has(key), poll_s, stale_after_s)

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


# ------------------------------------------------------------------------ claims (lock files)


@contextmanager
def hold_claim(lock: Path, done: Callable[[], bool], poll_s: float = 1.0,
               stale_after_s: float = STALE_CLAIM_S) -> Iterator[bool]:
    """Hold the claim ``lock`` while what it guards is computed; yields whether this caller must compute it.

    The claim is created atomically (O_CREAT | O_EXCL) with the owner's host, pid and time, and removed on
    leaving (after the output is written, or on an error). While another live run holds it, this waits, polling,
    until ``done()`` (then yields False) or its owner is gone (same host: the pid no longer exists; another host:
    the claim is older than ``stale_after_s``), and takes the claim over. Yields False as well when already done.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    while not _create_lock(lock):
        if done():
            yield False
            return
        if _claim_abandoned(lock, stale_after_s):
            _break_lock(lock, stale_after_s)
        else:
            time.sleep(poll_s)
    try:
        yield not done()
    finally:
        lock.unlink(missing_ok=True)


def _create_lock(path: Path) -> bool:
    """Create ``path`` only if absent (atomic, also over NFS v3+), holding who owns it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies: a lab shares it
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"host": platform.node(), "pid": os.getpid(), "time": time.time()}, f)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _claim_abandoned(path: Path, stale_after_s: float) -> bool:
    """Whether the claim's owner is gone; False when it is live, or the claim was just released."""
    try:
        age = time.time() - path.stat().st_mtime
        owner = json.loads(path.read_text())
        host, pid, since = owner["host"], int(owner["pid"]), float(owner["time"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        return age > BROKEN_LOCK_S
    if host == platform.node():
        return not _pid_alive(pid)
    return time.time() - since > stale_after_s


def _break_lock(path: Path, stale_after_s: float) -> None:
    """Remove an abandoned claim. One breaker at a time (``<lock>.break``), and it checks again while it holds
    the right: a waiter that judged the old claim abandoned must not remove the new owner's claim."""
    breaker = path.with_name(path.name + ".break")
    if not _create_lock(breaker):
        try:
            if time.time() - breaker.stat().st_mtime > BROKEN_LOCK_S:  # a breaker died holding it
                breaker.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return
    try:
        if _claim_abandoned(path, stale_after_s):
            path.unlink(missing_ok=True)
    finally:
        breaker.unlink(missing_ok=True)
