"""An RGB image to CenterFace's input, the way deface feeds it.

deface calls ``cv2.dnn.blobFromImage(rgb, size=(w, h), swapRB=False)``: a bilinear resize of the
uint8 image to the network size (sides rounded up to multiples of 32, so even "full resolution"
stretches most images by a few rows or columns), then float32 NCHW pixels in 0..255, RGB order,
no mean, no scale. :func:`to_blob` reproduces OpenCV's uint8 ``INTER_LINEAR`` arithmetic
(11-bit fixed-point weights; a vertical pass that drops 4 bits, multiplies by the high half and
rounds by 2 bits, as its SIMD kernel does) so that the network sees the same pixels without
depending on OpenCV: equal to ``cv2.resize`` (OpenCV 5.1) except, where both sides change, in the
top and bottom rows that map outside the first and last source rows' centres (one to a few rows;
OpenCV rounds those differently), which may differ by one level.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["to_blob"]

U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]

_COEF_BITS = 11
_COEF_SCALE = np.float32(1 << _COEF_BITS)
_BAND_ROWS = 32


def _taps(target: int, source: int) -> tuple[I32, I32, I32, I32]:
    """Source indices and fixed-point weights of each output position along one axis.

    Returns ``(first, second, weight_first, weight_second)``, each ``(target,)``; OpenCV's
    coordinate map ``(d + 0.5) * source / target - 0.5``, clamped to the border.
    """
    scale = 1.0 / (target / source)  # OpenCV's order of operations: it decides the last bit
    position = ((np.arange(target) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int32)
    fraction = position - first.astype(np.float32)
    low, high = first < 0, first >= source - 1
    fraction[low | high] = 0
    first[low] = 0
    first[high] = source - 1
    second = np.minimum(first + 1, source - 1)
    # Each weight is rounded on its own, so they may sum to 2047 or 2049, as in OpenCV.
    weight_first = np.rint((1 - fraction) * _COEF_SCALE).astype(np.int32)
    weight_second = np.rint(fraction * _COEF_SCALE).astype(np.int32)
    return first, second, weight_first, weight_second


def to_blob(rgb: U8, width: int, height: int) -> F32:
    """``rgb`` ``(H, W, 3)`` uint8 to the network's ``(1, 3, height, width)`` float32 input in
    0..255, resized like ``cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)``
    (module docstring) when the size differs.

    Works a band of output rows at a time, so that the integer temporaries stay in the core's
    cache: ~4 ms for a 1024x683 photo stretched to 704 rows (18 ms in one piece), ~11 ms when the
    width changes too (OpenCV: ~2.5 ms).
    """
    source_height, source_width = rgb.shape[:2]
    blob = np.empty((1, 3, height, width), np.float32)
    if (source_width, source_height) == (width, height):
        np.copyto(blob[0], rgb.transpose(2, 0, 1))
    elif width == source_width:
        _stretch_rows(rgb, blob)
    else:
        _resize_both(rgb, blob)
    return blob


def _stretch_rows(rgb: U8, blob: F32) -> None:
    """Height changes only: every horizontal weight is (2048, 0), so a row of the horizontal
    pass is ``pixel << 7`` after OpenCV's 4-bit shift, and ``(pixel << 7) * b >> 16`` is
    ``pixel * b >> 9``."""
    y0, y1, b0, b1 = _taps(blob.shape[2], rgb.shape[0])
    out = blob[0].transpose(1, 2, 0)  # (height, width, 3) view of the NCHW buffer
    for start in range(0, len(y0), _BAND_ROWS):
        rows = slice(start, start + _BAND_ROWS)
        top = rgb[y0[rows]].astype(np.int32)
        top *= b0[rows, None, None]
        top >>= 9
        bottom = rgb[y1[rows]].astype(np.int32)
        bottom *= b1[rows, None, None]
        bottom >>= 9
        out[rows] = _round_sum(top, bottom)


def _resize_both(rgb: U8, blob: F32) -> None:
    """The general case, on channel planes so that the horizontal gathers are along rows."""
    height, width = blob.shape[2:]
    y0, y1, b0, b1 = _taps(height, rgb.shape[0])
    x0, x1, a0, a1 = _taps(width, rgb.shape[1])
    planes = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    for start in range(0, height, _BAND_ROWS):
        rows = slice(start, start + _BAND_ROWS)
        first, last = int(y0[rows][0]), int(y1[rows][-1]) + 1
        band = planes[:, first:last]  # the source rows this band of output rows reads
        source = np.take(band, x0, axis=2).astype(np.int32)
        source *= a0
        right = np.take(band, x1, axis=2).astype(np.int32)
        right *= a1
        source += right
        source >>= 4
        top = source[:, y0[rows] - first]
        top *= b0[None, rows, None]
        top >>= 16
        bottom = source[:, y1[rows] - first]
        bottom *= b1[None, rows, None]
        bottom >>= 16
        blob[0, :, rows] = _round_sum(top, bottom)


def _round_sum(top: I32, bottom: I32) -> I32:
    """OpenCV's ``v_rshr_pack_u<2>``: ``(top + bottom + 2) >> 2`` (in place in ``top``)."""
    top += bottom
    top += 2
    top >>= 2
    return top
