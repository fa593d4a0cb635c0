"""Shared pieces of the reliability tests: run the CLI the way a user does, and look at what it left behind.

``cli(...)`` calls ``benchmark.cli.main()`` in this process (seconds saved per case: no re-import of torch
and timm), with ``sys.argv`` set as the console script sets it. An exception that ``main()`` does not turn
into a one-line message escapes into the test and fails it, exactly as it would print a traceback for a
user. ``cli_subprocess(...)`` runs the real console entry point where the process itself matters
(kills, environment variables read at import, the traceback check on a real stderr).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("tower-bench: error: ")]


def cli(capsys: pytest.CaptureFixture, *args: str) -> Result:
    """``tower-bench ARGS`` in-process: exit code, stdout, stderr."""
    from benchmark.cli import main

    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["tower-bench", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def subprocess_env(**extra: str) -> dict[str, str]:
    """One thread per process: the suite shares 2 cores with other work (2 threads under load: 20x slower)."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "COLUMNS": "200", **extra}


def cli_subprocess(*args: str, cwd: Path, timeout: float = 120, **env: str) -> Result:
    """``python -m benchmark ARGS`` in a fresh process (the console script's entry point, ``main()``)."""
    proc = subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(res: Result, *fragments: str) -> None:
    """Non-zero exit, no traceback, and one ``tower-bench: error:`` line that names every fragment.

    Progress printed before the failure (pretraining's config line) and the expected-layout lines that
    data errors print after it are allowed; the error itself must be readable from that one line.
    """
    assert res.code != 0, f"exit code 0 for a bad input; stderr:\n{res.err}"
    assert "Traceback" not in res.err, f"a traceback instead of a message:\n{res.err}"
    assert len(res.error_lines) == 1, f"expected one 'tower-bench: error:' line:\n{res.err}"
    line = res.error_lines[0]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in the error line:\n{line}"


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file under ``root``: to show nothing was touched."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out
