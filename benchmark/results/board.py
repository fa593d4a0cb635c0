"""Which records make a board, and whether a board already written still shows them.

Light on purpose (no pandas, no scipy): ``tower-bench leaderboard`` asks ``unchanged`` first, and a rebuild
with nothing new then costs a directory listing instead of reading and testing every record.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from zoo.io import atomic_write_text, package_version, stable_hash

PROTOCOL = "finetune"  # a record without ``protocol`` (written before protocols existed) is the paper's
INPUTS = ".boards"  # per task folder of the store: what each written board was built from


def protocol_of(record: Mapping[str, Any]) -> str:
    return record.get("protocol", PROTOCOL)


@dataclass(frozen=True)
class Board:
    """Which records make one board: a task's, at one budget (None: each budget present gets its rows), one
    label fraction and one protocol. Records of other protocols are never pooled in."""

    task: str
    budget: str | None = None
    label_fraction: float = 1.0
    protocol: str = PROTOCOL

    @property
    def name(self) -> str:
        """``<task>[-<budget>][-<pct>pct][-<protocol>]``: one board per protocol, the paper's unsuffixed."""
        return (self.task + ("" if self.budget is None else f"-{self.budget}")
                + ("" if float(self.label_fraction) == 1.0 else f"-{int(round(self.label_fraction * 100))}pct")
                + ("" if self.protocol == PROTOCOL else f"-{self.protocol}"))

    def selects(self, record: Mapping[str, Any]) -> bool:
        return (record["task"] == self.task and float(record["label_fraction"]) == float(self.label_fraction)
                and (self.budget is None or record["budget"] == self.budget) and protocol_of(record) == self.protocol)


def board_settings(out: str | Path, **options: Any) -> dict[str, Any]:
    """What besides its records decides a written board: where it goes and the options it was built with."""
    return {"out": str(Path(out).resolve()), **options}


def _inputs(board: Board, store: Path, settings: Mapping[str, Any]) -> str:
    """The hash of everything a board is built from: each record file's name, size and time, the settings
    (reference, Holm, name, command, output folder) and the code that builds boards."""
    files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(store / board.task)
                   if e.name.endswith(".json"))
    code = max(p.stat().st_mtime_ns for p in Path(__file__).parent.rglob("*.py"))
    return stable_hash({"board": asdict(board), "files": files, "settings": dict(settings), "code": code,
                        "tower-bench": package_version()})


def _memo(board: Board, store: Path, settings: Mapping[str, Any]) -> Path:
    return store / board.task / INPUTS / f"{stable_hash({'board': asdict(board), **settings})}.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unchanged(board: Board, store: str | Path, settings: Mapping[str, Any]) -> list[Path] | None:
    """The files of ``board`` as last written with these settings, when neither its records nor the files have
    changed since; else None (build it)."""
    store = Path(store)
    memo = _memo(board, store, settings)
    try:
        last = json.loads(memo.read_text())
        paths = [Path(p) for p in last["paths"]]
        if last["inputs"] == _inputs(board, store, settings) and all(
                _digest(Path(p)) == sha for p, sha in last["digests"].items()):
            return paths
    except (OSError, ValueError, KeyError, TypeError):  # no memo yet, or a file gone: build
        pass
    return None


def remember(board: Board, store: str | Path, settings: Mapping[str, Any], paths: list[Path]) -> None:
    """Note what ``board`` was just built from, for ``unchanged``; the Markdown table is checked too."""
    store = Path(store)
    markdown = [p for p in paths if p.suffix == ".md"]
    atomic_write_text(_memo(board, store, settings), json.dumps(
        {"inputs": _inputs(board, store, settings), "paths": [str(p) for p in paths],
         "digests": {str(p): _digest(p) for p in markdown}}))
