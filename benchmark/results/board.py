"""Which records make a board, and whether a board already written still shows them.

Light on purpose (no pandas, no scipy): ``tower-bench leaderboard`` asks ``unchanged`` first, and a rebuild
with nothing new then costs a directory listing instead of reading and testing every record. What a board was
built from is a hash in its own Markdown stamp, so nothing is written beside the records or the boards.
"""
from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from benchmark.core.config import DEFAULT_PROTOCOL
from zoo.io import package_version, stable_hash


def newest_per_seed(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per (budget, init, label fraction, protocol, seed), the newest: a rerun under another config
    (changed code or options) replaces the older record of that seed instead of counting the seed twice."""
    newest: dict[tuple, Mapping[str, Any]] = {}
    for r in sorted(records, key=lambda r: r.get("created", "")):
        newest[(r["budget"], r["init"], float(r["label_fraction"]), protocol_of(r), int(r["seed"]))] = r
    return list(newest.values())


def protocol_of(record: Mapping[str, Any]) -> str:
    return record.get("protocol", DEFAULT_PROTOCOL)


@dataclass(frozen=True)
class Board:
    """Which records make one board: a task's, at one budget (None: each budget present gets its rows), one
    label fraction and one protocol. Records of other protocols are never pooled in."""

    task: str
    budget: str | None = None
    label_fraction: float = 1.0
    protocol: str = DEFAULT_PROTOCOL

    @property
    def name(self) -> str:
        """``<task>[-<budget>][-<pct>pct][-<protocol>]``: one board per protocol, the paper's unsuffixed."""
        return (self.task + ("" if self.budget is None else f"-{self.budget}")
                + ("" if float(self.label_fraction) == 1.0 else f"-{int(round(self.label_fraction * 100))}pct")
                + ("" if self.protocol == DEFAULT_PROTOCOL else f"-{self.protocol}"))

    def selects(self, record: Mapping[str, Any]) -> bool:
        return (record["task"] == self.task and float(record["label_fraction"]) == float(self.label_fraction)
                and (self.budget is None or record["budget"] == self.budget) and protocol_of(record) == self.protocol)


def board_settings(out: str | Path, **options: Any) -> dict[str, Any]:
    """What besides its records decides a written board: where it goes and the options it was built with."""
    return {"out": str(Path(out).resolve()), **options}


def board_inputs(board: Board, store: str | Path, settings: Mapping[str, Any]) -> str:
    """The hash of everything a board is built from: each record file's name, size and time, the settings
    (reference, Holm, name, command, output folder) and the code that builds boards."""
    files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(Path(store) / board.task)
                   if e.name.endswith(".json"))
    code = max(p.stat().st_mtime_ns for p in Path(__file__).parent.rglob("*.py"))
    return stable_hash({"board": asdict(board), "files": files, "settings": dict(settings), "code": code,
                        "tower-bench": package_version()})


def stamp_line(key: str, value: Any) -> str:
    """One line of a board's Markdown stamp; ``unchanged`` finds the ``inputs`` one by it."""
    return f"- **{key}**: `{value}`"


def unchanged(board: Board, store: str | Path, settings: Mapping[str, Any]) -> list[Path] | None:
    """The files of ``board`` in ``settings["out"]`` when one of its Markdown files was built from exactly these
    records, options and code (its ``inputs`` stamp); else None: build it."""
    out, folder = Path(settings["out"]), Path(store) / board.task
    if not folder.is_dir() or not out.is_dir():
        return None
    stamp = stamp_line("inputs", board_inputs(board, store, settings))
    for markdown in sorted(out.glob(f"{board.task}*.md")):
        with markdown.open() as f:
            if any(line.rstrip("\n") == stamp for line in f):
                return sorted(out.glob(f"{glob.escape(markdown.stem)}.*")) + [out / "index.html"]
    return None
