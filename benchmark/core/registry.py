"""The one place that names every method and task: adding one is one line here plus its file.

tests/contract runs the method and task contracts on every entry (a method at its ``tiny_hparams``, a
task on the data its ``miniature`` writes), so a new entry is tested without touching a test file.

Entries are import strings so that listing names imports nothing heavy.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

from benchmark.core import names
from benchmark.core.names import did_you_mean
from benchmark.errors import ConfigError, MissingFileError, UnknownNameError
from benchmark.tasks.medmnist import FLAGS as MEDMNIST_FLAGS  # every 2D flag of medmnist.INFO, listed once there

METHODS: dict[str, str] = {
    "tower": "tower.method:Tower",
    "simclr": "baselines.simclr:SimCLR",
    "byol": "baselines.byol:BYOL",
    "moco": "baselines.moco:MoCo",
    "genesis": "baselines.genesis:ModelGenesis",
}

# Named (method, hyper-parameters) presets: the paper's ablation (Table 2) as ordinary ``--method`` names.
# Their pretraining config hash differs by hparams, so their exports and results never collide.
VARIANTS: dict[str, tuple[str, dict]] = {
    "gen-translation": ("tower", {"contrastive_weight": 0.0, "mask": "none"}),  # generative, translation only
    "gen-mask": ("tower", {"contrastive_weight": 0.0, "translate": False}),  # generative, mask only
    "gen-both": ("tower", {"contrastive_weight": 0.0}),  # generative, translation and mask
    "con-both": ("tower", {"generative_weight": 0.0}),  # contrastive, translation and mask
    "tower-blocks": ("tower", {"mask": "blocks"}),  # both losses, square blocks instead of the anatomy's mask
}

TASKS: dict[str, str] = {
    "synth-fundus": "benchmark.tasks.synth_fundus:SynthFundus",
    "synth-fundus-grade": "benchmark.tasks.synth_fundus:SynthFundusGrade",
    "drive": "benchmark.tasks.drive:Drive",
    **{flag: f"benchmark.tasks.medmnist:{name}" for flag, name in MEDMNIST_FLAGS.items()},
    "montgomery": "benchmark.tasks.montgomery:Montgomery",
    "shenzhen": "benchmark.tasks.shenzhen:Shenzhen",
    "chexpert": "benchmark.tasks.chexpert:CheXpert",
    "lits": "benchmark.tasks.lits:LiTS",
}


def _load(kind: str, table: dict[str, str], name: str):
    if name not in table:
        raise UnknownNameError(f"unknown {kind} {name!r}{did_you_mean(name, table)}; valid {kind}s: "
                               f"{', '.join(sorted(table))}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)


def method_class(name: str):
    return _load("method", METHODS, name)


def method_spec(name: str) -> tuple[str, dict]:
    """(registered method, hyper-parameters) of a method or a variant name."""
    if name in VARIANTS:
        method, hparams = VARIANTS[name]
        return method, dict(hparams)
    method_class(name)  # raises with the valid names
    return name, {}


# Own-data tasks (a CSV manifest or a folder, benchmark/tasks/manifest.py) made in this process, by task name.
OWN: dict[str, type] = {}


def own_path(spec: str | Path | None) -> Path | None:
    """``spec`` as own data: an existing .csv file or folder that is not a registered task's name."""
    if spec is None or str(spec) in TASKS:
        return None
    path = Path(spec)
    return path.resolve() if (path.is_file() and path.suffix.lower() == ".csv") or path.is_dir() else None


def resolve_task(spec: str, **own_options) -> str:
    """The task name of ``spec``: a registered or known name as is; own data becomes a task, remembered here.

    ``own_options`` (modality, num_classes, split_seed, image_size; None = unset) apply to own data only;
    ``image_size`` also sizes registered tasks (the caller's config carries it), so only the others are refused.
    """
    given = {k: v for k, v in own_options.items() if v is not None}
    path = own_path(spec)
    if path is None:
        if spec not in TASKS and spec not in OWN and (spec.lower().endswith(".csv") or "/" in spec):
            raise MissingFileError(f"--task {spec}: no such CSV manifest or data folder")
        own_only = [k for k in given if k != "image_size"]
        if own_only and spec in TASKS:
            flags = ", ".join("--" + k.replace("_", "-") for k in own_only)
            raise ConfigError(f"{flags}: only for own data (a CSV manifest or a folder), not the task {spec!r}")
        return spec
    from benchmark.tasks.manifest import OwnOptions
    from benchmark.tasks.own import own_task_class

    cls = own_task_class(path, OwnOptions(**given))
    OWN[cls.name] = cls
    return cls.name


