"""`Faces`: the result of a detection, as parallel arrays.

Coordinates are pixels of the *oriented* image (after EXIF orientation was applied), with the
origin at the top-left corner, x to the right and y down. A box is ``(x1, y1, x2, y2)`` with
``x2 > x1``; boxes are not clipped to the image (a face cut by the border keeps its full extent).

Landmarks are five ``(x, y)`` points in this order: the eye on the image's left, the eye on the
image's right, the nose, the mouth corner on the image's left, the mouth corner on the image's
right. ("Left" is the viewer's left, i.e. the person's right eye for a frontal face.)

``Faces.to_dict()`` is the one JSON schema shared by the library, the CLI and the HTTP service.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

__all__ = ["LANDMARK_NAMES", "Face", "Faces"]

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

FloatArray = npt.NDArray[np.float32]


def _round(values: npt.ArrayLike, digits: int) -> list[Any]:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Face:
    """One face: a box, a score in [0, 1] and five landmarks (see the module docstring)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True, eq=False)
class Faces:
    """Detected faces of one image.

    Attributes:
        boxes: ``(n, 4)`` float32, ``x1, y1, x2, y2`` in pixels.
        scores: ``(n,)`` float32 face probabilities of the last stage.
        landmarks: ``(n, 5, 2)`` float32 ``(x, y)`` pixels, in :data:`LANDMARK_NAMES` order.
        width, height: size of the oriented image the coordinates refer to.
    """

    boxes: FloatArray
    scores: FloatArray
    landmarks: FloatArray
    width: int
    height: int

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, 5, 2)
        if not len(boxes) == len(scores) == len(landmarks):
            raise ValueError(
                f"boxes, scores and landmarks differ in length: "
                f"{len(boxes)}, {len(scores)}, {len(landmarks)}"
            )
        for array in (boxes, scores, landmarks):
            array.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "landmarks", landmarks)

    @classmethod
    def empty(cls, width: int, height: int) -> Faces:
        """No faces in an image of that size."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
            width=width,
            height=height,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return len(self) > 0

    @overload
    def __getitem__(self, index: int) -> Face: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | npt.NDArray[Any]) -> Faces: ...

    def __getitem__(self, index: int | slice | Sequence[int] | npt.NDArray[Any]) -> Face | Faces:
        """An ``int`` gives one :class:`Face`; a slice, index list or boolean mask a ``Faces``."""
        if isinstance(index, int | np.integer):
            i = int(index)
            box = self.boxes[i]
            return Face(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                score=float(self.scores[i]),
                landmarks=tuple((float(x), float(y)) for x, y in self.landmarks[i]),
            )
        selector = index if isinstance(index, slice) else np.asarray(index)
        return Faces(
            boxes=self.boxes[selector],
            scores=self.scores[selector],
            landmarks=self.landmarks[selector],
            width=self.width,
            height=self.height,
        )

    def __iter__(self) -> Iterator[Face]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Faces(n={len(self)}, width={self.width}, height={self.height})"

    @property
    def areas(self) -> FloatArray:
        """Box areas in square pixels, ``(n,)``."""
        sides = self.boxes[:, 2:] - self.boxes[:, :2]
        return (sides[:, 0] * sides[:, 1]).astype(np.float32)

    def filter(self, *, score_threshold: float = 0.0, max_faces: int | None = None) -> Faces:
        """Faces with ``score >= score_threshold``; with ``max_faces``, only the largest ones.

        Order is kept (except that ``max_faces`` keeps the largest boxes first).
        """
        kept = self[self.scores >= score_threshold]
        if max_faces is not None and len(kept) > max_faces:
            order = np.argsort(-kept.areas, kind="stable")[:max_faces]
            kept = kept[order]
        return kept

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema shared by library, CLI and HTTP.

        ``{"width", "height", "faces": [{"box", "box_normalized", "score", "landmarks"}]}`` where
        ``box`` is ``[x1, y1, x2, y2]`` pixels, ``box_normalized`` the same divided by the image
        width/height, and ``landmarks`` maps each of :data:`LANDMARK_NAMES` to ``[x, y]``.
        """
        scale = np.array([self.width, self.height] * 2, dtype=np.float64)
        faces = []
        for i in range(len(self)):
            box = self.boxes[i].astype(np.float64)
            faces.append(
                {
                    "box": _round(box, 2),
                    "box_normalized": _round(box / scale, 5),
                    "score": round(float(self.scores[i]), 6),
                    "landmarks": {
                        name: _round(point, 2)
                        for name, point in zip(LANDMARK_NAMES, self.landmarks[i], strict=True)
                    },
                }
            )
        return {"width": self.width, "height": self.height, "faces": faces}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faces:
        """Inverse of :meth:`to_dict` (coordinates keep the rounding of the JSON)."""
        faces = data["faces"]
        return cls(
            boxes=np.array([f["box"] for f in faces], np.float32).reshape(-1, 4),
            scores=np.array([f["score"] for f in faces], np.float32).reshape(-1),
            landmarks=np.array(
                [[f["landmarks"][name] for name in LANDMARK_NAMES] for f in faces], np.float32
            ).reshape(-1, 5, 2),
            width=int(data["width"]),
            height=int(data["height"]),
        )
