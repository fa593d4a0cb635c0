"""Inventory of every file tower-bench reads that a user or another process provides, with the ways each goes bad.

``test_readers.py`` runs every (reader, corruption) row through the CLI. A new reader adds one ``Reader``
here: how to build a good input folder, the file in it that is read, the command that reads it, what its
error line must say, and its corruptions. Store records are the one reader whose bad files are not an
error: a corrupt record is skipped with a warning and recomputed (``RECORD_CORRUPTIONS``).
"""
from __future__ import annotations

import io
import json
import pickle
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.benchmark.tasks import fixtures

SMOKE = ("--budget", "smoke")
REPO_ID = "someone/tiny"

Damage = Callable[[Path], None]  # damages the file at this path, in a fresh copy of the input folder


@dataclass(frozen=True)
class Corruption:
    name: str
    damage: Damage
    expect: tuple[str, ...] = ()  # fragments the error line names besides the reader's own
    names: str | None = None  # the path (relative to the input folder) the line names, when not the target


@dataclass(frozen=True)
class Reader:
    name: str
    build: Callable[[Path], None]  # writes a good input folder at this path
    target: str  # the file that is read, relative to the input folder
    command: Callable[[Path, Path], list[str]]  # (input folder, results store) -> tower-bench arguments
    expect: tuple[str, ...]  # what every error line of this reader says was expected
    corruptions: tuple[Corruption, ...]


# ------------------------------------------------------------------------ generic damage


def _rm(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write(data: bytes | Callable[[], bytes]) -> Damage:
    return lambda p: p.write_bytes(data() if callable(data) else data)


def _truncate(fraction: float) -> Damage:
    return lambda p: p.write_bytes(p.read_bytes()[: int(p.stat().st_size * fraction)])


def _directory(path: Path) -> None:
    _rm(path)
    path.mkdir()
    (path / "inside.txt").write_text("a folder where a file belongs\n")


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, train_images=np.zeros((2, 8, 8), np.uint8))
    return buf.getvalue()


def safetensors_bytes() -> bytes:
    from safetensors.torch import save

    return save({"w": torch.zeros(2)})


def torch_pickle_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"conv1.0.weight": torch.zeros(4, 3, 3, 3)}, buf)
    return buf.getvalue()


def ppm_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 26, 3), np.uint8), "RGB").save(buf, format="PPM")
    return buf.getvalue()


MISSING = Corruption("missing", _rm)
EMPTY = Corruption("empty", _write(b""))
TRUNCATED = tuple(Corruption(f"truncated-{int(f * 100)}pct", _truncate(f)) for f in (0.1, 0.5, 0.9))
TEXT = Corruption("text", _write(b"this is a text file, not what belongs here\n"))
PICKLE = Corruption("pickle", _write(pickle.dumps({"weights": [0.1, 0.2], "step": 1})))
DIRECTORY = Corruption("directory", _directory)
NOT_UTF8 = Corruption("binary-not-utf8", _write(b"\xff\xfe\x00\x81 binary garbage \x9c"))


def _expecting(corruptions: tuple[Corruption, ...], *fragments: str) -> tuple[Corruption, ...]:
    """The same corruptions, each error line also naming ``fragments``."""
    return tuple(replace(c, expect=c.expect + fragments) for c in corruptions)


def _common(*extra: Corruption, truncated: tuple[Corruption, ...] = TRUNCATED) -> tuple[Corruption, ...]:
    return (EMPTY, *truncated, TEXT, PICKLE, DIRECTORY, *extra)


# ------------------------------------------------------------------------ weights folder (export)


def build_export(folder: Path) -> None:
    """A smoke-budget export: the encoder and decoder ``--budget smoke`` builds (test_resnet)."""
    from zoo import UNet
    from zoo.hub import save_pretrained

    torch.manual_seed(0)
    net = UNet("test_resnet", 3, 3, (32, 32, 16, 16, 8))
    save_pretrained(net, folder, method="tower", trains_decoder=True)


def _edit_tensors(edit: Callable[[dict[str, torch.Tensor]], None]) -> Damage:
    def damage(path: Path) -> None:
        tensors = load_file(str(path))
        edit(tensors)
        save_file(tensors, str(path))
    return damage


def _first_float(tensors: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in tensors.items() if v.is_floating_point() and v.ndim > 1)


