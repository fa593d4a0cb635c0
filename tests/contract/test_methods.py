"""Every registered method and variant against the method contract (``methods.CHECKS``)."""
import pytest

from .methods import CHECKS, subjects

SUBJECTS = subjects()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.name)
def test_method_contract(subject, check, tiny_unet):
    check(subject, tiny_unet)
