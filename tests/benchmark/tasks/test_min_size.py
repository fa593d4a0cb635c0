"""No budget silently shrinks a task below the size at which its targets survive (issue: DRIVE at 64 px)."""
import pytest

from benchmark import registry
from benchmark.config import BUDGETS


@pytest.mark.parametrize("budget", list(BUDGETS))
@pytest.mark.parametrize("name", list(registry.TASKS))
def test_no_task_is_shrunk_below_its_minimum_size(name, budget):
    cls = registry.task_class(name)
    size = BUDGETS[budget].image_size
    try:
        task = registry.make_task(name, None, size)
    except registry.TaskSizeError as err:  # refused: the message names a budget that fits
        fits = [b for b in BUDGETS if (BUDGETS[b].image_size or cls.image_size) >= cls.min_size]
        assert fits and any(f"--budget {b}" in str(err) or f" or {b}" in str(err) for b in fits)
        return
    if getattr(task, "patches", False):  # native resolution, patches of the budget's size
        assert task.read_size is None and task.image_size == (size or cls.image_size)
    else:
        assert task.image_size >= cls.min_size


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
