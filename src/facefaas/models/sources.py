"""Turn what a caller hands to :func:`~facefaas.models.importing.import_model` into files.

A source is a path (a file, a folder, or a zip), the bytes of one file or zip, or a mapping of
file names to bytes. The result is always ``{base name: bytes}``: folders inside zips are
flattened (a model's files are told apart by name and content, never by where they sit), and
hidden files and ``__MACOSX`` metadata are dropped. Everything is bounded by ``max_bytes``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Union

from facefaas.errors import ModelFormatError, ModelNotFoundError, ParameterError, TooLargeError
from facefaas.models.archive import is_zip, read_zip
from facefaas.models.importers._torchfile import is_torch_file

__all__ = ["DEFAULT_MAX_BYTES", "ModelSource", "gather_files"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # MTCNN in any format is 2-6 MB; det4 included
_UNNAMED = "upload"
_NESTED_OK = (".pt", ".pth")  # modern torch files are zips themselves

ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Mapping[str, bytes]]


def _too_large(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise TooLargeError(
            f"{what} is {size} bytes; models of at most {max_bytes} bytes are accepted",
            limit=max_bytes, unit="bytes",
        )  # fmt: skip


def _hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") for part in parts) or (bool(parts) and parts[0] == "__MACOSX")


def _base_names(entries: Mapping[str, bytes], what: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for raw_name, data in entries.items():
        name = raw_name.replace("\\", "/")
        if _hidden(name):
            continue
        base = PurePosixPath(name).name or _UNNAMED
        if base in files:
            raise ModelFormatError(f"{what} holds two files named {base!r}")
        files[base] = data
    return files


def _expand(name: str, data: bytes, max_bytes: int) -> dict[str, bytes]:
    """A zip's files (flattened), or the single file itself; torch zips stay one file."""
    if is_zip(data) and not is_torch_file(data):
        entries = read_zip(
            data,
            max_total_bytes=max_bytes,
            allow_nested=lambda entry: entry.lower().endswith(_NESTED_OK),
            what=name,
        )
        return _base_names(entries, name)
    return {name: data}


def _from_path(path: Path, max_bytes: int) -> dict[str, bytes]:
    if path.is_dir():
        members = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        _too_large(sum(p.stat().st_size for p in members), max_bytes, str(path))
        return {p.name: p.read_bytes() for p in members}
    if path.is_file():
        _too_large(path.stat().st_size, max_bytes, str(path))
        return _expand(path.name, path.read_bytes(), max_bytes)
    raise ModelNotFoundError(f"{path}: no such file or folder")


def gather_files(
    source: ModelSource, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[dict[str, bytes], str | None]:
    """``({base name: bytes}, label)`` of a source; ``label`` is a name for the model taken from
    the path (a folder's name or a file's stem) or from the one file of a mapping (``model.zip``
    gives ``model``), ``None`` for bytes and for several files.

    Raises:
        ModelNotFoundError: a path that does not exist.
        ModelFormatError: an unsafe or unreadable zip, or two files with the same name.
        TooLargeError: more than ``max_bytes`` (zips counted uncompressed).
        ParameterError: a source of another type.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _from_path(path, max_bytes), (path.name if path.is_dir() else path.stem) or None
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _too_large(len(data), max_bytes, "the upload")
        return _expand(_UNNAMED, data, max_bytes), None
    if isinstance(source, Mapping):
        if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in source.items()):
            raise ParameterError("a model given as a mapping must map file names to bytes")
        _too_large(sum(len(v) for v in source.values()), max_bytes, "the upload")
        files: dict[str, bytes] = {}
        for name, data in _base_names(source, "the upload").items():
            for inner, content in _expand(name, data, max_bytes).items():
                if inner in files:
                    raise ModelFormatError(f"the upload holds two files named {inner!r}")
                files[inner] = content
        names = [name for name in source if PurePosixPath(name).stem not in ("", _UNNAMED)]
        label = PurePosixPath(names[0].replace("\\", "/")).stem if len(names) == 1 else None
        return files, label
    raise ParameterError(
        f"a model source must be a path, bytes or a mapping of names to bytes, not "
        f"{type(source).__name__}"
    )
