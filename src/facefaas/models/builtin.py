"""Built-in models: a table of ids and the bundles shipped in the package."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "builtin_path"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "models"

DEFAULT_MODEL = "mtcnn"
BUILTIN_MODELS: dict[str, Path] = {
    "mtcnn": _DATA / "mtcnn",  # the seed's model, the default
    "centerface": _DATA / "centerface",
}


def builtin_path(model_id: str) -> Path | None:
    """The bundle folder of a built-in model, or ``None`` if ``model_id`` is not built in."""
    return BUILTIN_MODELS.get(model_id)
