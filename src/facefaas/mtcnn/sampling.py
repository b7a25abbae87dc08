"""Image sampling exactly as TensorFlow's kernels do it, in float32.

* :func:`resize_bilinear` is the legacy ``ResizeBilinear`` (``align_corners=False``,
  ``half_pixel_centers=False``): output pixel ``i`` samples input coordinate ``i * in/out``.
* :func:`crop_and_resize` is ``CropAndResize`` (bilinear, extrapolation value 0) for boxes given in
  pixels of the image; coordinates are mapped as TensorFlow maps normalised boxes:
  ``y1 / H * (H - 1)``.

Both work on planar images ``(C, H, W)`` float32. They are the reference the fast ONNX Runtime
path (:mod:`facefaas.runtime.graphs`) is tested against, and the fallback where it cannot run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["CropGrid", "crop_and_resize", "crop_grid", "normalized_boxes", "resize_bilinear"]

F32 = npt.NDArray[np.float32]


def _legacy_weights(
    out_size: int, in_size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], F32]:
    scale = np.float32(in_size) / np.float32(out_size)
    coords = np.arange(out_size, dtype=np.float32) * scale
    floor = np.floor(coords)
    lower = np.maximum(floor.astype(np.intp), 0)
    upper = np.minimum(np.ceil(coords).astype(np.intp), in_size - 1)
    return lower, upper, (coords - floor).astype(np.float32)


def resize_bilinear(image: F32, height: int, width: int) -> F32:
    """Resize a planar ``(C, H, W)`` float32 image to ``(C, height, width)``."""
    _, in_h, in_w = image.shape
    y0, y1, ly = _legacy_weights(height, in_h)
    x0, x1, lx = _legacy_weights(width, in_w)
    rows = np.union1d(y0, y1)
    # Interpolate along x only on the rows that are needed, then along y; the float32 operation
    # order is TensorFlow's: top = tl + (tr - tl) * xl; out = top + (bottom - top) * yl.
    src = image[:, rows]
    left = src[:, :, x0]
    horizontal = left + (src[:, :, x1] - left) * lx
    top = horizontal[:, np.searchsorted(rows, y0)]
    bottom = horizontal[:, np.searchsorted(rows, y1)]
    out = top + (bottom - top) * ly[:, None]
    return np.ascontiguousarray(out, dtype=np.float32)


class CropGrid(NamedTuple):
    """Where CropAndResize samples: ``(n, side)`` row and column coordinates (pixels) and
    whether each lies inside the image (samples outside are 0)."""

    rows: F32
    cols: F32
    rows_inside: npt.NDArray[np.bool_]
    cols_inside: npt.NDArray[np.bool_]


def normalized_boxes(boxes: F32, height: int, width: int) -> F32:
    """``boxes`` ``(n, 4)`` x1, y1, x2, y2 pixels -> ``(n, 4)`` y1, x1, y2, x2 as the seed graph
    hands them to ``CropAndResize``: divided by ``[H, W, H, W]`` in float32."""
    b = np.asarray(boxes, np.float32)
    scale = np.array([height, width, height, width], np.float32)
    normalized: F32 = b[:, [1, 0, 3, 2]] / scale
    return normalized


def crop_grid(boxes: F32, height: int, width: int, side: int) -> CropGrid:
    """Sampling grid of ``boxes`` (``(n, 4)`` x1, y1, x2, y2 pixels) for ``side x side`` crops."""
    hm1, wm1 = np.float32(height - 1), np.float32(width - 1)
    # TensorFlow gets normalised boxes and maps them back to pixels.
    y1, x1, y2, x2 = normalized_boxes(boxes, height, width).T
    steps = np.arange(side, dtype=np.float32)
    h_scale = (y2 - y1) * hm1 / np.float32(side - 1)
    w_scale = (x2 - x1) * wm1 / np.float32(side - 1)
    rows = (y1 * hm1)[:, None] + steps[None, :] * h_scale[:, None]
    cols = (x1 * wm1)[:, None] + steps[None, :] * w_scale[:, None]
    return CropGrid(rows, cols, (rows >= 0) & (rows <= hm1), (cols >= 0) & (cols <= wm1))


def crop_and_resize(image: F32, boxes: F32, side: int) -> F32:
    """Crop ``boxes`` ``(n, 4)`` (x1, y1, x2, y2 pixels) to ``(n, C, side, side)`` crops.

    Samples outside the image are 0 (the graph's extrapolation value, i.e. grey in normalised
    pixels).
    """
    channels, in_h, in_w = image.shape
    if len(boxes) == 0:
        return np.zeros((0, channels, side, side), np.float32)
    grid = crop_grid(boxes, in_h, in_w, side)
    cy = np.clip(grid.rows, 0, in_h - 1)
    cx = np.clip(grid.cols, 0, in_w - 1)
    top_i = np.floor(cy).astype(np.intp)[:, None, :, None]
    bot_i = np.ceil(cy).astype(np.intp)[:, None, :, None]
    left_i = np.floor(cx).astype(np.intp)[:, None, None, :]
    right_i = np.ceil(cx).astype(np.intp)[:, None, None, :]
    ly = (grid.rows - np.floor(grid.rows)).astype(np.float32)[:, None, :, None]
    lx = (grid.cols - np.floor(grid.cols)).astype(np.float32)[:, None, None, :]
    ch = np.arange(channels)[None, :, None, None]
    tl = image[ch, top_i, left_i]
    tr = image[ch, top_i, right_i]
    bl = image[ch, bot_i, left_i]
    br = image[ch, bot_i, right_i]
    top = tl + (tr - tl) * lx
    bottom = bl + (br - bl) * lx
    out = top + (bottom - top) * ly
    inside = grid.rows_inside[:, None, :, None] & grid.cols_inside[:, None, None, :]
    return np.where(inside, out, np.float32(0)).astype(np.float32)
