"""Every name a user types (methods, inits, tasks, budgets, protocols), checked before torch is imported.

A typo should cost the user a second, not the five to nine that importing torch takes, and the message should
say what was probably meant ("did you mean 'tower'?"). Nothing here imports torch, timm or numpy's users.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from benchmark.errors import UnknownNameError

RANDOM = "random"
IMAGENET = "imagenet"
# The A/A control: random init drawn from another seed stream (``finetuning.inits.init_seed``). Two runs of the same
# init must tie on a board; how often they do not is the board's false-positive rate.
AA_CONTROL = "random-aa"
# The positive control: the U-Net trained with the fine-tuning loss on a labelled pool (``finetuning.supervised``).
SUPERVISED = "supervised"
INITS = (RANDOM, AA_CONTROL, IMAGENET)  # inits that need no pretraining
CONTROLS = (SUPERVISED, AA_CONTROL)  # on every board of ``--method all``
INIT_FORMS = "a method name (tower-bench methods), random, random-aa, imagenet, a weights folder, or a Hub id org/name"


@dataclass(frozen=True)
class Shown:
    """How an init appears to a reader: its display name on boards and figures, its row name in the paper's
    tables (None: the paper has no such row), and its colour in every figure."""

    display: str
    paper: str | None = None
    color: str | None = None


# Every name a board can show, declared once (the palette: Okabe-Ito first, colour-blind safe; TOWER vermillion).
SHOWN: dict[str, Shown] = {
    "tower": Shown("TOWER", "TOWER", "#D55E00"),
    "simclr": Shown("SimCLR", "SimCLR-v1", "#009E73"),
    "byol": Shown("BYOL", "BYOL", "#CC79A7"),
    "moco": Shown("MoCo v2", "MoCo", "#E69F00"),
    "genesis": Shown("Models Genesis", "Model Genesis", "#56B4E9"),
    "gen-translation": Shown("TOWER gen. (translation)", "Gen, translation only", "#17BECF"),
    "gen-mask": Shown("TOWER gen. (mask)", "Gen, mask only", "#393B79"),
    "gen-both": Shown("TOWER gen. (both)", "Gen, both", "#9467BD"),
    "con-both": Shown("TOWER con. (both)", "Con, both", "#BCBD22"),
    "tower-blocks": Shown("TOWER (blocks mask)", None, "#8C564B"),
    RANDOM: Shown("random init", "Random", "#7F7F7F"),
    AA_CONTROL: Shown("random init (A/A)", None, "#BDBDBD"),
    IMAGENET: Shown("ImageNet init", "ImageNet", "#0072B2"),
    SUPERVISED: Shown("supervised (control)", None, "#000000"),
}


def display_name(name: str) -> str:
    """What a reader sees for an init (``a+b``, a mixing pair: both parts); unknown names as they are."""
    if "+" in name:
        return "+".join(display_name(part) for part in name.split("+"))
    return SHOWN[name].display if name in SHOWN else name


def metric_name(metric: str) -> str:
    """What a reader sees for a metric in titles and table headings: Dice, AUC."""
    return "Dice" if metric == "dice" else metric.upper()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, known: Iterable[str], also: str = "") -> UnknownNameError:
    known = list(known)
    return UnknownNameError(f"unknown {kind} {name!r}{did_you_mean(name, known)}; valid: {', '.join(known)}"
                            + (f", {also}" if also else ""))


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` with no local meaning: the only Hub ids the zoo publishes."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists() and not name.startswith((".", "/", "~"))


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    """A name from a fixed list (``--protocol``, ``--launcher``)."""
    choices = list(choices)
    if name not in choices:
        raise unknown(kind, name, choices)
    return name
