"""Image sampling exactly as TensorFlow's kernels do it, in float32.

* :func:`resize_bilinear` is the legacy ``ResizeBilinear`` (``align_corners=False``,
  ``half_pixel_centers=False``): output pixel ``i`` samples input coordinate ``i * in/out``.
* :func:`crop_and_resize` is ``CropAndResize`` (bilinear, extrapolation value 0) for boxes given in
  pixels of the image; coordinates are mapped as TensorFlow maps normalised boxes:
  ``y1 / H * (H - 1)``.

Both work on planar images ``(C, H, W)`` float32 and return planar results, the layout the ONNX
networks take.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["crop_and_resize", "resize_bilinear"]

F32 = npt.NDArray[np.float32]


def _legacy_weights(out_size: int, in_size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], F32]:
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


def crop_and_resize(image: F32, boxes: F32, side: int) -> F32:
    """Crop ``boxes`` (``(n, 4)`` x1, y1, x2, y2 pixels) from a planar image to ``(n, C, side, side)``.

    Samples outside the image are 0 (the graph's extrapolation value, i.e. grey in normalised
    pixels).
    """
    channels, in_h, in_w = image.shape
    n = len(boxes)
    if n == 0:
        return np.zeros((0, channels, side, side), np.float32)
    b = boxes.astype(np.float32)
    # TensorFlow gets normalised boxes (box / [H, W, H, W] in float32) and maps them back.
    hm1, wm1 = np.float32(in_h - 1), np.float32(in_w - 1)
    y1 = b[:, 1] / np.float32(in_h)
    x1 = b[:, 0] / np.float32(in_w)
    y2 = b[:, 3] / np.float32(in_h)
    x2 = b[:, 2] / np.float32(in_w)
    steps = np.arange(side, dtype=np.float32)
    h_scale = (y2 - y1) * hm1 / np.float32(side - 1)
    w_scale = (x2 - x1) * wm1 / np.float32(side - 1)
    in_y = (y1 * hm1)[:, None] + steps[None, :] * h_scale[:, None]  # (n, side)
    in_x = (x1 * wm1)[:, None] + steps[None, :] * w_scale[:, None]
    valid_y = (in_y >= 0) & (in_y <= hm1)
    valid_x = (in_x >= 0) & (in_x <= wm1)
    # Clamp only to index safely; invalid samples are zeroed below.
    cy = np.clip(in_y, 0, hm1)
    cx = np.clip(in_x, 0, wm1)
    top_i = np.floor(cy).astype(np.intp)
    bot_i = np.ceil(cy).astype(np.intp)
    left_i = np.floor(cx).astype(np.intp)
    right_i = np.ceil(cx).astype(np.intp)
    ly = (in_y - np.floor(in_y)).astype(np.float32)
    lx = (in_x - np.floor(in_x)).astype(np.float32)
    # Gather (n, C, side_y, side_x) corners.
    ty = top_i[:, None, :, None]
    by = bot_i[:, None, :, None]
    lxi = left_i[:, None, None, :]
    rxi = right_i[:, None, None, :]
    ch = np.arange(channels)[None, :, None, None]
    tl = image[ch, ty, lxi]
    tr = image[ch, ty, rxi]
    bl = image[ch, by, lxi]
    br = image[ch, by, rxi]
    wx = lx[:, None, None, :]
    top = tl + (tr - tl) * wx
    bottom = bl + (br - bl) * wx
    out = top + (bottom - top) * ly[:, None, :, None]
    mask = valid_y[:, None, :, None] & valid_x[:, None, None, :]
    return np.where(mask, out, np.float32(0)).astype(np.float32)
