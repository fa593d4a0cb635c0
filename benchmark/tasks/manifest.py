"""The user's own data as a task, no code: a CSV manifest or a folder (``folders.py``), given as ``--task PATH``.

CSV: a header with ``image`` and either ``mask`` (segmentation; optional ``fov``) or label columns
(classification: one column = single-label, class names or ids; several columns = multi-label, 0/1),
optional ``split`` (train/val/test on every row). Paths are relative to the CSV. Without a split the
samples are cut 70/10/20 with ``--split-seed`` (stratified for single-label), so every run and machine
gets the same test set.

Images: anything Pillow reads, resized to ``image_size`` squared (bilinear, antialiased; masks nearest);
grey unless some image has colour. Masks: 0/255, 0/1 or class ids (palette indices count as ids).
Segmentation keeps its structures: its own size is the first image's longer side (at most 512), and a budget
that asks for less (64 px) gets native-resolution patches of the images read at that size, as DRIVE does
(``patches.PatchedTask``); the test split stays the full images. Without FOV masks, patches are centred
anywhere and Dice counts every pixel.

The task's name is the manifest's name plus a content hash (the CSV, every listed file's bytes and the
options that change the data), so run folders, records and boards name the data, not where it lies,
and changed files get a new name. A task made in this process is remembered by name (``registry``);
another process rebuilds it from ``data_root`` (the manifest path) and checks the name.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from benchmark.tasks.base import SPLITS, DataError, Kind, Split
from benchmark.tasks.common import SPLIT_SEED, fixed_split, parallel_map, stratified_split, to_nchw
from benchmark.tasks.patches import PatchedTask

FRACTIONS = dict(zip(SPLITS, (0.7, 0.1, 0.2)))
MAX_INFERRED_CLASSES = 64  # more distinct mask values than this are grey levels, not classes (pass --num-classes)
MAX_DEFAULT_SIZE = 512  # default input side: the first image's longer side, at most this
COLUMNS = ("image", "mask", "fov", "split")


@dataclass(frozen=True)
class Sample:
    """One image and its target, with ``where`` naming it in errors (``data.csv row 3`` or a file)."""

    image: Path
    where: str
    mask: Path | None = None
    fov: Path | None = None
    label: str | tuple[str, ...] | None = None  # a class name/id, or one 0/1 per label column
    split: str | None = None


@dataclass(frozen=True)
class OwnOptions:
    """What the user sets on the command line for own data; all but ``image_size`` change the name."""

    modality: str = "generic"
    num_classes: int | None = None
    split_seed: int = SPLIT_SEED
    image_size: int | None = None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-.") or "data"


def check_modality(modality: str) -> None:
    from tower.proxy import MODALITY_MASKS

    if modality not in MODALITY_MASKS:
        raise DataError(f"unknown --modality {modality!r}; known: {', '.join(MODALITY_MASKS)}")


class OwnTask(PatchedTask):
    """Base of the class ``make_class`` builds per manifest; channels and mask classes come from the data.
    Segmentation classes support patches (``full_size``: the manifest's own size); classification does not."""

    samples: ClassVar[tuple[Sample, ...]]
    classes: ClassVar[tuple[str, ...]]  # classification: label index -> class name
    options: ClassVar[OwnOptions]
    manifest: ClassVar[Path]
    source = "your own files"

    def __init__(self, data_root=None, image_size=None, seed: int = 0, patches: bool = False):
        super().__init__(self.manifest, image_size, seed, patches)  # the manifest is the data, whatever --data-root says

    @property
    def input_note(self) -> str:
        if self.patches:
            return self.patch_note(f"the full test images at {self.full_size} px")
        return super().input_note

    @property
    def in_chans(self) -> int:  # type: ignore[override]
        return int(self._decoded[0].images.shape[1])

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.classes) if self.kind != "segmentation" else self._decoded[1]

    def _load_full(self, split: str) -> Split:
        idx = [i for i, s in enumerate(self._samples) if s.split == split]
        if not idx:
            raise DataError(f"{self.manifest}: the {split} split is empty; expected at least one sample in each of "
                            f"train, val, test (give more samples, or a split column / folder with all three)")
        return self._decoded[0].subset(torch.tensor(idx))

    @cached_property
    def _samples(self) -> list[Sample]:
        return assign_splits(list(self.samples), self.kind, self.options.split_seed)

    @cached_property
    def _decoded(self) -> tuple[Split, int]:
        """(every sample decoded once in manifest order, segmentation classes)."""
        samples = self._samples
        size = self.read_size
        images = parallel_map(lambda s: decode(s.image, s.where, "RGB", size), samples)
        grey = all(np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2]) for x in images)
        x = to_nchw([a[..., 0] for a in images] if grey else images)
        base = self.manifest if self.manifest.is_dir() else self.manifest.parent
        ids = [str(s.image.relative_to(base)) if s.image.is_relative_to(base) else s.image.name for s in samples]
        if self.kind != "segmentation":
            return Split(x, self._targets(samples), ids=ids), 0
        for s in samples:
            check_same_size(s)
        masks = parallel_map(lambda s: decode(s.mask, s.where, None, size), samples)
        targets, classes = mask_classes(masks, samples, self.options.num_classes)
        valid = None
        if any(s.fov is not None for s in samples):
            valid = torch.from_numpy(np.stack([fov_mask(s, size) for s in samples]))
        return Split(x, torch.from_numpy(targets), valid, ids), classes

    def _targets(self, samples: list[Sample]) -> torch.Tensor:
        if self.kind == "multilabel":
            return torch.tensor([[float(v) for v in s.label] for s in samples], dtype=torch.float32)
        index = {c: i for i, c in enumerate(self.classes)}
        return torch.tensor([index[s.label] for s in samples], dtype=torch.int64)


