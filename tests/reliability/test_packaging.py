"""The package as PyPI would get it: a wheel and an sdist build from the tracked files, pass ``twine check``, carry
every module and the model-card template, and ask for ranges (the exact pins live in constraints.txt)."""
from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.reliability.common import REPO

PACKAGES = ("zoo", "tower", "baselines", "benchmark")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """Wheel and sdist built from a copy of the checkout's files (the build writes egg-info into its source)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    for hook in ("build_wheel", "build_sdist"):  # one process each, as a build frontend calls them
        code = f"import sys; from setuptools import build_meta; build_meta.{hook}(sys.argv[1])"
        out = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=src, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_twine_accepts_the_wheel_and_the_sdist(built):
    out = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.count("PASSED") == 2, out.stdout + out.stderr


@pytest.mark.slow
def test_the_wheel_has_every_module_and_asks_for_ranges(built):
    wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    modules = {str(p.relative_to(REPO)) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    assert modules <= names, sorted(modules - names)[:10]
    assert "zoo/model_card.md" in names  # the card template save_pretrained fills
    assert not any(n.startswith("tests/") for n in names)
    requires = meta.get_all("Requires-Dist")
    torch = next(r for r in requires if r.startswith("torch") and not r.startswith("torchvision"))
    assert "==" not in torch and ">=" in torch, torch  # a user's own torch is kept; constraints.txt pins the tests'
    assert {"medmnist", "nifti", "test"} <= set(meta.get_all("Provides-Extra"))
    assert not any(r.startswith(("nibabel", "medmnist")) and "extra" not in r for r in requires)
    pins = (REPO / "constraints.txt").read_text()
    assert "torch==" in pins and "-c constraints.txt" in (REPO / "README.md").read_text()
