"""A newcomer's first commands: typos answered at once with what was meant, progress lines as jobs land, and runs that
leave the committed boards (tracked files) alone."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from benchmark.core import names, registry
from benchmark.errors import UnknownNameError
from tests.reliability.common import REPO, Result, assert_one_line_error, cli_subprocess, subprocess_env


@pytest.mark.parametrize("args, fragments", [
    (("run", "--method", "towr", "--task", "synth-fundus"), ("unknown method 'towr'", "did you mean 'tower'?")),
    (("run", "--task", "retinamnistt"), ("unknown task 'retinamnistt'", "did you mean 'retinamnist'?")),
    (("run", "--budget", "cpy"), ("unknown budget 'cpy'", "did you mean 'cpu'?")),
    (("run", "--protocol", "linaer"), ("unknown protocol 'linaer'", "did you mean 'linear'?")),
    (("finetune", "--init", "towr", "--task", "synth-fundus"), ("--init 'towr'", "did you mean 'tower'?",
                                                                 "a weights folder", "a Hub id")),
])
def test_a_typo_answers_before_torch_is_imported(tmp_path, args, fragments):
    """The names are checked first: the process never imports torch (-X importtime lists every import)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", *args], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "timm" not in imported, sorted(m for m in imported if "torch" in m)[:5]
    err = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    assert_one_line_error(Result(proc.returncode, proc.stdout, err), *fragments)


def test_an_unreachable_hub_id_fails_at_once_naming_the_forms(tmp_path):
    start = time.monotonic()
    res = cli_subprocess("finetune", "--init", "someone/no-such-model", "--task", "synth-fundus", "--budget", "smoke",
                         cwd=tmp_path, HF_HUB_OFFLINE="1")
    assert_one_line_error(res, "--init someone/no-such-model", "HF_HUB_OFFLINE", "a method name", "a weights folder")
    assert "Retrying" not in res.err and time.monotonic() - start < 60  # no network retries (they took 29 s)


def test_a_method_name_as_init_is_its_export_from_run(tmp_path):
    res = cli_subprocess("finetune", "--init", "tower", "--task", "synth-fundus", "--budget", "smoke", cwd=tmp_path)
    assert_one_line_error(res, "--init tower", "no tower pretraining of synth-fundus at budget smoke",
                          "runs/pretrain/tower-synth-fundus-", "tower-bench run --method tower")


def test_names_checks_offer_the_closest_name_only_when_one_is_close():
    assert names.did_you_mean("simclf", ["simclr", "byol"]) == " (did you mean 'simclr'?)"
    assert names.did_you_mean("zzzz", ["simclr", "byol"]) == ""
    with pytest.raises(UnknownNameError, match="did you mean 'moco'"):
        registry.check_methods("tower,mocco")
    assert registry.check_methods("all")[-3:] == ["supervised", "random-aa", "imagenet"]
    assert registry.check_init("org/model") == "org/model" and registry.check_init("random-aa") == "random-aa"
    assert names.looks_like_hub_id("org/model") and not names.looks_like_hub_id("towr")


@pytest.mark.slow
def test_a_smoke_sweep_in_a_clone_prints_progress_and_leaves_git_status_clean(tmp_path):
    """The README's first command, at the smoke budget, run inside a fresh clone: every job's line lands with its
    count, the board goes to runs/leaderboards, and no tracked file changes (leaderboards/ holds the committed ones)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and this checkout's history")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=120)
    res = cli_subprocess("run", "--method", "tower,random", "--task", "synth-fundus", "--budget", "smoke",
                         "--seeds", "2", "--launcher", "local", "--workers", "2", cwd=clone, timeout=600,
                         PYTHONSAFEPATH="1")  # this tree's code (PYTHONPATH), not the clone's committed one
    assert res.code == 0, res.err[-3000:]
    out = res.out + res.err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert any(line.startswith("[1/5 ") for line in lines) and any(line.startswith("[5/5 ") for line in lines), out
    assert any("tower pretrained: passed" in line or "tower pretrained: FAILED" in line for line in lines), lines
    assert sum("seed" in line and "dice" in line for line in lines) == 4, lines
    assert "ETA" in lines[0]
    assert (clone / "runs" / "leaderboards" / "synth-fundus-smoke.md").is_file()
    assert out.count("synth-fundus-smoke.md") == 1  # the file list once
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