def _reshape_first(t: dict[str, torch.Tensor]) -> None:
    t[_first_float(t)] = torch.zeros(1, 1, 1, 1)


def _int_first(t: dict[str, torch.Tensor]) -> None:
    k = _first_float(t)
    t[k] = t[k].to(torch.int32)


def _drop_first(t: dict[str, torch.Tensor]) -> None:
    t.pop(_first_float(t))


def _tensor_damage() -> tuple[Corruption, ...]:
    return _expecting((
        Corruption("missing-key", _edit_tensors(_drop_first), ("missing keys",)),
        Corruption("unexpected-key", _edit_tensors(lambda t: t.__setitem__("extra.weight", torch.zeros(2))),
                   ("unexpected keys: extra.weight",)),
        Corruption("wrong-shape", _edit_tensors(_reshape_first), ("shape mismatches",)),
        Corruption("wrong-dtype", _edit_tensors(_int_first), ("dtype mismatches", "int32")),
    ), "does not match the model")


def publish(folder: Path, store: Path) -> list[str]:
    """The cheapest command that reads every file of a weights folder: a strict load, no network."""
    return ["publish", str(folder), "--repo-id", REPO_ID, "--dry-run"]


def _edit_json(edit: Callable[[dict], object]) -> Damage:
    def damage(path: Path) -> None:
        config = json.loads(path.read_text())
        path.write_text(json.dumps(edit(config)))
    return damage


def _set(section: str, key: str, value) -> Callable[[dict], dict]:
    def edit(config: dict) -> dict:
        config[section][key] = value
        return config
    return edit


def _unet_encoder(value) -> Callable[[dict], dict]:
    def edit(config: dict) -> dict:
        config["tower_bench"]["unet"]["encoder"] = value
        return config
    return edit


NOT_SAFETENSORS = "expected a safetensors file"
WEIGHTS_WRONG_FORMAT = (Corruption("torch-pickle", _write(torch_pickle_bytes), (NOT_SAFETENSORS,)),
                        Corruption("png", _write(png_bytes), (NOT_SAFETENSORS,)))
NOT_IN_FOLDER = _expecting((MISSING, DIRECTORY), "missing or not a file", "expected a weights folder")


def _weights_rows(truncated: tuple[Corruption, ...]) -> tuple[Corruption, ...]:
    return (*_expecting((EMPTY, *truncated, TEXT, PICKLE), NOT_SAFETENSORS), *WEIGHTS_WRONG_FORMAT)


EXPORT_READERS = (
    Reader("encoder-weights", build_export, "model.safetensors", publish, (),
           (*NOT_IN_FOLDER, *_weights_rows(TRUNCATED), *_tensor_damage())),
    Reader("decoder-weights", build_export, "decoder.safetensors", publish, (),
           (*NOT_IN_FOLDER, *_weights_rows(TRUNCATED[:2]), *_tensor_damage()[2:3])),
    Reader("config", build_export, "config.json", publish, ("expected",), (
        MISSING, EMPTY, *TRUNCATED[1:], TEXT, NOT_UTF8, DIRECTORY,
        Corruption("safetensors-bytes", _write(safetensors_bytes)),
        Corruption("json-list", _write(b"[1, 2, 3]")),
        Corruption("no-tower-bench-section", _edit_json(lambda c: {k: v for k, v in c.items() if k != "tower_bench"}),
                   ("'tower_bench'",)),
        Corruption("format-too-new", _edit_json(_set("tower_bench", "format", 99)), ("format 99",)),
        Corruption("unet-not-a-dict", _edit_json(_set("tower_bench", "unet", [1, 2])), ("unet",)),
        Corruption("unknown-encoder", _edit_json(_unet_encoder("no_such_encoder_xyz")), ("no_such_encoder_xyz",)),
        Corruption("encoder-not-a-string", _edit_json(_unet_encoder(5)), ("tower_bench.unet",)),
    )),
    Reader("model-card", build_export, "README.md", publish, ("expected",), (MISSING, NOT_UTF8, DIRECTORY)),
)


# ------------------------------------------------------------------------ --imagenet-weights FILE


def build_imagenet(folder: Path) -> None:
    """timm-named encoder weights of the smoke budget's encoder, as --imagenet-weights reads them."""
    import timm

    folder.mkdir(parents=True)
    save_file(timm.create_model("test_resnet", num_classes=0).state_dict(), str(folder / "imagenet.safetensors"))


