import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

DRIVE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "DRIVE"
TINY_ENCODER = "test_resnet"  # timm's 0.5M-parameter ResNet made for tests
TINY_DECODER = (32, 32, 16, 16, 8)


@pytest.fixture
def drive_root() -> Path:
    if not (DRIVE_ROOT / "training" / "images").is_dir():
        pytest.skip(f"real DRIVE data not found at {DRIVE_ROOT}")
    return DRIVE_ROOT


@pytest.fixture
def tiny_unet():
    from zoo import UNet

    def make(in_chans: int = 3, out_chans: int | None = None, seed: int = 0) -> UNet:
        torch.manual_seed(seed)
        return UNet(TINY_ENCODER, in_chans, in_chans if out_chans is None else out_chans, TINY_DECODER)

    return make


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The shuffled order's seed, also under ``-q`` (which hides pytest-randomly's header): a failure that depends on
    the order is repeated with ``-p randomly --randomly-seed=N``."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None:
        terminalreporter.write_line(f"test order shuffled by pytest-randomly, seed {seed} (--randomly-seed={seed} "
                                    "repeats it; -p no:randomly keeps the file order)")
