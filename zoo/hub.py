"""Weights in and out: one folder that both tower-bench and plain timm load.

Layout (``format`` 1)::

    config.json          timm's keys at the top level (architecture, num_classes=0, model_args,
                         pretrained_cfg) so ``timm.create_model("hf-hub:org/name", pretrained=True)``
                         builds the encoder without tower-bench; plus a ``tower_bench`` section
                         (UNet config, method, pretraining protocol + hash, version)
    model.safetensors    the encoder, with timm's own key names (what timm loads)
    decoder.safetensors  ``decoder.*`` and ``head.*`` of the UNet
    README.md            model card with the downstream results as ``model-index``

Only safetensors are read or written: pickle files can run code when loaded.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import timm
import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import BadFileError, ConfigError, MissingFileError, NotAFolderError
from .io import atomic_write, atomic_write_text, package_version, stable_hash
from .unet import UNet, UNetConfig

FORMAT = 1
CONFIG_FILE, ENCODER_FILE, DECODER_FILE, CARD_FILE = "config.json", "model.safetensors", "decoder.safetensors", "README.md"
FILES = (CONFIG_FILE, ENCODER_FILE, DECODER_FILE, CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
REPO_PLACEHOLDER = "<repo_id>"  # in the model card; push_to_hub puts the real repo id in its place
_DECODER_PREFIXES = ("decoder.", "head.")


# ----------------------------------------------------------------------------------------- saving


def _timm_config(net: UNet) -> dict:
    """timm's top-level keys, describing the encoder as a plain classifier-less timm model."""
    from timm.models._pretrained import filter_pretrained_cfg

    cfg = net.config
    source = dict(getattr(net.encoder, "pretrained_cfg", None) or {})
    pretrained_cfg = filter_pretrained_cfg(source, remove_source=True, remove_null=True)
    # These describe timm's ImageNet weights (where, which labels, their licence), not these weights.
    for key in ("architecture", "url", "hf_hub_id", "tag", "state_dict", "license",
                "label_names", "label_descriptions", "label_offset"):
        pretrained_cfg.pop(key, None)
    size = tuple(pretrained_cfg.get("input_size", (3, 224, 224)))
    pretrained_cfg.update(
        num_classes=0,
        custom_load=False,
        input_size=[cfg.in_chans, *size[1:]],
        # The exact per-channel statistics UNet normalises with, so timm's data config matches.
        mean=net.mean.flatten().tolist(),
        std=net.std.flatten().tolist(),
    )
    return {
        "architecture": cfg.encoder,
        "num_classes": 0,
        "num_features": net.num_features,
        "global_pool": "avg",
        "model_args": {"in_chans": cfg.in_chans, **cfg.encoder_kwargs},
        "pretrained_cfg": pretrained_cfg,
    }


