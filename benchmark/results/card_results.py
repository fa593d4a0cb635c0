"""What ``tower-bench publish`` adds to an export's model card: its results from the store, and the commands.

A record belongs to an export when fine-tuning started from it: ``run`` names the pretraining by its
hash (``config.extra.pretrain_hash``), ``finetune --init FOLDER`` by the folder (``config.init``).
Mixed encoder/decoder records (``--init-decoder``) are left out: their decoder is another init's.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from collections import defaultdict
from pathlib import Path

from benchmark.core.config import BUDGETS, DEFAULT_PROTOCOL
from benchmark.results import stats
from benchmark.results.store import ResultStore
from zoo.export import ExportInfo

# PretrainConfig fields the pretrain command sets by flag, and the flag
FLAGS = {"method": "--method", "task": "--task", "encoder": "--encoder", "epochs": "--epochs",
         "max_steps": "--max-steps", "batch_size": "--batch-size", "lr": "--lr", "image_size": "--image-size",
         "seed": "--seed"}
# ... and those only a budget sets: PretrainConfig field -> Budget field
BUDGET_FIELDS = {"min_steps": "pretrain_min_steps", "warmup_steps": "pretrain_warmup_steps",
                 "decoder_channels": "decoder_channels"}


def records_of(store: ResultStore, info: ExportInfo, folder: Path) -> list[dict]:
    """The store's records fine-tuned from the export in ``folder`` (whose export info is ``info``)."""
    run_hash, folder = info.pretrain.get("hash"), folder.resolve()

    def ours(record: dict) -> bool:
        cfg = record.get("config") or {}
        if cfg.get("init_decoder"):
            return False
        if run_hash is not None and (cfg.get("extra") or {}).get("pretrain_hash") == run_hash:
            return True
        init = cfg.get("init")
        return isinstance(init, str) and init not in ("random", "imagenet") and Path(init).resolve() == folder

    return [r for r in store.records() if ours(r)]


def summarise(records: list[dict]) -> list[dict]:
    """One result per (task, protocol, label fraction, budget, fine-tuning config, metric): mean ± std over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        key = (r["task"], r.get("protocol", DEFAULT_PROTOCOL), float(r["label_fraction"]), r["budget"],
               r["config_hash"], r["metric"])
        groups[key].append(r)
    out = []
    for (task, protocol, fraction, budget, config_hash, metric), rs in sorted(groups.items()):
        s = stats.summarize([float(r["value"]) for r in rs])
        result = {"task": task, "metric": metric, "value": round(s.mean, 2), "n": s.n, "protocol": protocol,
                  "label_fraction": fraction, "budget": budget, "config_hash": config_hash,
                  "seeds": sorted(int(r["seed"]) for r in rs)}
        if s.n > 1:
            result["std"] = round(s.std, 2)
        out.append(result)
    return out


def pretrain_command(protocol: dict) -> str:
    """The ``tower-bench pretrain`` command whose flags restate ``protocol`` (the export's pretraining config).

    Fields without a flag come from the budget that has them; when none does, a comment names them.
    """
    budget = next((b for b in BUDGETS.values() if all(
        _same(protocol.get(field), getattr(b, name)) for field, name in BUDGET_FIELDS.items())), None)
    args = ["tower-bench", "pretrain"] + (["--budget", budget.name] if budget else [])
    for field, flag in FLAGS.items():
        if protocol.get(field) is not None:
            args += [flag, str(protocol[field])]
    for key, value in sorted((protocol.get("hparams") or {}).items()):
        args += ["--hparam", f"{key}={json.dumps(value)}"]
    if protocol.get("bf16") is not None:
        args.append("--bf16" if protocol["bf16"] else "--no-bf16")
    if protocol.get("compile"):
        args.append("--compile")
    command = " ".join(shlex.quote(a) for a in args)
    if budget is None:
        unset = ", ".join(f"{f}={protocol.get(f)}" for f in BUDGET_FIELDS)
        command += f"  # and {unset}: no budget has them and no flag sets them"
    return command


def _same(a, b) -> bool:
    return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)


def finetune_commands(records: list[dict]) -> list[str]:
    """The fine-tuning commands the records were made by, once each (records before tower-bench kept one: counted)."""
    commands = list(dict.fromkeys(r["command"] for r in records if r.get("command")))
    missing = sum(1 for r in records if not r.get("command"))
    if missing:
        commands.append(f"# {missing} fine-tuning record(s) name no command (stored before records kept one)")
    return commands


def card_inputs(store: ResultStore, info: ExportInfo, folder: Path) -> tuple[ExportInfo, list[str]]:
    """(the export info with the stored results after its own, the commands) for ``folder``'s model card."""
    records = records_of(store, info, folder)
    commands = [pretrain_command(info.pretrain["config"])] if "config" in info.pretrain else []
    info = dataclasses.replace(info, results=info.results + tuple(summarise(records)))
    return info, commands + finetune_commands(records)
