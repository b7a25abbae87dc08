"""Face chips: each detected face cut out of the image, optionally square, resized and aligned.

Coordinates are those of :class:`~facefaas.faces.Faces`: continuous pixels of the oriented image,
pixel ``(i, j)`` covering ``[i, i + 1) x [j, j + 1)``. Areas outside the image come out black.

Alignment (``align=True``) maps the two eye landmarks, by a similarity transform (rotation,
uniform scale, translation), onto fixed positions of a square ``size`` chip: the ArcFace 112x112
template's eyes made level, i.e. the image-left eye at ``(0.3419 * size, 0.4615 * size)`` and the
image-right eye at ``(0.6565 * size, 0.4615 * size)`` (``(38.3, 51.7)`` and ``(73.5, 51.7)`` at
112). ``margin`` shrinks the face about the chip centre by ``1 / (1 + 2 * margin)`` so more of
its surroundings show.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from facefaas.errors import ParameterError
from facefaas.faces import Faces
from facefaas.render import as_image

__all__ = ["EYE_POSITIONS", "alignment_matrix", "crop_faces"]

MIN_SIZE = 16
MAX_SIZE = 1024
ALIGNED_DEFAULT_SIZE = 112

EYE_POSITIONS: tuple[tuple[float, float], tuple[float, float]] = (
    (0.3419, 0.4615),
    (0.6565, 0.4615),
)
"""Where ``align=True`` puts the image-left and image-right eye, as fractions of the chip side."""

Affine = tuple[float, float, float, float, float, float]


def crop_faces(
    image: Any,
    faces: Faces,
    *,
    size: int | None = None,
    align: bool = False,
    margin: float = 0.0,
) -> list[Image.Image]:
    """One RGB chip per face, in the order of ``faces``.

    - ``size=None``, ``align=False``: the box, each side moved out by ``margin`` times the box's
      width (height), rounded to whole pixels and cut as is (black where it leaves the image).
    - ``size=N`` (16..1024): the same area made square around the box centre (its longer side)
      and resampled to ``N x N`` (box-filtered first when it shrinks a lot, then bicubic);
      faces are never stretched.
    - ``align=True``: rotated so the eyes are level and scaled so they land on
      :data:`EYE_POSITIONS`, in an ``N x N`` chip (``N = size``, 112 when ``size`` is None);
      ``margin`` (0..1) zooms out as described in the module docstring.
    """
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE
    ):
        raise ParameterError(
            f"size must be None or an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}"
        )
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0.0 <= margin <= 1.0:
        raise ParameterError(f"margin must be a number in [0, 1], got {margin!r}")
    if not isinstance(faces, Faces):
        raise ParameterError(f"faces must be a Faces result, got {type(faces).__name__}")
    img = as_image(image)
    if (faces.width, faces.height) != img.size:
        raise ParameterError(
            f"the faces refer to a {faces.width}x{faces.height} image but the image is "
            f"{img.width}x{img.height} (pass the oriented image the faces were detected on)"
        )
    if align:
        side = size or ALIGNED_DEFAULT_SIZE
        return [
            _warp(img, alignment_matrix(points[0], points[1], side, margin=margin), side)
            for points in faces.landmarks.tolist()
        ]
    chips = []
    for box in faces.boxes.tolist():
        if not all(math.isfinite(v) for v in box):
            raise ParameterError("a face box has a non-finite coordinate")
        x1, y1, x2, y2 = box
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        x1, y1, x2, y2 = x1 - dx, y1 - dy, x2 + dx, y2 + dy
        if size is None:
            chips.append(_cut(img, x1, y1, x2, y2))
            continue
        # The square around the box, sampled straight into the chip (no full-size copy).
        side = max(x2 - x1, y2 - y1)
        corner_x, corner_y = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
        scale = side / size
        chips.append(_warp(img, (scale, 0.0, corner_x, 0.0, scale, corner_y), size))
    return chips


def _cut(img: Image.Image, x1: float, y1: float, x2: float, y2: float) -> Image.Image:
    """``[x1, x2) x [y1, y2)`` rounded to whole pixels, at least 1x1, black outside the image."""
    # Real boxes never reach an image size beyond the border; clamping there bounds the chip
    # (at most 3x the image per side) whatever coordinates come in.
    width, height = img.size
    left, right = (round(min(max(v, -width), 2 * width)) for v in (x1, x2))
    top, bottom = (round(min(max(v, -height), 2 * height)) for v in (y1, y2))
    return img.crop((left, top, max(right, left + 1), max(bottom, top + 1)))


def alignment_matrix(
    left_eye: tuple[float, float] | list[float],
    right_eye: tuple[float, float] | list[float],
    size: int,
    *,
    margin: float = 0.0,
) -> Affine:
    """The affine ``(a, b, c, d, e, f)`` taking chip coordinates to image coordinates.

    A chip point ``(u, v)`` samples the image at ``(a u + b v + c, d u + e v + f)`` (continuous
    coordinates, PIL's ``Image.transform`` convention). It is the similarity that puts
    ``left_eye`` and ``right_eye`` (image pixels) at :data:`EYE_POSITIONS` of a ``size`` chip,
    zoomed out by ``1 / (1 + 2 * margin)`` about the chip centre.
    """
    values = (*left_eye, *right_eye)
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ParameterError("eye landmarks must be finite (x, y) points")
    zoom = 1.0 / (1.0 + 2.0 * margin)
    centre = size / 2.0
    (lu, lv), (ru, rv) = (
        (centre + (fx * size - centre) * zoom, centre + (fy * size - centre) * zoom)
        for fx, fy in EYE_POSITIONS
    )
    # As complex numbers: image = z * (chip - chip_left_eye) + image_left_eye, z = s * e^(i theta).
    chip_vec = complex(ru - lu, rv - lv)
    image_vec = complex(values[2] - values[0], values[3] - values[1])
    if abs(image_vec) < 1e-3:
        raise ParameterError("the two eye landmarks coincide: cannot align this face")
    z = image_vec / chip_vec
    a, b = z.real, z.imag
    return (a, -b, values[0] - a * lu + b * lv, b, a, values[1] - b * lu - a * lv)


def _warp(img: Image.Image, matrix: Affine, size: int) -> Image.Image:
    """Sample a ``size`` chip through ``matrix`` (chip -> image, see :func:`alignment_matrix`).

    Only the part of the image under the chip is touched, and shrinking by ``k >= 2`` first
    box-averages ``k x k`` blocks, so big faces neither alias nor cost a full-size copy.
    """
    a, b, c, d, e, f = matrix
    scale = math.hypot(a, d)  # image pixels per chip pixel
    corners = [(a * u + b * v + c, d * u + e * v + f) for u in (0, size) for v in (0, size)]
    pad = 2 * max(scale, 1.0)
    left = math.floor(min(x for x, _ in corners) - pad)
    top = math.floor(min(y for _, y in corners) - pad)
    right = math.ceil(max(x for x, _ in corners) + pad)
    bottom = math.ceil(max(y for _, y in corners) + pad)
    # Only the part inside the image is cut; the transform fills the rest with black.
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, img.width), min(bottom, img.height)
    if left >= right or top >= bottom:
        return Image.new("RGB", (size, size))
    region = img.crop((left, top, right, bottom))
    factor = max(1, int(scale))  # box-average down to 1..2 source pixels per chip pixel
    if factor > 1:
        region = region.reduce(factor)
    # Chip -> region coordinates: subtract the crop origin, then divide by the reduction.
    local = (
        a / factor,
        b / factor,
        (c - left) / factor,
        d / factor,
        e / factor,
        (f - top) / factor,
    )
    return region.transform(
        (size, size), Image.Transform.AFFINE, local, resample=Image.Resampling.BICUBIC
    )