def imagenet(folder: Path, store: Path) -> list[str]:
    return ["finetune", *SMOKE, "--task", "synth-fundus", "--init", "imagenet", "--imagenet-weights",
            str(folder / "imagenet.safetensors"), "--store", str(store)]


IMAGENET_READER = Reader(
    "imagenet-weights", build_imagenet, "imagenet.safetensors", imagenet, ("--imagenet-weights",),
    (MISSING, DIRECTORY, *_weights_rows(TRUNCATED[:2]), *_tensor_damage()[1:3]),
)


# ------------------------------------------------------------------------ pretraining run folder (--resume)


def build_pretrain_run(folder: Path) -> None:
    """A finished smoke pretraining run: checkpoint.pt at its last step, metrics.jsonl, export/."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    res = CliRunner().invoke(app, ["pretrain", *SMOKE, "--out", str(folder), "--checkpoint-every", "1"])
    assert res.exit_code == 0, res.output


def resume(folder: Path, store: Path) -> list[str]:
    return ["pretrain", *SMOKE, "--out", str(folder), "--checkpoint-every", "1", "--resume"]


def _torch_save(obj_factory: Callable[[], object]) -> Damage:
    return lambda p: torch.save(obj_factory(), p)


class Arbitrary:
    """Any class: unpickling it would import and run this module's code."""


def _checkpoint_edit(edit: Callable[[dict], None]) -> Damage:
    def damage(path: Path) -> None:
        ckpt = torch.load(path, weights_only=True)
        edit(ckpt)
        torch.save(ckpt, path)
    return damage


def _shrink_first_weight(ckpt: dict) -> None:
    name = next(k for k, v in ckpt["method"].items() if v.ndim > 1)
    ckpt["method"][name] = ckpt["method"][name][:1]


def _lines(*rows: str) -> Damage:
    return lambda p: p.write_text("".join(r + "\n" for r in rows))


PRETRAIN_READERS = (
    Reader("checkpoint", build_pretrain_run, "checkpoint.pt", resume, ("checkpoint",), (
        EMPTY, *TRUNCATED, TEXT, DIRECTORY, NOT_UTF8,
        Corruption("pickled-object", _torch_save(lambda: {"step": 1, "config_hash": "x", "method": {}, "rng": [],
                                                          "payload": Arbitrary()}), ("refused to resume",)),
        Corruption("safetensors-bytes", _write(safetensors_bytes)),
        Corruption("not-a-dict", _torch_save(lambda: [torch.zeros(2)]), ("expected keys",)),
        Corruption("wrong-keys", _torch_save(lambda: {"weights": torch.zeros(2)}), ("expected keys",)),
        Corruption("other-config", _checkpoint_edit(lambda c: c.__setitem__("config_hash", "0123abcd")),
                   ("belongs to config 0123abcd",)),
        Corruption("wrong-shape-weights", _checkpoint_edit(_shrink_first_weight), ("does not fit this run",)),
        Corruption("no-optimizer-state", _checkpoint_edit(lambda c: c.pop("optimizer")), ("does not fit this run",)),
    )),
    Reader("metrics", build_pretrain_run, "metrics.jsonl", resume, ("expected one JSON object per line",), (
        DIRECTORY, NOT_UTF8,
        Corruption("garbage-line-inside", _lines('{"step": 1, "loss": 1.0}', "not json", '{"step": 2, "loss": 1.0}'),
                   ("line 2",)),
        Corruption("row-not-an-object", _lines("[1, 2]", '{"step": 2, "loss": 1.0}'), ("line 1",)),
        Corruption("row-without-step", _lines('{"loss": 1.0}', '{"step": 2, "loss": 1.0}'), ("line 1", "step")),
        Corruption("step-not-a-number", _lines('{"step": "one", "loss": 1.0}', '{"step": 2, "loss": 1.0}'),
                   ("line 1", "step")),
    )),
)


# ------------------------------------------------------------------------ images, through the task loaders


def finetune(task: str, sub: str = "") -> Callable[[Path, Path], list[str]]:
    def command(folder: Path, store: Path) -> list[str]:
        return ["finetune", *SMOKE, "--task", task, "--data-root", str(folder / sub), "--store", str(store)]
    return command


