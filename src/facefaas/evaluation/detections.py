"""Detections to evaluate, and the detection-file formats they are read from and written to.

One :class:`ImageDetections` per image: boxes ``(n, 4)`` ``x1, y1, x2, y2`` pixels and scores
``(n,)``, both float64. A set of them is a ``dict`` from the image key (see
:class:`~facefaas.evaluation.truth.ImageTruth`) to its detections; a missing key means none.

Two file formats:

* the WIDER FACE submission format, a folder with one ``<key>.txt`` per image (for WIDER,
  ``<event>/<name>.txt``): the image name, the number of boxes, then one ``x y w h score`` line
  per box (``x, y`` the top-left corner, ``w, h`` the size, pixels). Every dataset here uses it,
  keyed by its own image keys, so any detector's output can be evaluated;
* the FDDB format, one file for a fold: the image key, the number of boxes, then one
  ``left top width height score`` line per box (rectangles only).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from facefaas.errors import InputError
from facefaas.faces import Faces

__all__ = [
    "ImageDetections",
    "key_path",
    "read_fddb_detections",
    "read_wider_detections",
    "read_wider_file",
    "write_fddb_detections",
    "write_wider_detections",
]

FloatArray = npt.NDArray[np.float64]

MAX_FILE_BYTES = 64 * 1024 * 1024  # a detection file larger than this is a mistake


@dataclass(frozen=True, eq=False)
class ImageDetections:
    """Detections of one image: ``boxes`` ``(n, 4)`` ``x1, y1, x2, y2`` and ``scores`` ``(n,)``."""

    boxes: FloatArray
    scores: FloatArray

    def __post_init__(self) -> None:
        boxes = np.array(self.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.array(self.scores, dtype=np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise InputError(f"{len(boxes)} boxes but {len(scores)} scores")
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise InputError("detections must be finite numbers")
        boxes.setflags(write=False)
        scores.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> ImageDetections:
        return cls(np.zeros((0, 4)), np.zeros((0,)))

    @classmethod
    def from_faces(cls, faces: Faces) -> ImageDetections:
        """The boxes and scores of a detection result (landmarks are not evaluated)."""
        return cls(faces.boxes.astype(np.float64), faces.scores.astype(np.float64))

    @classmethod
    def from_xywh(cls, rows: npt.ArrayLike) -> ImageDetections:
        """From ``(n, 5)`` rows ``x, y, w, h, score`` (``x2 = x + w``, as the WIDER tools do)."""
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        boxes = np.concatenate([array[:, :2], array[:, :2] + array[:, 2:4]], axis=1)
        return cls(boxes, array[:, 4])

    def xywh(self) -> FloatArray:
        """``(n, 4)`` ``x, y, w, h``."""
        return np.concatenate([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]], axis=1)

    def sorted(self) -> ImageDetections:
        """Highest score first; equal scores keep their order (a stable sort, as MATLAB's)."""
        order = np.argsort(-self.scores, kind="stable")
        return ImageDetections(self.boxes[order], self.scores[order])


def key_path(root: str | os.PathLike[str], key: str, suffix: str = ".txt") -> Path:
    """``root/<key><suffix>``; refuses keys that leave ``root`` (``..``, absolute, ``\\``)."""
    parts = key.split("/")
    if "\\" in key or "\x00" in key or any(part in ("", ".", "..") for part in parts):
        raise InputError(f"not a valid image key: {key!r}")
    return Path(root).joinpath(*parts[:-1], parts[-1] + suffix)


def _format_rows(detections: ImageDetections) -> list[str]:
    rows = []
    for (x, y, w, h), score in zip(detections.xywh(), detections.scores, strict=True):
        rows.append(f"{x:.3f} {y:.3f} {w:.3f} {h:.3f} {score:.8f}")
    return rows


def write_wider_detections(
    directory: str | os.PathLike[str], detections: Mapping[str, ImageDetections]
) -> Path:
    """Write one WIDER-format ``<key>.txt`` per image under ``directory``; returns the folder."""
    root = Path(directory)
    for key, dets in detections.items():
        path = key_path(root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        name = PurePosixPath(key).name
        lines = [name, str(len(dets)), *_format_rows(dets)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _parse_rows(lines: list[str], count: int, where: str) -> ImageDetections:
    if len(lines) < count:
        raise InputError(f"{where}: says {count} boxes but has {len(lines)} lines")
    rows = np.zeros((count, 5), dtype=np.float64)
    for i, line in enumerate(lines[:count]):
        fields = line.split()
        if len(fields) < 5:
            raise InputError(f"{where}: box line {i + 1} needs x y w h score, got {line!r}")
        try:
            values = [float(v) for v in fields[:5]]
        except ValueError:
            raise InputError(f"{where}: box line {i + 1} is not numbers: {line!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"{where}: box line {i + 1} has a non-finite number")
        rows[i] = values
    return ImageDetections.from_xywh(rows)


def _parse_count(line: str, where: str) -> int:
    try:
        count = int(float(line.strip()))
    except ValueError:
        raise InputError(f"{where}: expected the number of boxes, got {line!r}") from None
    if count < 0:
        raise InputError(f"{where}: negative number of boxes")
    return count


def _read_text(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return path.read_text(encoding="utf-8", errors="strict")


def read_wider_file(path: str | os.PathLike[str]) -> ImageDetections:
    """One WIDER-format file (the first line, the image name, is not checked)."""
    where = str(path)
    lines = [line for line in _read_text(Path(path)).splitlines()]
    if len(lines) < 2:
        raise InputError(f"{where}: expected a name line and a count line")
    count = _parse_count(lines[1], where)
    body = [line for line in lines[2:] if line.strip()]
    return _parse_rows(body, count, where)


def read_wider_detections(
    directory: str | os.PathLike[str], keys: Iterable[str] | None = None
) -> dict[str, ImageDetections]:
    """Read a WIDER-format folder: ``<key>.txt`` for each of ``keys``, or every ``*.txt`` in it.

    A key without a file is left out (the evaluation counts its faces as missed, as the official
    tool does).
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"no detection folder at {root}")
    result: dict[str, ImageDetections] = {}
    if keys is None:
        for path in sorted(root.rglob("*.txt")):
            key = path.relative_to(root).with_suffix("").as_posix()
            result[key] = read_wider_file(path)
        return result
    for key in keys:
        path = key_path(root, key)
        if path.is_file():
            result[key] = read_wider_file(path)
    return result


def write_fddb_detections(
    path: str | os.PathLike[str], keys: Iterable[str], detections: Mapping[str, ImageDetections]
) -> Path:
    """Write the FDDB detection file for ``keys`` (in that order, the fold's order)."""
    lines: list[str] = []
    for key in keys:
        dets = detections.get(key, ImageDetections.empty())
        lines += [key, str(len(dets)), *_format_rows(dets)]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def read_fddb_detections(path: str | os.PathLike[str]) -> dict[str, ImageDetections]:
    """Read an FDDB rectangle detection file (``left top width height score`` per box)."""
    where = str(path)
    lines = [line for line in _read_text(Path(path)).splitlines() if line.strip()]
    result: dict[str, ImageDetections] = {}
    i = 0
    while i < len(lines):
        key = lines[i].strip()
        if i + 1 >= len(lines):
            raise InputError(f"{where}: {key!r} has no count line")
        count = _parse_count(lines[i + 1], f"{where} ({key})")
        rows = lines[i + 2 : i + 2 + count]
        result[key] = _parse_rows(rows, count, f"{where} ({key})")
        i += 2 + count
    return result
