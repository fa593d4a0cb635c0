"""DRIVE patches below its minimum size; a task that cannot patch is refused (every task: tests/contract)."""
import pytest

from benchmark.core import registry
from benchmark.core.config import BUDGETS


def test_drive_patches_below_512_and_keeps_full_images_at_the_paper_size():
    assert registry.make_task("drive", None, 64).patches
    assert "native-resolution 64-px patches" in registry.make_task("drive", None, 64).input_note
    paper = registry.make_task("drive", None, BUDGETS["paper"].image_size)
    assert not paper.patches and paper.image_size == 512 and paper.input_note == "full images at 512 px"


def test_a_task_that_cannot_patch_is_refused_with_the_budgets_that_fit(monkeypatch):
    cls = registry.task_class("montgomery")
    monkeypatch.setattr(cls, "min_size", 200)
    with pytest.raises(registry.TaskSizeError, match=r"at least 200 px.*--budget paper"):
        registry.make_task("montgomery", None, 64)
