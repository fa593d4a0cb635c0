"""The model card (README.md) of a weights folder, filled from its export info into ``model_card.md``."""
from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Sequence

from .export import ExportInfo
from .health import describe

REPO_PLACEHOLDER = "<repo_id>"  # the card of a local folder; push_to_hub puts the real repo id in its place
TEMPLATE = Path(__file__).with_name("model_card.md")
SEGMENTATION_METRICS = ("dice", "iou", "jaccard")


def _task_type(result: dict) -> str:
    if "task_type" in result:
        return result["task_type"]
    return "image-segmentation" if result["metric"].lower() in SEGMENTATION_METRICS else "image-classification"


def _labels(result: dict) -> str:
    fraction = result.get("label_fraction")
    return "" if fraction is None else f"{100 * fraction:g}% labels"


def _budget(result: dict) -> str:
    return f"{result['budget']} budget" if result.get("budget") else ""


METRIC_NAMES = {"dice": "Dice", "auc": "AUC", "iou": "IoU", "acc": "Accuracy", "accuracy": "Accuracy"}


def _metric_args(result: dict) -> dict | None:
    """How the value was measured, as fields: protocol, label fraction, budget, and the spread over seeds."""
    args = {"protocol": result.get("protocol"), "label_fraction": result.get("label_fraction"),
            "budget": result.get("budget"), "seeds": result.get("n"), "std": result.get("std")}
    return {k: v for k, v in args.items() if v is not None} or None


def _front_matter(info: ExportInfo, name: str) -> str:
    from huggingface_hub import EvalResult, ModelCardData  # lazy: reading a card needs no Hub client

    results = info.results
    eval_results = [
        EvalResult(
            task_type=_task_type(r), task_name=r["task"], dataset_type=r.get("dataset_type", r["task"]),
            dataset_name=r.get("dataset_name", r["task"]), dataset_split="test",
            metric_type=r["metric"], metric_value=r["value"],
            metric_name=METRIC_NAMES.get(r["metric"].lower(), r["metric"]), metric_args=_metric_args(r),
            metric_config=", ".join(x for x in (r.get("protocol"), _labels(r), _budget(r)) if x) or None,
        )
        for r in results
    ]
    # only Hub dataset ids belong here (the Hub links them); tower-bench's task names are not, so the field is
    # left out unless the pretraining names real ids; the task names stay in each result's dataset fields
    datasets = info.pretrain.get("datasets")
    data = ModelCardData(
        library_name="timm",
        license=info.pretrain.get("license", "mit"),
        tags=["tower-bench", "image-feature-extraction", "biomedical", "self-supervised"]
        + ([info.method] if info.method else []),
        datasets=datasets or None,
        pipeline_tag="image-feature-extraction",
        model_name=name,
        eval_results=eval_results or None,
    )
    return data.to_yaml()


def _health(health: dict | None) -> str:
    """Did pretraining beat the trivial baselines on images it did not train on?"""
    if not health:
        return "Pretraining health check: not measured (exported before tower-bench checked it)."
    held_out = f" (on {health['n']} images the run did not train on)" if health.get("n") else ""
    return f"Pretraining health check{held_out}: {describe(health)}."


def _results_table(results: Sequence[dict]) -> str:
    if not results:
        return "No downstream results recorded."
    rows = ["| task | dataset | protocol | labels | budget | metric | mean | std | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]
    rows += [f"| {r['task']} | {r.get('dataset_name', r['task'])} | {r.get('protocol', '')} "
             f"| {_labels(r).removesuffix(' labels')} | {r.get('budget', '')} | {r['metric']} | {r['value']} "
             f"| {r.get('std', '')} | {r.get('n', '')} |" for r in results]
    return "\n".join(rows)


def _commands(commands: Sequence[str]) -> str:
    if not commands:
        return "Not recorded here: `tower-bench publish` adds the pretraining and fine-tuning commands."
    return "```bash\n" + "\n".join(commands) + "\n```"


def model_card(info: ExportInfo, repo_id: str = REPO_PLACEHOLDER, commands: Sequence[str] = ()) -> str:
    """The README.md text; ``commands`` are the shell commands that made the weights and their results."""
    unet = info.unet
    name = info.pretrain.get("name") or f"tower-bench {info.method or 'unet'} {unet['encoder']}"
    return Template(TEMPLATE.read_text()).substitute(
        front_matter=_front_matter(info, name).strip(), name=name, encoder=unet["encoder"], in_chans=unet["in_chans"],
        method=info.method or "no pretraining method recorded",
        decoder="encoder and U-Net decoder" if info.trains_decoder else "encoder only (the decoder is not pretrained)",
        version=info.version, protocol_hash=info.protocol_hash, health=_health(info.health),
        protocol=json.dumps(info.pretrain, indent=2, sort_keys=True), results=_results_table(info.results),
        commands=_commands(commands), repo=repo_id, license=info.pretrain.get("license", "mit"),
        task=info.pretrain.get("task", "not recorded"), n_images=info.pretrain.get("n_images", "an unrecorded number of"),
        steps=info.pretrain.get("steps", "an unrecorded number of"), batch=info.pretrain.get("global_batch", "?"),
    )
