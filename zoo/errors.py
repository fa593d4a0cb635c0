"""Errors in input the user controls (an option, a name, a file or folder they gave); torch-free.

``tower-bench`` prints a ``UserError`` as one line and exits 2; any other exception is a bug and keeps its
traceback. Each kind also derives from the built-in exception raised before it existed, so callers that
catch ``ValueError``, ``KeyError`` or ``FileNotFoundError`` keep working. They live in ``zoo`` because
``zoo``, ``tower`` and ``baselines`` may not import ``benchmark``; ``benchmark.errors`` re-exports them.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix; the message says what was given and what was expected."""


class ConfigError(UserError, ValueError):
    """An option, hyper-parameter or config value out of its valid range or inconsistent with another."""


class UnknownNameError(UserError, KeyError):
    """A method, task, budget or other name that is not registered; the message lists the valid ones."""

    __str__ = Exception.__str__  # the message as written, not KeyError's repr() of it


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (or that a named folder should hold) does not exist."""


class NotAFolderError(UserError, NotADirectoryError):
    """A file was given where a folder is expected."""


class BadFileError(UserError, ValueError):
    """A file the user gave is unreadable, refused (pickle) or not in the expected format; the message names it."""
