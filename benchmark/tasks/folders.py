"""The two folder layouts people already have, as own-data tasks (see ``manifest.py`` for splits and names).

- segmentation: ``images/`` + ``masks/`` with the same file stems (``a.jpg`` + ``a.png``), optional ``fov/``;
- classification (ImageFolder): ``train/<class>/*``, optional ``val/`` and ``test/`` (missing ones are cut
  from train with ``--split-seed``), or ``<class>/*`` alone (all three cut by seed). Classes are the
  training split's folder names, sorted.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from benchmark.tasks.base import SPLITS, DataError
from benchmark.tasks.manifest import OwnOptions, OwnTask, Sample, classify, make_class

LAYOUT = ("  images/<name>.<ext> + masks/<name>.<ext> [+ fov/<name>.<ext>]  (segmentation, same stems), or\n"
          "  train/<class>/<file> [val/<class>/...] [test/<class>/...] or <class>/<file>  (classification)")


def image_files(folder: Path) -> list[Path]:
    """The files Pillow has a format for, sorted; hidden files are left out."""
    known = Image.registered_extensions()
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in known)


def by_stem(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in image_files(folder):
        if p.stem in out:
            raise DataError(f"{p}: same name as {out[p.stem].name}; expected one file per stem in {folder}")
        out[p.stem] = p
    return out


def read_pairs(root: Path, options: OwnOptions) -> type[OwnTask]:
    images = by_stem(root / "images")
    masks = by_stem(root / "masks")
    fovs = by_stem(root / "fov") if (root / "fov").is_dir() else None
    for stem, p in images.items():
        if stem not in masks:
            raise DataError(f"{p}: no mask masks/{stem}.*; expected one mask per image, same stem")
        if fovs is not None and stem not in fovs:
            raise DataError(f"{p}: no field-of-view mask fov/{stem}.*; expected one per image when fov/ exists")
    for stem, p in masks.items():
        if stem not in images:
            raise DataError(f"{p}: no image images/{stem}.*; expected one image per mask, same stem")
    samples = [Sample(p, str(p), masks[stem], None if fovs is None else fovs[stem]) for stem, p in images.items()]
    return make_class(root, samples, "segmentation", (), options, LAYOUT)


def class_samples(folder: Path, split: str | None) -> list[Sample]:
    out = []
    for cls in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out += [Sample(p, str(p), label=cls.name, split=split) for p in image_files(cls)]
    return out


def read_image_folder(root: Path, options: OwnOptions) -> type[OwnTask]:
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present and "train" not in present:
        raise DataError(f"{root}: has {', '.join(present)}/ but no train/; expected:\n{LAYOUT}")
    if not present:
        samples = class_samples(root, None)
    else:
        complete = len(present) == len(SPLITS)  # else train is cut into train + the missing splits
        samples = [s for split in present
                   for s in class_samples(root / split, split if complete or split != "train" else None)]
    if not samples:
        raise DataError(f"{root}: no images in class folders; expected:\n{LAYOUT}")
    train = [s for s in samples if s.split in ("train", None)]
    train_classes = {s.label for s in train}
    for s in samples:
        if s.label not in train_classes:
            raise DataError(f"{s.where}: class {s.label!r} has no training images; expected the classes of "
                            f"train/ ({', '.join(sorted(train_classes))})")
    kind, classes = classify(samples, ["label"], options.num_classes, str(root))
    return make_class(root, samples, kind, classes, options, LAYOUT)


def read_folder(root: Path, options: OwnOptions) -> type[OwnTask]:
    if not root.is_dir():
        raise DataError(f"{root}: not a CSV manifest or a folder; expected a .csv file or a folder with:\n{LAYOUT}")
    if (root / "images").is_dir() or (root / "masks").is_dir():
        for sub in ("images", "masks"):
            if not (root / sub).is_dir():
                raise DataError(f"{root / sub}: missing folder; expected:\n{LAYOUT}")
        return read_pairs(root, options)
    return read_image_folder(root, options)
