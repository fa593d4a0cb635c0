"""Weights in and out on huggingface_hub's ``ModelHubMixin``: ``UNet.from_pretrained(id_or_dir, ...)``,
``net.save_pretrained(dir)``, ``net.push_to_hub(repo_id)`` over the folder layout of ``zoo.export``.

A Hub id is read through the Hugging Face cache, so it loads offline once downloaded. Loading is strict
by default and reads safetensors only.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from huggingface_hub import ModelHubMixin

from .card import REPO_PLACEHOLDER, model_card
from .errors import BadFileError, MissingFileError, NotAFolderError
from .export import (
    CARD_FILE,
    CONFIG_FILE,
    DECODER_FILE,
    DECODER_PREFIXES,
    ENCODER_FILE,
    FILES,
    PICKLE_SUFFIXES,
    ExportInfo,
    config_json,
    drop_classifier,
    load_state,
    load_tensors,
    read_config,
    save_tensors,
    timm_config,
)
from .io import atomic_write_text

__all__ = ["CARD_FILE", "CONFIG_FILE", "DECODER_FILE", "ENCODER_FILE", "FILES", "REPO_PLACEHOLDER", "ExportInfo",
           "HubMixin", "card_for_repo", "load_config", "push_to_hub", "save_pretrained",
           "validate_folder"]


def _strip_prefix(name: str) -> str:
    for prefix in ("hf-hub:", "local-dir:"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class _Source:
    """A local folder or a Hub repo; ``file(name)`` gives a local path to one of its files or None.

    ``download`` holds the Hub arguments (``revision``, ``cache_dir``, ``force_download``, ``local_files_only``,
    ``token``), passed to ``hf_hub_download`` as they are; a local folder ignores them."""

    def __init__(self, name_or_path: str | Path, **download: Any):
        self.name = _strip_prefix(str(name_or_path))
        self.download = download
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
        if self.folder:
            return str(self.folder)
        revision = self.download.get("revision")
        return f"Hub repo {self.name!r}" + (f"@{revision}" if revision else "")

    def file(self, filename: str) -> Path | None:
        if self.folder is not None:
            path = self.folder / filename
            return path if path.is_file() else None
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            return Path(hf_hub_download(self.name, filename, **self.download))
        except LocalEntryNotFoundError as err:  # offline, or the Hub unreachable, and not in the cache
            cache = self.download.get("cache_dir") or constants.HF_HUB_CACHE
            if self.download.get("local_files_only"):
                why = "local_files_only=True"
            elif constants.is_offline_mode():
                why = "the machine is offline (HF_HUB_OFFLINE=1)"
            else:
                why = "the Hub is unreachable"
            raise MissingFileError(
                f"{self.name!r} is not a local folder, and {filename} of Hub repo {self.name!r} is not in the "
                f"Hugging Face cache ({cache}) while {why}: download the repo on a connected machine "
                f"(`hf download {self.name}`) into that cache, or pass a local folder"
            ) from err
        except EntryNotFoundError:
            return None
        except RevisionNotFoundError as err:
            raise MissingFileError(f"Hub repo {self.name!r} has no revision {self.download.get('revision')!r}") from err
        except RepositoryNotFoundError as err:
            raise MissingFileError(
                f"{self.name!r} is neither a local folder nor a Hub repo you can access "
                "(private? pass token= / `hf auth login`)"
            ) from err
        except HFValidationError as err:
            raise MissingFileError(f"{self.name!r} is neither a local folder nor a valid Hub repo id "
                                    "(org/name)") from err

    def require(self, filename: str) -> Path:
        path = self.file(filename)
        if path is not None:
            return path
        pickles = sorted(p.name for p in self.folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if self.folder else []
        if pickles:
            raise BadFileError(
                f"{self} has {', '.join(pickles)} but no {filename}: tower-bench loads safetensors only "
                f"(pickle files can run code when loaded); save the weights with UNet.save_pretrained"
            )
        only = " (tower-bench reads safetensors only)" if filename.endswith(".safetensors") else ""
        raise MissingFileError(f"{self} has no {filename}{only}")


def load_config(name_or_path: str | Path, *, revision: str | None = None,
                allow_encoder_only: bool = False) -> ExportInfo:
    """The export info of a local folder or Hub repo (the Hub through its cache, so offline works)."""
    return read_config(_Source(name_or_path, revision=revision).require(CONFIG_FILE), allow_encoder_only)[1]


class HubMixin(ModelHubMixin):
    """huggingface_hub's ``ModelHubMixin`` for a U-Net-shaped module: ``from_pretrained`` takes what every Hub
    model takes (``revision``, ``token``, ``cache_dir``, ``local_files_only``, ``force_download``,
    ``map_location``), ``save_pretrained(dir, push_to_hub=True, repo_id=...)`` and ``push_to_hub`` upload.

    The class provides ``from_config(unet_dict)``, ``config`` (with ``to_dict()``), ``encoder``, ``decoder``
    and ``head``. ``export_info`` is the ``ExportInfo`` the net was loaded with (None: not loaded); the name
    keeps it apart from timm's ``pretrained_cfg`` (the encoder's data config, in ``config.json``).
    """

    export_info: ExportInfo | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None, **model_kwargs: Any):
        """Rebuild the exact net of a folder or Hub repo and load its weights (strictly by default).

        The mixin's own ``from_pretrained`` turns ``config.json``'s top-level keys into ``__init__`` arguments;
        here the architecture lives in its ``tower_bench`` section (the top level is timm's), so this goes to
        ``_from_pretrained`` with the same arguments and nothing injected."""
        return cls._from_pretrained(model_id=str(pretrained_model_name_or_path), revision=revision,
                                    cache_dir=cache_dir, force_download=force_download,
                                    local_files_only=local_files_only, token=token, **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, strict: bool = True, allow_encoder_only: bool = False,
                         map_location: str | torch.device = "cpu", **download: Any):
        """``strict``: every key present and shaped alike; ``allow_encoder_only`` also accepts a plain timm
        folder/repo (its encoder, a fresh decoder); ``map_location``: the device the net is returned on;
        ``download``: the Hub arguments ``from_pretrained`` names, for ``hf_hub_download``."""
        source = _Source(model_id, **download)
        config_file = source.require(CONFIG_FILE)
        config, info = read_config(config_file, allow_encoder_only)
        try:
            net = cls.from_config(info.unet)
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            raise BadFileError(f"{config_file}: 'tower_bench.unet' does not describe a U-Net this tower-bench builds "
                             f"({type(err).__name__}: {err}); expected the UNetConfig save_pretrained writes") from None
        encoder_file = source.require(ENCODER_FILE)
        encoder_state = load_tensors(encoder_file)
        if info.encoder_only:
            encoder_state = drop_classifier(encoder_state, (config.get("pretrained_cfg") or {}).get("classifier"))
        load_state(net.encoder, encoder_state, f"{encoder_file} (encoder)", strict)
        if not info.encoder_only:
            decoder_file = source.file(DECODER_FILE)
            if decoder_file is None:
                if strict:
                    raise MissingFileError(f"{source} has no {DECODER_FILE} "
                                            "(strict=False keeps a fresh decoder and head)")
                warnings.warn(f"{source} has no {DECODER_FILE}: decoder and head stay freshly initialised")
            else:
                load_state(net, load_tensors(decoder_file), f"{decoder_file} (decoder + head)", strict,
                           DECODER_PREFIXES)
        net.export_info = info
        return net.to(map_location)

    def save_pretrained(self, save_directory: str | Path, *, method: str | None = None, trains_decoder: bool = False,
                        pretrain: dict | None = None, results: list[dict] | None = None, push_to_hub: bool = False,
                        repo_id: str | None = None, **push_to_hub_kwargs: Any) -> Path:
        """Write the four files of the layout (each atomically) and return the folder (see ``ExportInfo``);
        ``push_to_hub=True`` then uploads it to ``repo_id`` (default: the folder's name), as the mixin does."""
        save_dir = Path(save_directory)
        info = ExportInfo.create(self.config.to_dict(), method=method, trains_decoder=trains_decoder,
                                 pretrain=pretrain, results=results)
        state = self.state_dict()
        save_tensors(save_dir / ENCODER_FILE, self.encoder.state_dict())
        save_tensors(save_dir / DECODER_FILE, {k: v for k, v in state.items() if k.startswith(DECODER_PREFIXES)})
        trained_at = ((pretrain or {}).get("config") or {}).get("image_size")
        atomic_write_text(save_dir / CONFIG_FILE, config_json(timm_config(self, trained_at, method), info))
        atomic_write_text(save_dir / CARD_FILE, model_card(info))
        if push_to_hub:
            _push_folder(save_dir, repo_id or save_dir.name, **push_to_hub_kwargs)
        return save_dir

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, revision: str | None = None,
                    commit_message: str = "Upload tower-bench weights", token: str | None = None,
                    **save_kwargs: Any) -> str:
        """Save to a temporary folder (``save_kwargs`` as for ``save_pretrained``) and upload exactly that; returns
        the commit URL."""
        with tempfile.TemporaryDirectory(prefix="tower-bench-save-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "saved", **save_kwargs)
            return _push_folder(folder, repo_id, private=private, revision=revision, commit_message=commit_message,
                                token=token)


def save_pretrained(net: HubMixin, save_dir: str | Path, **kwargs: Any) -> Path:
    """``net.save_pretrained`` as a function."""
    return net.save_pretrained(save_dir, **kwargs)


# ---------------------------------------------------------------------------------------- pushing


def validate_folder(save_dir: str | Path) -> ExportInfo:
    """Check a folder is complete before it is published; returns its export info."""
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        raise MissingFileError(f"no folder {save_dir} to publish")
    missing = [str(save_dir / f) for f in FILES if not (save_dir / f).is_file()]
    if missing:
        raise MissingFileError(
            f"{', '.join(missing)}: missing or not a file; expected a weights folder with {', '.join(FILES)} "
            "(from save_pretrained)"
        )
    card_for_repo(save_dir, REPO_PLACEHOLDER)  # readable, even where publish writes a new one from the results
    return load_config(save_dir)


def card_for_repo(save_dir: str | Path, repo_id: str) -> str:
    """The folder's README.md as uploaded to ``repo_id``: the loading snippets name the repo."""
    path = Path(save_dir) / CARD_FILE
    try:
        return path.read_text().replace(REPO_PLACEHOLDER, repo_id)
    except UnicodeDecodeError as err:
        raise BadFileError(f"{path} is not UTF-8 text ({err}); expected the Markdown model card save_pretrained "
                         "writes") from None


def _stage(save_dir: Path, staging: Path, repo_id: str, info: ExportInfo | None, commands: Sequence[str]) -> None:
    """Hard-link (or copy) the weights into ``staging``; the card names the repo. With ``info`` (e.g. the
    folder's own plus stored results) config.json's ``tower_bench`` section and the card are written from it."""
    for f in (ENCODER_FILE, DECODER_FILE):
        try:
            os.link(save_dir / f, staging / f)
        except OSError:
            shutil.copy2(save_dir / f, staging / f)
    if info is None:
        shutil.copy2(save_dir / CONFIG_FILE, staging / CONFIG_FILE)
        (staging / CARD_FILE).write_text(card_for_repo(save_dir, repo_id))
        return
    config, _ = read_config(save_dir / CONFIG_FILE, allow_encoder_only=False)
    (staging / CONFIG_FILE).write_text(config_json(config, info))
    (staging / CARD_FILE).write_text(model_card(info, repo_id, commands))


def push_to_hub(
    save_dir_or_net: str | Path | HubMixin,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload tower-bench weights",
    token: str | None = None,
    info: ExportInfo | None = None,
    commands: Sequence[str] = (),
    **save_kwargs: Any,
) -> str:
    """Upload a saved folder (or a net, saved first with ``save_kwargs``) to ``repo_id``; returns the commit URL.

    Only the four files of the layout are uploaded, never stray files such as pickles. ``info`` and
    ``commands`` replace the folder's export info and card (``tower-bench publish`` adds stored results).
    """
    if isinstance(save_dir_or_net, HubMixin):
        return save_dir_or_net.push_to_hub(repo_id, private=private, revision=revision, commit_message=commit_message,
                                           token=token, **save_kwargs)
    if save_kwargs:
        raise TypeError(f"push_to_hub: {sorted(save_kwargs)} only apply when pushing a net, not the folder "
                        f"{save_dir_or_net}")
    return _push_folder(Path(save_dir_or_net), repo_id, private=private, revision=revision,
                        commit_message=commit_message, token=token, info=info, commands=commands)


def _push_folder(save_dir: Path, repo_id: str, *, private: bool | None = None, revision: str | None = None,
                 commit_message: str = "Upload tower-bench weights", token: str | None = None,
                 info: ExportInfo | None = None, commands: Sequence[str] = ()) -> str:
    from huggingface_hub import HfApi

    own = validate_folder(save_dir)
    if info is not None and dataclasses.replace(info, results=own.results) != own:
        raise ValueError(f"push_to_hub: the info given for {save_dir} differs from its {CONFIG_FILE} beyond the "
                         "results; expected the folder's own info with results added")
    with tempfile.TemporaryDirectory(prefix="tower-bench-push-") as tmp:
        staging = Path(tmp)
        _stage(save_dir, staging, repo_id, info, commands)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        uploaded = api.upload_folder(repo_id=repo_id, folder_path=staging, commit_message=commit_message,
                                     revision=revision, allow_patterns=list(FILES))
    return str(getattr(uploaded, "commit_url", uploaded))
