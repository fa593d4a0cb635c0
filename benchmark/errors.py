"""Errors a user fixes by changing a command-line option; ``tower-bench`` prints them as one line."""
from __future__ import annotations

import torch

# torch >= 2.5 names it torch.OutOfMemoryError; older releases only torch.cuda.OutOfMemoryError (the same class).
TORCH_OOM: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


class BatchTooLargeError(MemoryError):
    """The accelerator ran out of memory at this batch size; the message names a smaller one to try."""


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
