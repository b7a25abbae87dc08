"""FDDB ground truth: the ``FDDB-fold-XX-ellipseList.txt`` files (faces as ellipses).

Each image: its path (``2002/08/11/big/img_591``, the key; the image is
``<images>/<key>.jpg``), the number of faces, then one line per face:
``major_axis_radius minor_axis_radius angle center_x center_y 1`` (pixels, radians). Every face
counts (setting ``"all"``). The FDDB images are not in ``../shared``; pass their folder when you
have them (its image sizes bound the overlap computation, as in the official tool).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facefaas.errors import InputError
from facefaas.evaluation.truth import Dataset, ImageTruth

__all__ = ["FDDB_FOLDS", "ellipse_bounds", "load_fddb", "parse_ellipse_list"]

FDDB_FOLDS = tuple(f"{i:02d}" for i in range(1, 11))
ELLIPSE_FILE = "FDDB-fold-{}-ellipseList.txt"


def ellipse_bounds(ellipses: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Axis-aligned bounding boxes ``(n, 4)`` ``x1, y1, x2, y2`` of ``(n, 5)`` FDDB ellipses."""
    e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    a, b, angle, cx, cy = e.T
    half_w = np.sqrt((a * np.cos(angle)) ** 2 + (b * np.sin(angle)) ** 2)
    half_h = np.sqrt((a * np.sin(angle)) ** 2 + (b * np.cos(angle)) ** 2)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def parse_ellipse_list(
    text: str, where: str = "ellipse list"
) -> list[tuple[str, npt.NDArray[np.float64]]]:
    """``(key, ellipses (n, 5))`` for each image of an ``-ellipseList.txt`` text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = []
    i = 0
    while i < len(lines):
        key = lines[i]
        try:
            count = int(lines[i + 1])
            rows = [[float(v) for v in line.split()[:5]] for line in lines[i + 2 : i + 2 + count]]
            ellipses = np.array(rows, dtype=np.float64).reshape(-1, 5)
        except (IndexError, ValueError):
            raise InputError(f"{where}: malformed entry for {key!r}") from None
        if count < 0 or len(ellipses) != count or not np.isfinite(ellipses).all():
            raise InputError(
                f"{where}: {key!r} says {count} faces, found {len(ellipses)} valid lines"
            )
        out.append((key, ellipses))
        i += 2 + count
    return out


def _image_size(path: Path) -> tuple[int, int] | None:
    if not path.is_file():
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return int(img.width), int(img.height)
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{path}: not a readable image") from None


def load_fddb(
    folds_dir: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    folds: Sequence[str] = FDDB_FOLDS,
    present_only: bool = True,
) -> Dataset:
    """Load FDDB folds (``"01"``..``"10"``) from ``folds_dir`` (the ``FDDB-folds`` folder).

    With ``images`` (the ``originalPics`` folder), image paths and sizes are filled in and, with
    ``present_only``, images without a file are left out.
    """
    root = Path(folds_dir)
    image_dir = Path(images) if images is not None else None
    records: list[ImageTruth] = []
    total = 0
    for fold in folds:
        if fold not in FDDB_FOLDS:
            raise InputError(f"unknown FDDB fold {fold!r}; folds are 01..10")
        path = root / ELLIPSE_FILE.format(fold)
        if not path.is_file():
            raise InputError(f"missing FDDB annotations {path}")
        for key, ellipses in parse_ellipse_list(path.read_text(encoding="utf-8"), str(path)):
            total += 1
            image_path = image_dir / f"{key}.jpg" if image_dir is not None else None
            size = _image_size(image_path) if image_path is not None else None
            if image_path is not None and present_only and size is None:
                continue
            records.append(
                ImageTruth(
                    key=key,
                    path=image_path,
                    boxes=ellipse_bounds(ellipses),
                    counted={"all": np.ones(len(ellipses), dtype=np.bool_)},
                    ellipses=ellipses,
                    size=size,
                )
            )
    notes = []
    if len(records) < total:
        notes.append(f"restricted to {len(records)} of {total} images (the others are missing)")
    return Dataset("fddb", ("all",), tuple(records), str(root), tuple(notes))
