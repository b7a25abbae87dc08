"""Helpers to compare detections with the seed graph's golden outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def iou_matrix(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), x1 y1 x2 y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@dataclass
class Agreement:
    """How two sets of detections of one image agree."""

    reference: int
    ours: int
    reference_matched: int
    ours_matched: int
    landmark_errors: list[float]


def compare(
    ref_boxes: npt.NDArray[Any],
    ref_landmarks: npt.NDArray[Any],
    boxes: npt.NDArray[Any],
    landmarks: npt.NDArray[Any],
    iou: float,
) -> Agreement:
    """Match at ``iou``; landmark error is the largest coordinate difference of matched faces."""
    m = iou_matrix(ref_boxes, boxes)
    ref_hit = (m >= iou).any(axis=1) if len(boxes) else np.zeros(len(ref_boxes), bool)
    our_hit = (m >= iou).any(axis=0) if len(ref_boxes) else np.zeros(len(boxes), bool)
    errors = [
        float(np.abs(ref_landmarks[i] - landmarks[int(m[i].argmax())]).max())
        for i in np.flatnonzero(ref_hit)
    ]
    return Agreement(len(ref_boxes), len(boxes), int(ref_hit.sum()), int(our_hit.sum()), errors)


def load_golden(shared: Path, name: str) -> dict[str, dict[str, Any]]:
    """``{path relative to shared: {"width", "height", "faces": [...]}}`` of a golden file."""
    data = json.loads((shared / "golden" / name).read_text())
    return data["images"]  # type: ignore[no-any-return]


def golden_arrays(entry: dict[str, Any]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    faces = entry["faces"]
    boxes = np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
    landmarks = np.array([f["landmarks"] for f in faces], np.float64).reshape(-1, 5, 2)
    return boxes, landmarks