def _jsonable(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be JSON-serialisable to go into {CONFIG_FILE}: {err}") from err


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    # safetensors refuses tensors that share storage (tied weights, views): store independent copies.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))


def save_pretrained(
    net: UNet,
    save_dir: str | Path,
    *,
    method: str | None = None,
    trains_decoder: bool = False,
    pretrain: dict | None = None,
    results: list[dict] | None = None,
) -> Path:
    """Write the four files of the folder layout (each atomically) and return the folder.

    ``pretrain`` is the JSON-able pretraining protocol (task, data, config, ...); its hash names it.
    ``results`` are downstream results such as ``{"task": "drive", "metric": "dice", "value": 80.1,
    "std": 0.4, "n": 10, "dataset_name": "DRIVE"}``; they go into the card's ``model-index``.
    """
    save_dir = Path(save_dir)
    pretrain = _jsonable(pretrain or {}, "pretrain")
    results = _jsonable(list(results or []), "results")
    for i, r in enumerate(results):
        missing = {"task", "metric", "value"} - r.keys()
        if missing:
            raise ValueError(f"results[{i}] lacks {sorted(missing)}; expected keys task, metric, value (+ std, n, dataset_name)")
    config = _timm_config(net)
    config["tower_bench"] = {
        "format": FORMAT,
        "version": package_version(),
        "unet": net.config.to_dict(),
        "method": method,
        "trains_decoder": bool(trains_decoder),
        "pretrain": pretrain,
        "protocol_hash": stable_hash(pretrain),
        "results": results,
    }
    state = net.state_dict()
    _save_tensors(save_dir / ENCODER_FILE, net.encoder.state_dict())
    _save_tensors(save_dir / DECODER_FILE, {k: v for k, v in state.items() if k.startswith(_DECODER_PREFIXES)})
    atomic_write_text(save_dir / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    atomic_write_text(save_dir / CARD_FILE, model_card(config).content)
    return save_dir


def _task_type(result: dict) -> str:
    if "task_type" in result:
        return result["task_type"]
    return "image-segmentation" if result["metric"].lower() in ("dice", "iou", "jaccard") else "image-classification"


def _health_lines(health: dict | None) -> str:
    """The pretraining health check as the card states it: did pretraining beat the trivial baselines?"""
    if not health:
        return "Pretraining health: not measured (exported before tower-bench checked it)."
    lines = [f"Pretraining health check: **{'passed' if health.get('passed') else 'FAILED'}** "
             f"(on {health.get('n')} images the run did not train on, where the pool was large enough)."]
    if "restoration_mse" in health:
        lines.append(f"- restoration MSE {health['restoration_mse']:.5f}; predicting the mean training image "
                     f"{health['mean_image_mse']:.5f}; returning the corrupted view {health['identity_mse']:.5f}")
    if "retrieval_top1" in health:
        lines.append(f"- positive-pair retrieval top-1 {100 * health['retrieval_top1']:.1f}% "
                     f"(chance {100 * health['retrieval_chance']:.1f}%)")
    return "\n".join(lines)


def model_card(config: dict) -> ModelCard:
    """The README.md model card for a config.json dict (``card_for_repo`` fills in the repo id)."""
    tb = config["tower_bench"]
    unet, pretrain, results = tb["unet"], tb["pretrain"], tb.get("results") or []
    method = tb.get("method") or "no pretraining method recorded"
    repo = REPO_PLACEHOLDER
    name = pretrain.get("name") or f"tower-bench {tb.get('method') or 'unet'} {unet['encoder']}"
    eval_results = [
        EvalResult(
            task_type=_task_type(r),
            task_name=r["task"],
            dataset_type=r.get("dataset_type", r["task"]),
            dataset_name=r.get("dataset_name", r["task"]),
            metric_type=r["metric"],
            metric_value=r["value"],
            metric_name=r["metric"] + (f" (mean of {r['n']} seeds, std {r['std']})" if "n" in r and "std" in r else ""),
        )
        for r in results
    ]
    data = ModelCardData(
        library_name="timm",
        license=pretrain.get("license", "mit"),
        tags=["tower-bench", "image-feature-extraction", "biomedical", "self-supervised"]
        + ([tb["method"]] if tb.get("method") else []),
        datasets=pretrain.get("datasets"),
        pipeline_tag="image-feature-extraction",
        model_name=name,
        eval_results=eval_results or None,
    )
    rows = [
        f"| {r['task']} | {r.get('dataset_name', r['task'])} | {r['metric']} | {r['value']} "
        f"| {r.get('std', '')} | {r.get('n', '')} |"
        for r in results
    ]
    header = ["| task | dataset | metric | mean | std | seeds |", "|---|---|---|---|---|---|"]
    table = "\n".join(header + rows) + "\n" if results else "No downstream results recorded.\n"
    decoder = "encoder and U-Net decoder" if tb.get("trains_decoder") else "encoder only (the decoder is not pretrained)"
    health = _health_lines(pretrain.get("health"))
    body = f"""
# {name}

A 2D U-Net on the timm encoder `{unet['encoder']}` ({unet['in_chans']} input channel(s)), pretrained
with **{method}** ({decoder}) by tower-bench {tb['version']}.

## Pretraining

Protocol hash `{tb['protocol_hash']}` (hash of the protocol below; it names the leaderboard rows).

{health}

```json
{json.dumps(pretrain, indent=2, sort_keys=True)}
```

## Downstream results

{table}
## How to load

Encoder only, with plain timm (no tower-bench needed):

```python
import timm
encoder = timm.create_model("hf-hub:{repo}", pretrained=True)  # or "local-dir:/path/to/this/folder"
```

Normalise images with the `mean`/`std` in `config.json` (`pretrained_cfg`).

The whole U-Net (encoder + decoder + head), with tower-bench (inputs in [0, 1]; normalisation is inside):

```python
from zoo.hub import from_pretrained
net = from_pretrained("{repo}")  # or a local folder
```

Fine-tune it with `tower-bench finetune --init {repo}`.
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


# ---------------------------------------------------------------------------------------- loading


def _strip_prefix(name: str) -> str:
    for prefix in ("hf-hub:", "local-dir:"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class _Source:
    """A local folder or a Hub repo; ``file(name)`` gives a local path to one of its files or None."""

    def __init__(self, name_or_path: str | Path, revision: str | None = None):
        self.name = _strip_prefix(str(name_or_path))
        self.revision = revision
        path = Path(self.name).expanduser()
        self.folder = path if path.is_dir() else None
        if self.folder is None:
            if path.exists():
                pickled = (f" ({path.suffix} is a pickle format, refused: tower-bench loads safetensors only, "
                           "since pickle files can run code when loaded)" if path.suffix in PICKLE_SUFFIXES else "")
                raise NotAFolderError(f"{path} is a file; expected a folder with {CONFIG_FILE} and {ENCODER_FILE}"
                                      + pickled)
            if path.is_absolute() or self.name.startswith((".", "~")) or self.name.count("/") > 1:
                raise MissingFileError(f"no folder {path} (expected a folder with {CONFIG_FILE} and {ENCODER_FILE})")

    def __str__(self) -> str:
        return str(self.folder) if self.folder else f"Hub repo {self.name!r}" + (f"@{self.revision}" if self.revision else "")

    def file(self, filename: str) -> Path | None:
        if self.folder is not None:
            path = self.folder / filename
            return path if path.is_file() else None
        try:
            return Path(hf_hub_download(self.name, filename, revision=self.revision))
        except LocalEntryNotFoundError as err:  # offline, or the Hub unreachable, and not in the cache
            why = "the machine is offline (HF_HUB_OFFLINE=1)" if constants.is_offline_mode() else "the Hub is unreachable"
            raise MissingFileError(
                f"{self.name!r} is not a local folder, and {filename} of Hub repo {self.name!r} is not in the "
                f"Hugging Face cache ({constants.HF_HUB_CACHE}) while {why}: download the repo on a connected machine "
                f"(`hf download {self.name}`) into that cache, or pass a local folder"
            ) from err
        except EntryNotFoundError:
            return None
        except RevisionNotFoundError as err:
            raise MissingFileError(f"Hub repo {self.name!r} has no revision {self.revision!r}") from err
        except RepositoryNotFoundError as err:
            raise MissingFileError(
                f"{self.name!r} is neither a local folder nor a Hub repo you can access (private? pass a token / `hf auth login`)"
            ) from err
        except HFValidationError as err:
            raise MissingFileError(f"{self.name!r} is neither a local folder nor a valid Hub repo id (org/name)") from err

    def pickle_files(self) -> list[str]:
        if self.folder is None:
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.suffix in PICKLE_SUFFIXES)

    def require(self, filename: str) -> Path:
        path = self.file(filename)
        if path is not None:
            return path
        pickles = self.pickle_files()
        if pickles:
            raise BadFileError(
                f"{self} has {', '.join(pickles)} but no {filename}: tower-bench loads safetensors only "
                f"(pickle files can run code when loaded); save the weights with zoo.hub.save_pretrained"
            )
        only = " (tower-bench reads safetensors only)" if filename.endswith(".safetensors") else ""
        raise MissingFileError(f"{self} has no {filename}{only}")


def _encoder_only_config(config: dict, where: str) -> dict:
    """A tower_bench section for a plain timm folder: its encoder, a fresh default decoder."""
    model_args = dict(config.get("model_args") or {})
    in_chans = model_args.pop("in_chans", None) or (config.get("pretrained_cfg") or {}).get("input_size", [3])[0]
    unet = UNetConfig(encoder=config["architecture"], in_chans=in_chans, out_chans=in_chans, encoder_kwargs=model_args)
    warnings.warn(f"{where} is a plain timm folder (no 'tower_bench' section): loading its encoder with a fresh decoder")
    return {
        "format": FORMAT, "version": None, "unet": unet.to_dict(), "method": None, "trains_decoder": False,
        "pretrain": {}, "protocol_hash": stable_hash({}), "results": [], "encoder_only": True,
    }


SAVED_BY = "expected the files zoo.hub.save_pretrained writes"


def _load_tensors(path: Path, what: str = "") -> dict[str, torch.Tensor]:
    """``load_file`` with a damaged or foreign file (a pickle, text, a cut download) named in one line."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise BadFileError(f"{what}{path}: not a readable safetensors file ({err}); expected a safetensors file "
                           "(pickles are refused: they can run code when loaded)") from None


def _read_config(source: _Source, allow_encoder_only: bool) -> dict:
    path = source.require(CONFIG_FILE)
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path} is not valid JSON ({err}); {SAVED_BY}") from None
    if not isinstance(config, dict):
        raise BadFileError(f"{path} holds a JSON {type(config).__name__}; expected a JSON object ({SAVED_BY})")
    where = str(path)
    tb = config.get("tower_bench")
    if not isinstance(tb, dict):
        if allow_encoder_only and "architecture" in config:
            config["tower_bench"] = _encoder_only_config(config, str(source))
            return config
        hint = " (a plain timm export? allow_encoder_only=True loads its encoder with a fresh decoder)"
        raise BadFileError(f"{where} has no 'tower_bench' section: not a tower-bench folder ({SAVED_BY})"
                           + (hint if "architecture" in config else ""))
    if not isinstance(tb.get("format", 0), int) or tb.get("format", 0) > FORMAT:
        raise BadFileError(f"{where} has format {tb.get('format')}; expected format <= {FORMAT}: upgrade tower-bench")
    if not isinstance(tb.get("unet"), dict):
        raise BadFileError(f"{where}: 'tower_bench' section lacks 'unet'; expected the UNetConfig as a JSON object")
    return config


