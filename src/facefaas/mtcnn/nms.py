"""Non-maximum suppression with TensorFlow's ``NonMaxSuppressionV2`` semantics.

Candidates are visited by descending score, ties by ascending index; a candidate is dropped when
its IoU with an already selected box is strictly greater than the threshold (an IoU equal to it
keeps the box, as in TensorFlow and ONNX Runtime).
IoU is computed in float32 as TensorFlow does (corners may come in any order; empty boxes overlap
nothing).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["iou_one_to_many", "nms"]

F32 = npt.NDArray[np.float32]


def iou_one_to_many(box: F32, boxes: F32) -> F32:
    """IoU of one ``(4,)`` box with ``(n, 4)`` boxes, float32, TensorFlow's formula."""
    x_lo = np.minimum(boxes[:, 0], boxes[:, 2])
    x_hi = np.maximum(boxes[:, 0], boxes[:, 2])
    y_lo = np.minimum(boxes[:, 1], boxes[:, 3])
    y_hi = np.maximum(boxes[:, 1], boxes[:, 3])
    bx_lo, bx_hi = min(box[0], box[2]), max(box[0], box[2])
    by_lo, by_hi = min(box[1], box[3]), max(box[1], box[3])
    area_a = (by_hi - by_lo) * (bx_hi - bx_lo)
    areas = (y_hi - y_lo) * (x_hi - x_lo)
    inter_h = np.maximum(np.minimum(y_hi, by_hi) - np.maximum(y_lo, by_lo), np.float32(0))
    inter_w = np.maximum(np.minimum(x_hi, bx_hi) - np.maximum(x_lo, bx_lo), np.float32(0))
    inter = inter_h * inter_w
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_a + areas - inter)
    iou = np.where((areas <= 0) | (area_a <= 0), np.float32(0), iou)
    return iou.astype(np.float32)


def nms(boxes: F32, scores: F32, threshold: float, max_output: int) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept, in selection order (descending score).

    A candidate is suppressed when its IoU with a selected box is greater than ``threshold``
    (float32 comparison); at most ``max_output`` boxes are kept.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.intp)
    boxes = np.asarray(boxes, np.float32)
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    thr = np.float32(threshold)
    keep: list[int] = []
    alive = np.ones(n, bool)
    for position, i in enumerate(order):
        if not alive[position]:
            continue
        keep.append(int(i))
        if len(keep) >= max_output:
            break
        rest = order[position + 1 :]
        live = alive[position + 1 :]
        if not live.any():
            break
        idx = np.flatnonzero(live)
        overlap = iou_one_to_many(boxes[i], boxes[rest[idx]])
        live[idx[overlap > thr]] = False
    return np.asarray(keep, np.intp)
