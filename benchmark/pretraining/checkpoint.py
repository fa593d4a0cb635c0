"""What a pretraining checkpoint holds and how a run resumes from it exactly.

A checkpoint is read with ``weights_only=True`` (tensors and plain containers only); the metrics log
is appended at each checkpoint and cut back to the checkpoint's step on resume.
"""
from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from benchmark.core.config import PretrainConfig
from benchmark.errors import BadFileError, ConfigError
from benchmark.pretraining.batches import Batches
from zoo.distributed import rank, world_size
from zoo.io import atomic_write_text


@dataclass
class Resumable:
    """The parts of a run a checkpoint saves; restoring them all continues the run bit for bit."""

    method: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    batches: Batches
    view_gen: torch.Generator
    device: torch.device

    def gather_rng(self) -> list[dict[str, torch.Tensor]]:
        """Every rank's RNG states (each rank draws its own views), for rank 0 to store; every rank must call it."""
        state = {"torch": torch.get_rng_state(), "views": self.view_gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        if world_size() == 1:
            return [state]
        out: list[Any] = [None] * world_size()
        dist.all_gather_object(out, state)
        return out

    def state(self, step: int, cfg: PretrainConfig, rng: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        return {
            "step": step, "config_hash": cfg.hash(), "config": cfg.to_dict(),
            "method": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "batches": self.batches.state(), "rng": rng,
        }

    def restore(self, path: Path, config_hash: str) -> int:
        """Load the checkpoint at ``path`` into every part; returns its step.

        A checkpoint of another config or another number of processes is refused with a ValueError.
        """
        ckpt = load_checkpoint(path)
        if ckpt["config_hash"] != config_hash:
            raise ConfigError(f"{path} belongs to config {ckpt['config_hash']}, not {config_hash}; "
                             "resume with the same settings or choose another --out")
        if len(ckpt["rng"]) != world_size():
            raise ConfigError(f"{path} was written by {len(ckpt['rng'])} process(es); resume with the same number")
        try:  # the hash matched, so a mismatch here is a damaged or edited file, not a user's other settings
            self.method.load_state_dict(ckpt["method"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.batches.load_state(ckpt["batches"])
            self._set_rng(ckpt["rng"][rank()])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
            raise BadFileError(f"{path}: its saved state does not fit this run ({' '.join(str(err).split())[:160]}); "
                             "expected the checkpoint tower-bench pretrain wrote for this config: move it away to "
                             "start over") from None
        return ckpt["step"]

    def _set_rng(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["torch"])
        self.view_gen.set_state(state["views"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A resume checkpoint, read with ``weights_only=True``: tensors and plain containers only.

    A file holding any other pickled object (which could run code when unpickled) or a damaged file
    is refused with a ValueError naming it; it is left where it is.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        which = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), "")
        raise BadFileError(f"{path}: refused to resume from it: it holds objects other than tensors and plain "
                         f"containers, which could run code when loaded{f' ({which[:120]})' if which else ''}; "
                         "expected a checkpoint written by tower-bench pretrain") from None
    except (RuntimeError, EOFError, OSError, IndexError, ValueError) as err:  # text and cut files: many kinds
        raise BadFileError(f"{path}: unreadable or truncated checkpoint ({' '.join(str(err).split())[:80]}); "
                         "move it away to start over, or choose another --out") from None
    if not isinstance(ckpt, dict) or not {"step", "config_hash", "method", "rng"} <= ckpt.keys():
        raise BadFileError(f"{path}: not a tower-bench pretraining checkpoint (expected keys step, config_hash, "
                         f"method, optimizer, scheduler, batches, rng)")
    return ckpt


def remove_stale_temps(path: Path) -> None:
    """Temp files of writes of ``path`` cut by a kill: never read, only in the way."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def truncate_metrics(path: Path, upto: int) -> list[dict[str, Any]]:
    """Keep the rows up to the checkpoint's step: later ones (and a last line cut by a kill) get recomputed.

    Any other unreadable line means the file is not this run's log: refused with its line number, left as it is.
    """
    rows = []
    try:
        lines = path.read_text().splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path}: unreadable metrics log ({err}); expected one JSON object per line") from None
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # cut by a kill mid-write
                continue
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise BadFileError(f"{path}: line {number} is not a metrics row ({line[:60]!r}); expected one JSON object "
                             "per line with an integer 'step'; move the file away to resume without it")
        if row["step"] <= upto:
            rows.append(row)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Appended at each checkpoint, not rewritten: a long run's log stays O(steps) to write."""
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        f.flush()
        os.fsync(f.fileno())