def load_config(name_or_path: str | Path, *, revision: str | None = None, allow_encoder_only: bool = False) -> dict:
    """The config.json dict of a local folder or Hub repo (the Hub through its cache, so offline works)."""
    return _read_config(_Source(name_or_path, revision), allow_encoder_only)


def _describe(keys: list[str], limit: int = 10) -> str:
    return ", ".join(keys[:limit]) + (f" ... and {len(keys) - limit} more" if len(keys) > limit else "")


def _foreign_dtype(own: torch.Tensor, loaded: torch.Tensor) -> bool:
    """Integer weights where the model has floats: a foreign or damaged file, not a cast to make silently."""
    return own.is_floating_point() and not loaded.is_floating_point()


def _load_state(
    module: nn.Module, tensors: dict[str, torch.Tensor], where: str, strict: bool, prefixes: tuple[str, ...] = ()
) -> None:
    """Load ``tensors`` into ``module`` (only its keys under ``prefixes`` when given).

    Strict: any missing, unexpected or wrongly shaped key raises one ValueError listing them all.
    Otherwise the matching tensors load and the rest is reported in a warning.
    """
    own = {k: v for k, v in module.state_dict().items() if not prefixes or k.startswith(prefixes)}
    missing = sorted(own.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - own.keys())
    shared = sorted(own.keys() & tensors.keys())
    shapes = [f"{k} (file {tuple(tensors[k].shape)}, model {tuple(own[k].shape)})"
              for k in shared if tensors[k].shape != own[k].shape]
    dtypes = [f"{k} (file {tensors[k].dtype}, model {own[k].dtype})"
              for k in shared if _foreign_dtype(own[k], tensors[k])]
    if missing or unexpected or shapes or dtypes:
        parts = [f"{label}: {_describe(keys)}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes),
                  ("dtype mismatches", dtypes)) if keys]
        msg = f"{where} does not match the model; " + "; ".join(parts)
        if strict:
            raise BadFileError(msg + " (strict=False loads the matching tensors only)")
        warnings.warn(msg + "; loaded the matching tensors only")
    matching = {k: v for k, v in tensors.items()
                if k in own and v.shape == own[k].shape and not _foreign_dtype(own[k], v)}
    module.load_state_dict(matching, strict=False)


