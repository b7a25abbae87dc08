"""Ground truth of an evaluation set: one :class:`ImageTruth` per image, in a :class:`Dataset`.

Boxes are ``(x1, y1, x2, y2)`` pixels with the origin at the top-left corner, as in
:class:`facefaas.Faces`. A dataset written as ``x, y, w, h`` (WIDER, dlib) is stored as
``x2 = x + w``, ``y2 = y + h``, exactly what the official WIDER evaluation computes before its
``+1`` pixel-area convention (that convention lives in the metric, not here).

A *setting* is a named subset of the faces that count (WIDER's easy/medium/hard, or ``"all"``);
a face outside a setting is *ignored* there: a detection matched to it is neither a true nor a
false positive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facefaas.errors import InputError

__all__ = ["Dataset", "ImageTruth"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ImageTruth:
    """The annotated faces of one image.

    Attributes:
        key: the image's id in the dataset, a ``/``-separated relative path without extension
            (WIDER ``"0--Parade/0_Parade_marchingband_1_20"``, FDDB ``"2002/08/11/big/img_591"``);
            detection files are named after it (``<key>.txt``).
        path: the image file, or ``None`` when only annotations are known.
        boxes: ``(n, 4)`` float64 ``x1, y1, x2, y2`` pixels (for FDDB: the ellipses' bounding
            boxes, for display only).
        counted: per setting, a ``(n,)`` bool mask of the faces that count in that setting.
        ellipses: FDDB only, ``(n, 5)`` ``major_radius, minor_radius, angle, cx, cy`` (pixels,
            radians; the major axis points along ``(cos angle, sin angle)`` with y down).
        size: ``(width, height)`` of the image when known from the annotations.
    """

    key: str
    path: Path | None
    boxes: FloatArray
    counted: Mapping[str, BoolArray]
    ellipses: FloatArray | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        boxes.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        counted: dict[str, BoolArray] = {}
        for setting, mask in self.counted.items():
            array = np.asarray(mask, dtype=np.bool_).reshape(-1)
            if len(array) != len(boxes):
                raise InputError(
                    f"{self.key}: setting {setting!r} masks {len(array)} of {len(boxes)} faces"
                )
            array.setflags(write=False)
            counted[setting] = array
        object.__setattr__(self, "counted", counted)
        if self.ellipses is not None:
            ellipses = np.asarray(self.ellipses, dtype=np.float64).reshape(-1, 5)
            if len(ellipses) != len(boxes):
                raise InputError(f"{self.key}: {len(ellipses)} ellipses for {len(boxes)} boxes")
            ellipses.setflags(write=False)
            object.__setattr__(self, "ellipses", ellipses)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True, eq=False)
class Dataset:
    """An evaluation set.

    Attributes:
        name: ``"wider"``, ``"fddb"`` or ``"dlib"``; it selects the protocol.
        settings: the settings every image's ``counted`` holds, in report order.
        images: the images evaluated, in a stable order.
        source: where the ground truth was read from (for the report).
    """

    name: str
    settings: tuple[str, ...]
    images: tuple[ImageTruth, ...]
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.images)

    def face_counts(self) -> dict[str, int]:
        """Faces that count per setting, summed over the images."""
        return {s: int(sum(int(im.counted[s].sum()) for im in self.images)) for s in self.settings}

    def limit(self, count: int | None) -> Dataset:
        """The first ``count`` images (all when ``None``)."""
        if count is None:
            return self
        return Dataset(
            self.name, self.settings, self.images[: max(count, 0)], self.source, self.notes
        )
