"""The CLI lists every registered task (each task's own contract: tests/contract/tasks.py)."""
from __future__ import annotations

from benchmark.core import registry


def test_cli_lists_every_task(monkeypatch):
    from rich.console import Console

    from benchmark.cli import info

    console = Console(width=400, record=True)
    monkeypatch.setattr(info, "console", console)
    info.tasks_command()
    text = console.export_text()
    for name in registry.TASKS:
        assert name in text
    assert len(registry.TASKS) >= 12

