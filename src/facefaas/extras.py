"""Which optional extra installs which module, and the message that says so.

One table for every place that meets a missing optional module: the CLI (any command) and the
library's lazy imports (:func:`require`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRA_OF_MODULE", "install_hint", "require"]

_SERVER_MODULES = (
    "fastapi uvicorn multipart python_multipart pydantic pydantic_settings sqlalchemy "
    "prometheus_client limits swagger_ui_bundle"
)
EXTRA_OF_MODULE: dict[str, str] = {
    **dict.fromkeys(_SERVER_MODULES.split(), "server"),
    "psycopg": "postgres",
    "scipy": "eval",
    "matplotlib": "eval",
}
"""Top-level module -> the extra of pyproject.toml's optional dependencies that installs it."""


def install_hint(module: str) -> str | None:
    """``"<module> is not installed; ... pip install 'facefaas[<extra>]'"`` when ``module`` (or
    its top-level package) comes with an extra; ``None`` otherwise."""
    top = module.split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"{top} is not installed; this needs facefaas' {extra!r} extra: "
        f"pip install 'facefaas[{extra}]'"
    )


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"scipy.io"``) or raise :class:`ImportError` naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(install_hint(module) or f"{module} cannot be imported: {exc}") from exc
