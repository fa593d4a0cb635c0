"""The GPU check runs its whole code path on the CPU in dry mode; without CUDA it skips cleanly."""
from __future__ import annotations

import re

import pytest
import torch

from benchmark.tools import gpu_check

ROWS = ("CUDA vs CPU loss (fp32)", "fp32 eager", "bf16 + channels_last", "bf16 + channels_last + compile",
        "proxy share of step", "achieved TFLOP/s", "GPU busy")


@pytest.mark.slow
def test_dry_run_prints_every_row_with_a_measured_value(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("command: python -m benchmark.tools.gpu_check --dry-run\n")
    assert f"torch {torch.__version__}" in out and "device: CPU (dry run" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(ROWS) <= set(rows), sorted(rows)
    # the same weights, batch and views on the same device: exactly equal
    assert "loss 0.0e+00" in rows["CUDA vs CPU loss (fp32)"]
    for name in ("fp32 eager", "bf16 + channels_last", "bf16 + channels_last + compile"):
        assert float(re.search(r"\| ([\d.]+) img/s", rows[name]).group(1)) > 0, rows[name]
    share = float(re.search(r"\| ([\d.]+)% \(", rows["proxy share of step"]).group(1))
    busy = float(re.search(r"\| (\d+)% of wall", rows["GPU busy"]).group(1))
    assert 0 < share < 100 and 0 < busy <= 100
    assert float(re.search(r"\(([\d.]+) TFLOP per step", rows["achieved TFLOP/s"]).group(1)) > 0


def test_without_cuda_it_skips_with_exit_code_0(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert "skipped: no CUDA device" in capsys.readouterr().out


def test_busy_time_counts_overlapping_intervals_once():
    assert gpu_check._union_s([(0, 2e6), (1e6, 3e6), (5e6, 6e6)]) == pytest.approx(4.0)
    assert gpu_check._union_s([(0, 4e6), (1e6, 2e6)]) == pytest.approx(4.0)
