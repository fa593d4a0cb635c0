"""The child processes of a GPU session: each runs in its own time box, so these may import torch and the CLI.

``python3 -m benchmark.tools.gpu_session --child NAME`` dispatches here (``benchmark.tools.gpu_session.main``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def machine_child(work: Path) -> None:
    """Write machine.json (for the parent) and machine.txt (for people): what this run measured on."""
    import platform
    import shutil

    import torch

    cuda = torch.cuda.is_available()
    info = {"host": platform.node(), "python": platform.python_version(), "executable": sys.executable,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cuda_available": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "gpu_count": torch.cuda.device_count(), "cpus": os.cpu_count(), "driver": None}
    smi = shutil.which("nvidia-smi")
    report = "nvidia-smi: not found\n"
    if smi:
        query = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30)
        if query.returncode == 0 and query.stdout.strip():
            info["driver"] = query.stdout.strip().splitlines()[0]
        report = subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout
    (work / "machine.json").write_text(json.dumps(info, indent=1) + "\n")
    text = "".join(f"{k}: {v}\n" for k, v in info.items()) + "\n" + report
    (work / "machine.txt").write_text(text)
    print(text)


def pretrain_child(args: list[str]) -> None:
    """``tower-bench pretrain ARGS`` itself (same options and checks, through the CLI's error handling)."""
    from benchmark.cli import main

    sys.argv = ["tower-bench", "pretrain", *args]
    main()


def finetune_child(work: Path) -> None:
    """All fine-tuning runs in one process (imports and data load once), each record stored when done."""
    from benchmark.core.registry import make_task
    from benchmark.results.store import ResultStore
    from benchmark.sweep.run import finetune_config, finetune_stored
    from benchmark.sweep.spec import Sweep

    spec = json.loads((work / "finetune.json").read_text())
    root = None if spec["data_root"] is None else Path(spec["data_root"])
    sweep = Sweep.resolve([i["name"] for i in spec["inits"]], spec["task"], spec["budget"], data_root=root)
    task = make_task(spec["task"], root, sweep.budget.image_size)
    store = ResultStore(spec["store"])
    for seed in range(spec["seeds"]):
        for init in spec["inits"]:
            pretrained = None if init["pretrain_hash"] is None else (init["pretrain_hash"], 0)
            cfg = finetune_config(sweep, task, spec["task"], init["init"], seed, 1.0, root, pretrained)
            finetune_stored(store, cfg, task, init["name"], progress=False)
