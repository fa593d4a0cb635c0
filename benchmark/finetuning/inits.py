
"""The fine-tuning initialisations, resolved once: ``random | random-aa | imagenet | <export folder> | <Hub id>``.

It lives in benchmark, not zoo, because its errors speak the command line's language (``--init``,
``--imagenet-weights``); the model library below knows nothing of the CLI.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import timm
import torch

from benchmark.core.names import AA_CONTROL, INIT_FORMS, looks_like_hub_id
from zoo import UNet, UNetConfig
from zoo.errors import BadFileError, ConfigError, MissingFileError, UnknownNameError
from zoo.export import drop_classifier, load_state, load_tensors

AA_SEED_OFFSET = 1_000_003  # the A/A control's seed stream (names.AA_CONTROL)


def init_seed(init: str, seed: int) -> int:
    """The seed the fresh weights of ``init`` are drawn with under fine-tuning seed ``seed``."""
    return seed + AA_SEED_OFFSET if init == AA_CONTROL else seed


def _imagenet_from_file(cfg: UNetConfig, path: str | Path) -> UNet:
    """A UNet whose encoder holds timm ImageNet weights from a safetensors file with timm's key names."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise BadFileError(f"--imagenet-weights {path}: expected a .safetensors file (pickle files are refused)")
    if not path.is_file():
        raise MissingFileError(f"--imagenet-weights {path}: " + ("a folder; expected a file" if path.is_dir()
                                                                   else "no such file"))
    net = UNet.from_config(cfg)
    tensors = load_tensors(path, "--imagenet-weights ")
    pcfg = timm.models.get_pretrained_cfg(cfg.encoder)
    tensors = drop_classifier(tensors, pcfg.classifier if pcfg else None)
    first_conv = (pcfg.first_conv if pcfg else None) or ()
    for conv in (first_conv,) if isinstance(first_conv, str) else first_conv:
        key = f"{conv}.weight"
        if key in tensors and tensors[key].ndim == 4 and tensors[key].shape[1] != cfg.in_chans:
            tensors[key] = timm.models.adapt_input_conv(cfg.in_chans, tensors[key])
    load_state(net.encoder, tensors, f"--imagenet-weights {path} (ImageNet encoder)", strict=True)
    return net


def hub_reachable() -> bool:
    """Whether the Hugging Face Hub can answer without network retries: offline mode is off and its host resolves."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def imagenet_weights_reachable(encoder: str) -> bool:
    """Whether timm's ImageNet weights for ``encoder`` can be had without waiting on network retries:
    already in the Hugging Face cache, or the Hub reachable."""
    from huggingface_hub import try_to_load_from_cache

    pcfg = timm.models.get_pretrained_cfg(encoder)
    repo = pcfg.hf_hub_id if pcfg else None
    if repo is None:
        return False
    repo, _, revision = repo.partition("@")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(repo, name, revision=revision or None), str):
            return True
    return hub_reachable()


def check_hub_id(spec: str) -> None:
    """An ``--init`` that is not a folder must be a Hub id that is cached or reachable: refused at once otherwise
    (``huggingface_hub`` would retry for half a minute and then blame its cache)."""
    from huggingface_hub import constants, try_to_load_from_cache

    from zoo.hub import CONFIG_FILE

    if Path(spec).exists():
        return  # a folder, or a file where a folder belongs: from_pretrained says what it expected
    if not looks_like_hub_id(spec):
        raise UnknownNameError(f"--init {spec!r}: no such folder, and not a Hub id (org/name); --init takes {INIT_FORMS}")
    if isinstance(try_to_load_from_cache(spec, CONFIG_FILE), str) or hub_reachable():
        return
    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub is unreachable"
    raise MissingFileError(f"--init {spec}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}; "
                           f"--init takes {INIT_FORMS}")


def _imagenet_from_timm(cfg: UNetConfig) -> UNet:
    from huggingface_hub import constants

    try:
        return UNet(cfg.encoder, cfg.in_chans, cfg.out_chans, cfg.decoder_channels, cfg.encoder_kwargs,
                    pretrained_encoder=True)
    except ValueError:
        raise  # unknown encoder: UNet's own message says so
    except Exception as err:  # network / cache failures come in many types (OSError, RuntimeError, HTTP errors)
        pcfg = timm.models.get_pretrained_cfg(cfg.encoder)
        repo = (pcfg.hf_hub_id if pcfg else None) or f"the timm weights of {cfg.encoder}"
        raise MissingFileError(
            f"--init imagenet: could not load timm's ImageNet weights for {cfg.encoder!r} ({type(err).__name__}). "
            f"Offline they come only from the Hugging Face cache ({constants.HF_HUB_CACHE}): on a connected machine "
            f"run `hf download {repo}`, then set HF_HUB_OFFLINE=1 (and HF_HOME if the cache moved); "
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
    the requested shape; everything else is freshly initialised (seed first). ``net.export_info``
    is the pretrained folder's ``ExportInfo``, or None for random / imagenet.
    """
    cfg = UNetConfig.from_dict(unet_config) if isinstance(unet_config, dict) else unet_config
    if imagenet_weights is not None and spec != "imagenet":
        raise ConfigError(f"--imagenet-weights only applies to --init imagenet, not --init {spec}")
    if spec in ("random", AA_CONTROL):
        return UNet.from_config(cfg)
    if spec == "imagenet":
        return _imagenet_from_file(cfg, imagenet_weights) if imagenet_weights else _imagenet_from_timm(cfg)
    check_hub_id(spec)
    with torch.random.fork_rng(devices=[]):
        # loading must not consume the caller's RNG: the fresh parts below then equal random init's
        pre = UNet.from_pretrained(spec)
    _check_compatible(pre.config, cfg, spec)
    info = pre.export_info
    if info.trains_decoder and tuple(pre.config.decoder_channels) != tuple(cfg.decoder_channels):
        warnings.warn(
            f"--init {spec}: keeping its pretrained decoder with channels {pre.config.decoder_channels} "
            f"instead of the requested {cfg.decoder_channels}"
        )
        cfg = UNetConfig.from_dict({**cfg.to_dict(), "decoder_channels": pre.config.decoder_channels})
    net = UNet.from_config(cfg)
    net.encoder.load_state_dict(pre.encoder.state_dict())
    if info.trains_decoder:
        net.decoder.load_state_dict(pre.decoder.state_dict())
        if net.head.weight.shape == pre.head.weight.shape:
            net.head.load_state_dict(pre.head.state_dict())
    net.export_info = info  # the fresh net carries what it was initialised from
    return net
