"""Lazy imports of the ``eval`` extra (scipy, matplotlib), with an error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]

_EXTRA_HINT = "install the evaluation extra: pip install 'facefaas[eval]'"


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"scipy.io"``) or raise :class:`ImportError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed for this evaluation step; {_EXTRA_HINT}") from exc
