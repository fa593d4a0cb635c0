"""Baseline pretraining methods under TOWER's protocol: SimCLR, BYOL, MoCo v2, Models Genesis."""
from .augment import ClassicAugment
from .byol import BYOL
from .genesis import ModelGenesis
from .moco import MoCo
from .simclr import SimCLR
from .teacher import MomentumEncoder

__all__ = ["ClassicAugment", "SimCLR", "BYOL", "MoCo", "ModelGenesis", "MomentumEncoder"]