def _drop_classifier(tensors: dict[str, torch.Tensor], classifier: str | tuple[str, ...] | None) -> dict[str, torch.Tensor]:
    """Remove a timm classifier's weights (``fc.*`` for ResNets): the U-Net encoder has none."""
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    return {k: v for k, v in tensors.items() if not k.startswith(tuple(f"{c}." for c in names))}


def from_pretrained(
    name_or_path: str | Path, *, revision: str | None = None, strict: bool = True, allow_encoder_only: bool = False
) -> UNet:
    """Rebuild the exact UNet of a folder or Hub repo and load its weights (strictly by default).

    The returned net carries ``net.pretrained_config`` (the config.json dict), so callers know the
    method and whether it trained the decoder. ``allow_encoder_only`` also accepts a plain timm
    folder/repo: its encoder, a fresh decoder.
    """
    source = _Source(name_or_path, revision)
    config = _read_config(source, allow_encoder_only)
    tb = config["tower_bench"]
    try:
        net = UNet.from_config(tb["unet"])
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        raise BadFileError(f"{source.require(CONFIG_FILE)}: 'tower_bench.unet' does not describe a U-Net this "
                           f"tower-bench builds ({type(err).__name__}: {err}); expected the UNetConfig save_pretrained "
                           "writes") from None
    encoder_file = source.require(ENCODER_FILE)
    encoder_state = _load_tensors(encoder_file)
    if tb.get("encoder_only"):
        encoder_state = _drop_classifier(encoder_state, (config.get("pretrained_cfg") or {}).get("classifier"))
    _load_state(net.encoder, encoder_state, f"{encoder_file} (encoder)", strict)
    if not tb.get("encoder_only"):
        decoder_file = source.file(DECODER_FILE)
        if decoder_file is None:
            if strict:
                raise MissingFileError(f"{source} has no {DECODER_FILE} (strict=False keeps a fresh decoder and head)")
            warnings.warn(f"{source} has no {DECODER_FILE}: decoder and head stay freshly initialised")
        else:
            _load_state(net, _load_tensors(decoder_file), f"{decoder_file} (decoder + head)", strict, _DECODER_PREFIXES)
    net.pretrained_config = config
    return net