IMAGE_WRONG_FORMAT = (Corruption("npz", _write(npz_bytes)),
                      Corruption("ppm-truncated", _write(lambda: ppm_bytes()[:500])))
UNREADABLE_IMAGE = ("unreadable or truncated image",)


def _resize_image(size: tuple[int, int]) -> Damage:
    def damage(path: Path) -> None:
        with Image.open(path) as img:
            img.load()
            small = img.resize(size)
        small.save(path, format=img.format)
    return damage


def build_drive(folder: Path) -> None:
    fixtures.write_drive(folder)


def _one_bit(path: Path) -> None:
    """Montgomery's masks as 1-bit PNGs (mode "1"), as some exports write them: still readable."""
    with Image.open(path) as img:
        img.convert("1").save(path)


def build_montgomery(folder: Path) -> None:
    fixtures.write_montgomery(folder)
    for p in sorted((folder / "ManualMask" / "leftMask").glob("*.png")):
        _one_bit(p)


def build_shenzhen(folder: Path) -> None:
    fixtures.write_shenzhen(folder)


def build_chexpert(folder: Path) -> None:
    fixtures.write_chexpert(folder / "CheXpert-v1.0-small")


def build_medmnist(folder: Path) -> None:
    fixtures.write_medmnist(folder, "breastmnist", size=64)


def build_lits(folder: Path) -> None:
    fixtures.write_lits(folder, n=4)


def _cell(row: int, column: str, value) -> Damage:
    """Set one cell of a CSV (data row ``row``, 0-based: file line row + 2)."""
    def damage(path: Path) -> None:
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df.loc[row, column] = str(value)
        df.to_csv(path, index=False)
    return damage


def _npz(**arrays: np.ndarray) -> Damage:
    def damage(path: Path) -> None:
        with np.load(path) as npz:
            good = {k: npz[k] for k in npz.files}
        np.savez(path, **{**good, **arrays})
    return damage


def _object_npz(path: Path) -> None:
    np.savez(path, train_images=np.array([{"a": 1}], dtype=object))


