"""The ``UserError`` family (from ``zoo.errors``) plus the kinds only the benchmark raises; torch-free, so the CLI
can tell a user error from a bug without importing torch."""
from __future__ import annotations

from zoo.errors import BadFileError, ConfigError, MissingFileError, NotAFolderError, UnknownNameError, UserError

__all__ = ["BadFileError", "BatchTooLargeError", "ConfigError", "ExistingOutputError", "MissingFileError",
           "NonFiniteLossError", "NotAFolderError", "UnknownNameError", "UserError", "batch_too_large", "torch_oom"]


class BatchTooLargeError(UserError, MemoryError):
    """The accelerator ran out of memory at this batch size; the message names a smaller one to try."""


class NonFiniteLossError(UserError, FloatingPointError):
    """The loss became NaN or infinite (too high a learning rate, diverging weights); nothing was saved."""


class ExistingOutputError(UserError, FileExistsError):
    """The output folder already holds a run; the message says how to continue it or where else to write."""


def torch_oom() -> type[BaseException]:
    """torch's out-of-memory error: ``torch.OutOfMemoryError`` (torch >= 2.5) or ``torch.cuda.OutOfMemoryError``
    (older releases; the same class). A function so that importing this module does not import torch."""
    import torch

    return getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def batch_too_large(what: str, batch_size: int, where: str, world: int = 1) -> BatchTooLargeError:
    """The error for an out-of-memory ``what`` (pretraining / fine-tuning) step at ``batch_size``.

    The suggestion is half the batch, kept a multiple of the ``world`` processes that share it.
    """
    half = max(world, (batch_size // 2) // world * world)
    hint = (f"try --batch-size {half}" if half < batch_size
            else "the batch cannot shrink further: try a smaller --image-size or encoder")
    return BatchTooLargeError(
        f"out of memory during {what} at batch size {batch_size} ({where}): {hint} "
        f"(memory needed grows with batch size x image size^2)"
    )