# ---------------------------------------------------------------------------------------- pushing


def validate_folder(save_dir: str | Path) -> dict:
    """Check a folder is complete before it is published; returns its config."""
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        raise MissingFileError(f"no folder {save_dir} to publish")
    missing = [str(save_dir / f) for f in FILES if not (save_dir / f).is_file()]
    if missing:
        raise MissingFileError(
            f"{', '.join(missing)}: missing or not a file; expected a weights folder with {', '.join(FILES)} "
            "(from save_pretrained)"
        )
    return load_config(save_dir)


def card_for_repo(save_dir: str | Path, repo_id: str) -> str:
    """The folder's README.md as uploaded to ``repo_id``: the loading snippets name the repo."""
    path = Path(save_dir) / CARD_FILE
    try:
        return path.read_text().replace(REPO_PLACEHOLDER, repo_id)
    except UnicodeDecodeError as err:
        raise BadFileError(f"{path} is not UTF-8 text ({err}); expected the Markdown model card save_pretrained "
                           "writes") from None


def _stage(save_dir: Path, staging: Path, repo_id: str) -> None:
    """Hard-link (or copy) the files into ``staging``, with the repo id written into the card."""
    for f in FILES:
        if f == CARD_FILE:
            (staging / f).write_text(card_for_repo(save_dir, repo_id))
            continue
        try:
            os.link(save_dir / f, staging / f)
        except OSError:
            shutil.copy2(save_dir / f, staging / f)


