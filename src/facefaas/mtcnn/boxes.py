"""Box arithmetic of the cascade, float32, boxes as ``(n, 4)`` x1, y1, x2, y2 pixels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facefaas.mtcnn.constants import PNET_CELL, PNET_STRIDE

__all__ = ["landmarks_in_box", "pnet_candidates", "regress", "square"]

F32 = npt.NDArray[np.float32]


def pnet_candidates(
    face_prob: F32, reg: F32, scale: float, threshold: float
) -> tuple[F32, F32, F32]:
    """Windows of one pyramid level whose face probability is ``> threshold``.

    Args:
        face_prob: ``(h, w)`` P-Net face probability map.
        reg: ``(4, h, w)`` box offsets.
        scale: the level's scale (resized / original).
    Returns:
        ``boxes (n, 4)`` in original pixels, ``scores (n,)``, ``offsets (n, 4)``, in row-major
        order of the map (the order TensorFlow's ``Where`` gives).
    """
    ys, xs = np.nonzero(face_prob > np.float32(threshold))
    s = np.float32(scale)
    first = np.stack([xs, ys], axis=1) * PNET_STRIDE
    boxes = np.concatenate(
        [(first + 1).astype(np.float32) / s, (first + PNET_CELL).astype(np.float32) / s], axis=1
    )
    return boxes, face_prob[ys, xs], np.ascontiguousarray(reg[:, ys, xs].T)


def regress(boxes: F32, offsets: F32) -> F32:
    """Apply offsets ``(dx1, dy1, dx2, dy2)`` scaled by the box width/height (no +1)."""
    sides = boxes[:, 2:] - boxes[:, :2]
    return (boxes + np.concatenate([sides, sides], axis=1) * offsets).astype(np.float32)


def square(boxes: F32) -> F32:
    """Make boxes square around their centre, side ``max(w + 1, h + 1)`` as the graph does."""
    sides = boxes[:, 2:] - boxes[:, :2] + np.float32(1)
    longest = sides.max(axis=1, keepdims=True)
    delta = np.concatenate(
        [(sides - longest) * np.float32(0.5), (sides - longest) * np.float32(-0.5)], axis=1
    )
    squared: F32 = (boxes + delta).astype(np.float32)
    return squared


def landmarks_in_box(boxes: F32, relative: F32) -> F32:
    """Landmarks ``(n, 5, 2)`` from O-Net's ``(x1..x5, y1..y5)`` outputs relative to the box."""
    sides = boxes[:, 2:] - boxes[:, :2]
    xs = boxes[:, 0:1] + sides[:, 0:1] * relative[:, :5]
    ys = boxes[:, 1:2] + sides[:, 1:2] * relative[:, 5:]
    return np.stack([xs, ys], axis=2).astype(np.float32)
