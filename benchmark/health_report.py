"""The health verdict's one-line description, for benchmark code: it lives in ``zoo.health``, where the model card
(which may not import benchmark) uses the same words."""
from __future__ import annotations

from zoo.health import describe

__all__ = ["describe"]