def own_manifest(name: str) -> Path | None:
    """The manifest (CSV or folder) of own-data task ``name`` made in this process: its ``data_root``."""
    return OWN[name].manifest if name in OWN else None


def own_spec(name: str) -> tuple[str, dict] | None:
    """(manifest, options) that make own-data task ``name`` again in another process (a launcher's worker):
    the manifest alone would rebuild it without the ``--modality`` / ``--num-classes`` / ``--split-seed`` it
    was made with. None for a registered task."""
    if name not in OWN:
        return None
    return str(OWN[name].manifest), dataclasses.asdict(OWN[name].options)


def remake_own(spec: tuple[str, dict] | None) -> None:
    """Make (and remember) the own-data task of an ``own_spec`` in this process; None: nothing to do."""
    if spec is not None:
        resolve_task(spec[0], **spec[1])


def task_class(name: str, data_root: str | Path | None = None):
    """A registered task's class, or an own-data task's: made here, or rebuilt from its manifest ``data_root``."""
    if name in OWN:
        return OWN[name]
    if own_path(name):
        return OWN[resolve_task(name)]
    if name not in TASKS and re.fullmatch(r".+-[0-9a-f]{8}", name) and own_path(data_root):  # made elsewhere
        made = resolve_task(str(data_root))
        if made != name:
            from benchmark.tasks.base import DataError

            raise DataError(f"{data_root} is now task {made}, not {name}: its files changed, or {name} was made "
                            "with --modality/--num-classes/--split-seed that this process was not given")
        return OWN[made]
    return _load("task", TASKS, name)


class TaskSizeError(ConfigError):
    """A budget would shrink a task below the size at which its targets survive, and it cannot patch."""


def make_task(name: str, data_root=None, image_size: int | None = None, **kwargs):
    """Task ``name`` at a budget's ``image_size`` (None: the task's own), never shrunk below its ``min_size``.

    Below it, a task that supports patches trains on native-resolution patches of that size; any other
    task is refused with the budgets that are large enough. Deterministic in (name, image_size), so a job
    rebuilt elsewhere from its config gets the same inputs.
    """
    cls = task_class(name, data_root)
    size = image_size or cls.image_size
    if size >= cls.min_size:
        return cls(data_root, size, **kwargs)
    if cls.supports_patches:
        return cls(data_root, size, patches=True, **kwargs)
    from benchmark.core.config import BUDGETS

    fits = [b.name for b in BUDGETS.values() if (b.image_size or cls.image_size) >= cls.min_size]
    raise TaskSizeError(f"task {name!r} needs inputs of at least {cls.min_size} px (its targets vanish when "
                        f"shrunk further), not {size}; use --budget {' or '.join(fits)}")


# ----------------------------------------------------------------------------- names typed by users

def method_names() -> list[str]:
    """Everything ``--method`` takes by name: methods, their variants, the inits and the controls."""
    return list(METHODS) + list(VARIANTS) + list(names.INITS) + [names.SUPERVISED]


def check_methods(spec: str) -> list[str]:
    """``--method``: ``all`` or comma-separated names, weights folders or Hub ids; unknown names raise at once."""
    if spec == "all":
        return list(METHODS) + [names.RANDOM, *names.CONTROLS, names.IMAGENET]
    given = [s.strip() for s in spec.split(",") if s.strip()]
    known = method_names()
    for name in given:
        if name not in known and not Path(name).exists() and "/" not in name:
            raise names.unknown("method", name, known, "a weights folder or a Hub id")
    return given


def check_init(spec: str) -> str:
    """``--init``: a known name, an existing folder or a Hub id; anything else raises at once with the forms."""
    known = method_names()
    if spec in known or Path(spec).exists() or names.looks_like_hub_id(spec):
        return spec
    raise UnknownNameError(f"--init {spec!r} is not a known init{names.did_you_mean(spec, known)}, nor a folder here, "
                           f"nor a Hub id; --init takes {names.INIT_FORMS}")


def check_tasks(spec: str) -> list[str]:
    """``--task``: ``all`` or comma-separated registered names, CSV manifests or data folders."""
    if spec == "all":
        return list(TASKS)
    given = [s.strip() for s in spec.split(",") if s.strip()]
    for name in given:
        if name not in TASKS and own_path(name) is None and name not in OWN:
            if name.lower().endswith(".csv") or "/" in name:
                continue  # resolve_task names the missing file
            raise names.unknown("task", name, TASKS, "a CSV manifest or a data folder")
    return given
