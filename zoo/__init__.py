"""Models and weights: the U-Net on timm encoders, shared self-supervised blocks, Hub I/O."""
from .distributed import GlobalBatchNorm, convert_sync_batchnorm, gather_with_grad
from .ema import cosine_momentum, ema_update, frozen_copy
from .heads import MLPHead, prediction_head, projection_head
from .hub import from_pretrained, load_config, load_init, push_to_hub, save_pretrained
from .losses import cosine_regression, info_nce, info_nce_with_negatives
from .method import PretrainMethod
from .unet import UNet, UNetConfig

__all__ = [
    "UNet", "UNetConfig", "PretrainMethod", "MLPHead", "projection_head", "prediction_head",
    "info_nce", "info_nce_with_negatives", "cosine_regression", "gather_with_grad",
    "GlobalBatchNorm", "convert_sync_batchnorm", "ema_update", "frozen_copy", "cosine_momentum",
    "save_pretrained", "from_pretrained", "load_config", "load_init", "push_to_hub",
]