def push_to_hub(
    save_dir_or_net: str | Path | UNet,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload tower-bench weights",
    token: str | None = None,
    **save_kwargs: Any,
) -> str:
    """Upload a saved folder (or a net, saved first with ``save_kwargs``) to ``repo_id``; returns the commit URL.

    Only the four files of the layout are uploaded, never stray files such as pickles.
    """
    with tempfile.TemporaryDirectory(prefix="tower-bench-push-") as tmp:
        if isinstance(save_dir_or_net, nn.Module):
            save_dir = save_pretrained(save_dir_or_net, Path(tmp) / "saved", **save_kwargs)
        elif save_kwargs:
            raise TypeError(f"push_to_hub: {sorted(save_kwargs)} only apply when pushing a net, not the folder {save_dir_or_net}")
        else:
            save_dir = Path(save_dir_or_net)
        validate_folder(save_dir)
        staging = Path(tmp) / "upload"
        staging.mkdir()
        _stage(save_dir, staging, repo_id)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=staging, commit_message=commit_message, revision=revision, allow_patterns=list(FILES)
        )
    return str(getattr(info, "commit_url", info))


# ------------------------------------------------------------------------------ fine-tuning inits


def _imagenet_from_file(cfg: UNetConfig, path: str | Path) -> UNet:
    """A UNet whose encoder holds timm ImageNet weights from a safetensors file with timm's key names."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise BadFileError(f"--imagenet-weights {path}: expected a .safetensors file (pickle files are refused)")
    if not path.is_file():
        raise MissingFileError(f"--imagenet-weights {path}: " + ("a folder; expected a file" if path.is_dir()
                                                                  else "no such file"))
    net = UNet.from_config(cfg)
    tensors = _load_tensors(path, "--imagenet-weights ")
    pcfg = timm.models.get_pretrained_cfg(cfg.encoder)
    tensors = _drop_classifier(tensors, pcfg.classifier if pcfg else None)
    first_conv = (pcfg.first_conv if pcfg else None) or ()
    for conv in (first_conv,) if isinstance(first_conv, str) else first_conv:
        key = f"{conv}.weight"
        if key in tensors and tensors[key].ndim == 4 and tensors[key].shape[1] != cfg.in_chans:
            tensors[key] = timm.models.adapt_input_conv(cfg.in_chans, tensors[key])
    _load_state(net.encoder, tensors, f"--imagenet-weights {path} (ImageNet encoder)", strict=True)
    return net


def imagenet_weights_reachable(encoder: str) -> bool:
    """Whether timm's ImageNet weights for ``encoder`` can be had without waiting on network retries:
    already in the Hugging Face cache, or the Hub's host resolves (and offline mode is off)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import try_to_load_from_cache

    pcfg = timm.models.get_pretrained_cfg(encoder)
    repo = pcfg.hf_hub_id if pcfg else None
    if repo is None:
        return False
    repo, _, revision = repo.partition("@")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(repo, name, revision=revision or None), str):
            return True
    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def _imagenet_from_timm(cfg: UNetConfig) -> UNet:
    try:
        return UNet(cfg.encoder, cfg.in_chans, cfg.out_chans, cfg.decoder_channels, cfg.encoder_kwargs, pretrained_encoder=True)
    except ValueError:
        raise  # unknown encoder: UNet's own message says so
    except Exception as err:  # network / cache failures come in many types (OSError, RuntimeError, HTTP errors)
        pcfg = timm.models.get_pretrained_cfg(cfg.encoder)
        repo = (pcfg.hf_hub_id if pcfg else None) or f"the timm weights of {cfg.encoder}"
        raise MissingFileError(
            f"--init imagenet: could not load timm's ImageNet weights for {cfg.encoder!r} ({type(err).__name__}). "
            f"Offline they come only from the Hugging Face cache ({constants.HF_HUB_CACHE}): on a connected machine run "
            f"`hf download {repo}`, then set HF_HUB_OFFLINE=1 (and HF_HOME if the cache moved); "
            f"or pass --imagenet-weights FILE.safetensors with timm's key names"
        ) from err