def _nifti(make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Damage:
    def damage(path: Path) -> None:
        import nibabel as nib

        data = make()
        nib.save(nib.Nifti1Image(data, np.diag([-0.8, -0.8, 2.5, 1.0])), path)
    return damage


def _ct_with_nan() -> np.ndarray:
    ct = fixtures.lits_volume(0)[0].astype(np.float32)
    ct[5, 5, 5] = np.nan
    return ct


def _seg_labels_out_of_range() -> np.ndarray:
    seg = fixtures.lits_volume(0)[1]
    seg[0, 0, 0] = 7
    return seg


IMAGE_READERS = (
    Reader("drive-image-tif", build_drive, "training/images/22_training.tif", finetune("drive"), UNREADABLE_IMAGE,
           (*_common(*IMAGE_WRONG_FORMAT),)),
    Reader("drive-image-missing", build_drive, "training/images/22_training.tif", finetune("drive"),
           ("do not match",), (Corruption("missing", _rm, ("extra ids ['22']",), names="training/1st_manual"),)),
    Reader("drive-vessel-gif", build_drive, "training/1st_manual/23_manual1.gif", finetune("drive"), UNREADABLE_IMAGE,
           (EMPTY, *TRUNCATED[:2], TEXT, Corruption("png-truncated", _write(lambda: png_bytes()[:40])))),
    Reader("drive-fov-gif", build_drive, "test/mask/02_test_mask.gif", finetune("drive"), UNREADABLE_IMAGE,
           (EMPTY, TRUNCATED[1], DIRECTORY)),
    Reader("drive-mask-shape", build_drive, "training/1st_manual/21_manual1.gif", finetune("drive"),
           ("differs from image",), (Corruption("wrong-shape", _resize_image((13, 12))),)),
    Reader("montgomery-png-16bit", build_montgomery, "CXR_png/MCUCXR_0003_0.png", finetune("montgomery"),
           UNREADABLE_IMAGE, (EMPTY, TRUNCATED[1], TEXT)),
    Reader("montgomery-mask-1bit", build_montgomery, "ManualMask/leftMask/MCUCXR_0002_1.png", finetune("montgomery"),
           UNREADABLE_IMAGE, (TRUNCATED[1], PICKLE, DIRECTORY)),
    Reader("shenzhen-png", build_shenzhen, "CXR_png/CHNCXR_0004_1.png", finetune("shenzhen"), UNREADABLE_IMAGE,
           (EMPTY, TRUNCATED[1], TEXT)),
    Reader("chexpert-jpg", build_chexpert, "CheXpert-v1.0-small/valid/patient64542/study1/view1_frontal.jpg",
           finetune("chexpert", "CheXpert-v1.0-small"), UNREADABLE_IMAGE, (TRUNCATED[0], TEXT, EMPTY)),
    Reader("chexpert-csv", build_chexpert, "CheXpert-v1.0-small/train.csv", finetune("chexpert", "CheXpert-v1.0-small"),
           (), (
               MISSING, EMPTY, NOT_UTF8, DIRECTORY, Corruption("npz", _write(npz_bytes)),
               Corruption("no-path-column", lambda p: p.write_text(p.read_text().replace("Path,", "File,", 1)),
                          ("lacks columns ['Path']",)),
               Corruption("label-out-of-range", _cell(2, "Edema", 5), ("line 4", "Edema", "5")),
               Corruption("label-not-a-number", _cell(1, "Edema", "yes"), ("line 3", "Edema", "yes")),
               Corruption("image-listed-but-absent", _cell(0, "Path", "CheXpert-v1.0-small/train/nobody.jpg"),
                          ("file not found",), names="CheXpert-v1.0-small/train/nobody.jpg"),
           )),
    Reader("medmnist-npz", build_medmnist, "breastmnist_64.npz", finetune("breastmnist"), ("npz",), (
        MISSING, *_common(Corruption("png", _write(png_bytes)), Corruption("object-array", _object_npz)),
        Corruption("wrong-keys", lambda p: np.savez(p, images=np.zeros((4, 64, 64), np.uint8)),
                   ("expected ['train_images', 'train_labels']",)),
        Corruption("wrong-dtype", _npz(train_images=np.zeros((12, 64, 64), np.float32)), ("expected uint8",)),
        Corruption("wrong-channels", _npz(train_images=np.zeros((12, 64, 64, 3), np.uint8)), ("(N, H, W)",)),
        Corruption("labels-out-of-range", _npz(train_labels=np.full((12, 1), 9, np.uint8)), ("[0, 2)",)),
        Corruption("labels-nan", _npz(train_labels=np.full((12, 1), np.nan, np.float32)), ("train_labels",)),
    )),
    Reader("lits-nifti", build_lits, "Training Batch 1/volume-0.nii.gz", finetune("lits"), (), (
        *_expecting((EMPTY, *TRUNCATED[:2], TEXT, DIRECTORY), "unreadable NIfTI"),
        Corruption("ct-nan", _nifti(_ct_with_nan), ("NaN or infinite voxels",)),
    )),
    Reader("lits-segmentation", build_lits, "Training Batch 1/segmentation-1.nii", finetune("lits"), (), (
        replace(TRUNCATED[1], expect=("unreadable NIfTI",)),
        Corruption("wrong-shape", _nifti(lambda: fixtures.lits_volume(1, shape=(20, 18, 10))[1]), ("shape",)),
        Corruption("labels-out-of-range", _nifti(_seg_labels_out_of_range),
                   ("labels span [0, 7]", "expected 0 background")),
    )),
    # Manifest CSVs (issue 16 names them; they do not exist yet): add their Reader here, e.g.
    # Reader("manifest-csv", build_manifest, "manifest.csv", finetune("<task>"), ("manifest",), (MISSING, EMPTY, ...)),
)

READERS = EXPORT_READERS + (IMAGENET_READER,) + PRETRAIN_READERS + IMAGE_READERS


# ------------------------------------------------------------------------ store records: skipped, recomputed


def _record_json(edit: Callable[[dict], object]) -> Damage:
    def damage(path: Path) -> None:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return damage


RECORD_CORRUPTIONS = (
    EMPTY, TRUNCATED[1], TEXT, NOT_UTF8, DIRECTORY,
    Corruption("json-list", _write(b"[1, 2]")),
    Corruption("missing-value", _record_json(lambda r: {k: v for k, v in r.items() if k != "value"})),
    Corruption("key-not-its-file-name", _record_json(lambda r: {**r, "seed": r["seed"] + 100})),
    Corruption("value-nan", lambda p: p.write_text(p.read_text().replace('"value": 50.0', '"value": NaN'))),
)
