"""Small I/O pieces every layer shares: atomic file writes and stable configuration hashes."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _current_umask() -> int:
    """The process umask; os.umask only reads it by setting it, so it is read once, at import."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; a finished file gets the mode open() would give it, so a lab shares a store.
FILE_MODE = 0o666 & ~_current_umask()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write through ``write(tmp_path)`` into a temporary file in the same folder, fsync, then rename.

    A reader (or a process killed mid-write) sees the old file or the new one, never half of one.
    The file is created with the mode the user's umask gives (0664 under umask 002), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, FILE_MODE)  # after write: a writer that replaces the file would drop the mode
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any, length: int = 12) -> str:
    """Hash of a JSON-able configuration, independent of key order: names what produced a result."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def package_version() -> str:
    """tower-bench's installed version, stamped on weights and results."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tower-bench")
    except PackageNotFoundError:
        return "0+unknown"


def public_path(path: str | Path | None, keep: int = 1) -> str | None:
    """A path as it may appear in a record, stamp, figure or card: relative paths inside the working folder as
    they are; an absolute path, a home path or one that climbs out (``../shared/data/DRIVE``) by its last ``keep``
    names only, since the rest describes one machine, not the data."""
    if path is None:
        return None
    text = str(path)
    parts = Path(text).parts
    if os.path.isabs(text) or text.startswith("~") or ".." in parts:
        tail = [p for p in parts if p not in ("..", "/", "~")][-keep:]
        return "/".join(tail) or text
    return text


def public_paths(config: dict[str, Any]) -> dict[str, Any]:
    """A run config as records keep it: its data root by its last name, its init folders (an export:
    ``<run>/export``, or ``pretrain/<method>/export``) by their last three; the other fields as they are."""
    out = dict(config)
    if "data_root" in out:
        out["data_root"] = public_path(out["data_root"])
    for key in ("init", "init_decoder"):
        if key in out:
            out[key] = public_path(out[key], keep=3)
    return out


def public_command(command: str) -> str:
    """A stored command line with every argument that names this machine's paths made public (``public_path``)."""
    import shlex

    try:
        args = shlex.split(command)
    except ValueError:  # unbalanced quotes: leave it as it was typed
        return command
    return " ".join(shlex.quote(public_path(a) if ("/" in a or a.startswith("~")) else a) for a in args)
