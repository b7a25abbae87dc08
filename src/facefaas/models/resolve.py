"""`resolve_model_source`: what a user calls a model (``"mtcnn"``, a path) -> its bundle folder.

Built-in ids come from :mod:`facefaas.models.builtin`; anything else must be an existing bundle
folder. Callers with more places to look (the service's registry) pass ``resolvers``: each gets
the reference and returns a bundle folder or ``None``, and is asked after the built-ins and
before the file system.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from facefaas.errors import ModelNotFoundError
from facefaas.models.builtin import BUILTIN_MODELS, builtin_path

__all__ = ["Resolver", "resolve_model_source"]

Resolver = Callable[[str], Path | None]


def resolve_model_source(
    ref: str | os.PathLike[str], *, resolvers: Sequence[Resolver] = ()
) -> Path:
    """The bundle folder ``ref`` names: a built-in id, an id a resolver knows, or a folder path.

    Raises:
        ModelNotFoundError: nothing by that name, with the built-in ids in the message.
    """
    text = os.fspath(ref)
    if isinstance(ref, str):
        builtin = builtin_path(text)
        if builtin is not None:
            return builtin
        for resolver in resolvers:
            found = resolver(text)
            if found is not None:
                return found
    path = Path(text)
    if path.is_dir():
        return path
    raise ModelNotFoundError(
        f"no model {text!r}: not a built-in model ({', '.join(sorted(BUILTIN_MODELS))}) "
        "nor a bundle folder"
    )