def _check_compatible(pre: UNetConfig, cfg: UNetConfig, spec: str) -> None:
    def describe(c: UNetConfig) -> str:
        return f"{c.encoder!r} with in_chans={c.in_chans}" + (f" and {c.encoder_kwargs}" if c.encoder_kwargs else "")

    if (pre.encoder, pre.in_chans, pre.encoder_kwargs) != (cfg.encoder, cfg.in_chans, cfg.encoder_kwargs):
        raise ConfigError(f"--init {spec}: its encoder is {describe(pre)}, but this run needs {describe(cfg)}")


def load_init(spec: str, unet_config: UNetConfig | dict, *, imagenet_weights: str | None = None) -> UNet:
    """The fine-tuning initialisation ``spec``: ``random``, ``imagenet`` or a pretrained folder / Hub id.

    The task decides ``out_chans``: a pretrained net keeps its encoder, its decoder when its method
    trained one (the pretrained decoder channels then win), and its head only when that already has
    the requested shape; everything else is freshly initialised (seed first). ``net.pretrained_config``
    is the pretrained config.json dict, or None for random / imagenet.
    """
    cfg = UNetConfig.from_dict(unet_config) if isinstance(unet_config, dict) else unet_config
    if imagenet_weights is not None and spec != "imagenet":
        raise ConfigError(f"--imagenet-weights only applies to --init imagenet, not --init {spec}")
    if spec in ("random", "imagenet"):
        if spec == "random":
            net = UNet.from_config(cfg)
        else:
            net = _imagenet_from_file(cfg, imagenet_weights) if imagenet_weights else _imagenet_from_timm(cfg)
        net.pretrained_config = None
        return net
    with torch.random.fork_rng(devices=[]):
        # loading must not consume the caller's RNG: the fresh parts below then equal random init's
        pre = from_pretrained(spec)
    _check_compatible(pre.config, cfg, spec)
    trains_decoder = pre.pretrained_config["tower_bench"].get("trains_decoder", False)
    if trains_decoder and tuple(pre.config.decoder_channels) != tuple(cfg.decoder_channels):
        warnings.warn(
            f"--init {spec}: keeping its pretrained decoder with channels {pre.config.decoder_channels} "
            f"instead of the requested {cfg.decoder_channels}"
        )
        cfg = UNetConfig.from_dict({**cfg.to_dict(), "decoder_channels": pre.config.decoder_channels})
    net = UNet.from_config(cfg)
    net.encoder.load_state_dict(pre.encoder.state_dict())
    if trains_decoder:
        net.decoder.load_state_dict(pre.decoder.state_dict())
        if net.head.weight.shape == pre.head.weight.shape:
            net.head.load_state_dict(pre.head.state_dict())
    net.pretrained_config = pre.pretrained_config
    return net