def decode(path: Path, where: str, mode: str | None, size: int | None) -> np.ndarray:
    """One file as uint8 (H, W[, C]) at ``size`` squared: images bilinear in ``mode``, masks (mode None) nearest.

    A mask keeps its values: indices into a colour palette stay ids (VOC-style masks), 1-bit becomes 0/255,
    anything else (a grey palette too: GIFs store 0/255 masks so) becomes grey levels.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if mode is None and not (img.mode == "L" or img.mode == "P" and not grey_palette(img)):
                img = img.convert("L")
            elif mode is not None and img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.int64)  # 16-bit grey: scaled by its bit depth
                bits = max(8, int(arr.max()).bit_length())
                img = Image.fromarray((np.clip(arr, 0, None) >> (bits - 8)).astype(np.uint8), "L")
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR if mode else Image.NEAREST)
            return np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{where}: {path}: unreadable or truncated image ({err})") from None


def grey_palette(img: Image.Image) -> bool:
    """Whether every palette entry a P image uses is grey."""
    rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


def native_size(path: Path, where: str) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{where}: {path}: unreadable image ({err})") from None


def check_same_size(s: Sample) -> None:
    size = native_size(s.image, s.where)
    for part in (s.mask, s.fov):
        if part is not None and native_size(part, s.where) != size:
            raise DataError(f"{s.where}: {part.name} is {'x'.join(map(str, native_size(part, s.where)))} px but its "
                            f"image {s.image.name} is {'x'.join(map(str, size))}; expected the same size")


def mask_classes(masks: list[np.ndarray], samples: list[Sample], given: int | None) -> tuple[np.ndarray, int]:
    """(class-id targets, number of classes) of all masks, which share one convention.

    With 255 in any mask (and no ``--num-classes``), masks are 0/255 and any other value is wrong;
    otherwise values are class ids below ``given`` (or ``MAX_INFERRED_CLASSES``: more look like grey levels).
    """
    values = sorted(set().union(*(np.unique(m).tolist() for m in masks)))
    binary = given is None and 255 in values
    limit = given or MAX_INFERRED_CLASSES
    expected = ("0/255 like the other masks (or class ids)" if binary else f"class ids < {given} (--num-classes)"
                if given else f"0/255, 0/1 or class ids < {MAX_INFERRED_CLASSES} (or pass --num-classes)")

    def bad_values(m: np.ndarray) -> np.ndarray:
        return np.setdiff1d(m, (0, 255)) if binary else np.unique(m[m >= limit])

    for m, s in zip(masks, samples):
        bad = bad_values(m)
        if len(bad):
            raise DataError(f"{s.where}: mask {s.mask.name} has values {bad[:8].tolist()} that are not classes; "
                            f"expected {expected}")
    stacked = np.stack(masks)
    if binary:
        return (stacked > 0).astype(np.uint8), 2
    return stacked.astype(np.uint8), given or max(2, values[-1] + 1)


def fov_mask(s: Sample, size: int) -> np.ndarray:
    if s.fov is None:
        raise DataError(f"{s.where}: no field-of-view mask, but other samples have one; give one for every sample")
    fov = decode(s.fov, s.where, None, size)
    return fov > (127 if fov.max() > 1 else 0)


def assign_splits(samples: list[Sample], kind: Kind, seed: int) -> list[Sample]:
    """Samples without a split are cut by seed into train and the splits no sample has (70/10/20 weights)."""
    pool = [i for i, s in enumerate(samples) if s.split is None]
    if not pool:
        return samples
    given = {s.split for s in samples if s.split is not None}
    targets = [s for s in SPLITS if s == "train" or s not in given]
    fractions = [FRACTIONS[s] / sum(FRACTIONS[t] for t in targets) for s in targets]
    if len(pool) < len(targets):
        raise DataError(f"{samples[pool[0]].where}: {len(pool)} sample(s) cannot fill the {', '.join(targets)} "
                        f"splits; expected at least {len(targets)}")
    if kind in ("binary", "multiclass"):
        parts = stratified_split([samples[i].label for i in pool], fractions, seed)
    else:
        parts = fixed_split(len(pool), fractions, seed)
    out = list(samples)
    for split, part in zip(targets, parts):
        for j in part:
            out[pool[j]] = replace(samples[pool[j]], split=split)
    return out


def check_duplicates(samples: list[Sample]) -> None:
    seen: dict[Path, str] = {}
    for s in samples:
        key = s.image.resolve()
        if key in seen:
            raise DataError(f"{s.where}: image {s.image.name} is listed again (first at {seen[key]}); "
                            "expected each image once")
        seen[key] = s.where


def content_hash(manifest: Path, samples: list[Sample], options: OwnOptions, extra: bytes = b"") -> str:
    """8 hex digits over the file list, every file's bytes and the options that change the data."""
    h = hashlib.blake2b(digest_size=4)
    h.update(extra)
    h.update(repr((options.modality, options.num_classes, options.split_seed)).encode())
    base = manifest if manifest.is_dir() else manifest.parent
    for s in samples:
        h.update(repr((s.label, s.split)).encode())
        for p in (s.image, s.mask, s.fov):
            if p is not None:
                h.update(str(p.relative_to(base) if p.is_relative_to(base) else p.name).encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()


def classify(samples: list[Sample], label_columns: list[str], num_classes: int | None, where: str
             ) -> tuple[Kind, tuple[str, ...]]:
    """(kind, class names): 0/1 columns are multi-label; one column holds ids (0..K-1) or names.

    Class names are those of the training split when one is given, so a val/test label outside them fails.
    """
    if len(label_columns) > 1:
        for s in samples:
            for col, v in zip(label_columns, s.label):
                if v not in ("0", "1"):
                    raise DataError(f"{s.where}: label {col}={v!r} is outside the classes; expected 0 or 1 in "
                                    f"every label column ({', '.join(label_columns)})")
        return "multilabel", tuple(label_columns)
    if all(re.fullmatch(r"\d+", s.label) for s in samples):
        k = num_classes or max(int(s.label) for s in samples) + 1
        classes = tuple(str(i) for i in range(k))
    else:
        train = [s for s in samples if s.split == "train"] or samples
        classes = tuple(sorted({s.label for s in train}))
        if num_classes is not None and num_classes != len(classes):
            raise DataError(f"{where}: {len(classes)} class names {list(classes)[:10]} but --num-classes "
                            f"{num_classes}")
    for s in samples:
        if s.label not in classes:
            raise DataError(f"{s.where}: label {s.label!r} is outside the classes {list(classes)[:10]}"
                            + (" (those of the training split)" if not s.label.isdigit() else ""))
    if len(classes) < 2:
        raise DataError(f"{where}: only one class {list(classes)}; expected at least two")
    return ("binary" if len(classes) == 2 else "multiclass"), classes


def make_class(manifest: Path, samples: list[Sample], kind: Kind, classes: tuple[str, ...], options: OwnOptions,
               layout: str, extra: bytes = b"") -> type[OwnTask]:
    """The task class of one manifest: name = manifest name + content hash."""
    if not samples:
        raise DataError(f"{manifest}: no samples; expected:\n{layout}")
    check_duplicates(samples)
    check_modality(options.modality)
    name = f"{slug(manifest.stem if manifest.is_file() else manifest.resolve().name)}-" \
           f"{content_hash(manifest, samples, options, extra)}"
    size = options.image_size or min(MAX_DEFAULT_SIZE, max(native_size(samples[0].image, samples[0].where)))
    what = "segmentation" if kind == "segmentation" else f"{kind} classification, {len(classes)} classes"
    seg = kind == "segmentation"
    attrs = dict(
        name=name, kind=kind, modality=options.modality, metric="dice" if seg else "auc",
        image_size=size, full_size=size, min_size=size if seg else 0, supports_patches=seg,
        description=f"own data {manifest.name}: {what}, {len(samples)} samples",
        layout=layout, samples=tuple(samples), classes=classes, options=options, manifest=manifest,
        __module__=__name__,
    )
    return type(name, (OwnTask,), attrs)


CSV_LAYOUT = ("  a CSV with a header: image,mask[,fov][,split] (segmentation) or image,label[,split] / "
              "image,<label 1>,<label 2>,...[,split] (classification, multi-label 0/1);\n"
              "  paths relative to the CSV; split in train/val/test")


def read_csv(path: Path, options: OwnOptions) -> type[OwnTask]:
    try:
        raw = path.read_bytes()
        rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: unreadable CSV ({err}); expected:\n{CSV_LAYOUT}") from None
    header = [c.strip() for c in (rows[0].keys() if rows else [])]
    if "image" not in header:
        raise DataError(f"{path}: no 'image' column (header {header}); expected:\n{CSV_LAYOUT}")
    labels = [c for c in header if c not in COLUMNS]
    seg = "mask" in header
    if seg == bool(labels):
        raise DataError(f"{path}: header {header} has {'both a mask and' if seg else 'neither a mask nor'} label "
                        f"columns; expected:\n{CSV_LAYOUT}")
    samples = []
    for n, row in enumerate(rows, start=1):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        where = f"{path} row {n}"

        def file(col: str, _row=row, _where=where) -> Path | None:
            if not _row.get(col):
                if col in ("image", "mask"):
                    raise DataError(f"{_where}: empty {col} cell; expected a path relative to the CSV")
                return None
            p = path.parent / _row[col]
            if not p.is_file():
                raise DataError(f"{_where}: {col} {_row[col]}: file not found (paths are relative to {path.parent})")
            return p

        split = row.get("split") or None
        if "split" in header and split not in SPLITS:
            raise DataError(f"{where}: split {split!r}; expected one of {', '.join(SPLITS)} on every row")
        label = None if seg else (row[labels[0]] if len(labels) == 1 else tuple(row[c] for c in labels))
        samples.append(Sample(file("image"), where, file("mask") if seg else None, file("fov") if seg else None,
                              label, split))
    if seg:
        kind, classes = "segmentation", ()
    else:
        kind, classes = classify(samples, labels, options.num_classes, str(path))
    given = {s.split for s in samples}
    if "split" in header:
        for split in SPLITS:
            if split not in given:
                raise DataError(f"{path}: the {split} split is empty (no row has split={split}); expected at least "
                                "one row in each of train, val, test")
    return make_class(path, samples, kind, classes, options, CSV_LAYOUT, raw)
