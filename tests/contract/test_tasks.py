"""Every registered task against the task contract (``tasks.CHECKS``), on the miniature data it writes."""
import pytest

from benchmark.core import registry

from .tasks import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", list(registry.TASKS))
def test_task_contract(name, check, tmp_path):
    check(name, tmp_path)
