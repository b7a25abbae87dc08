"""NMS with TensorFlow's NonMaxSuppressionV2 rules."""

from __future__ import annotations

import numpy as np

from facefaas.mtcnn.nms import iou_one_to_many, nms


def _boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32)


def test_nms_keeps_a_box_whose_iou_equals_the_threshold() -> None:
    boxes = _boxes([0, 0, 10, 10], [0, 0, 10, 5])  # IoU exactly 0.5
    assert nms(boxes, np.array([0.9, 0.8], np.float32), 0.5, 10).tolist() == [0, 1]


def test_nms_drops_a_box_whose_iou_exceeds_the_threshold() -> None:
    boxes = _boxes([0, 0, 10, 10], [0, 0, 10, 6])
    assert nms(boxes, np.array([0.9, 0.8], np.float32), 0.5, 10).tolist() == [0]


def test_nms_breaks_score_ties_by_lower_index() -> None:
    boxes = _boxes([0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60])
    kept = nms(boxes, np.array([1.0, 1.0, 1.0], np.float32), 0.3, 10)
    assert kept.tolist() == [0, 2]


def test_nms_returns_indices_by_descending_score_and_stops_at_max_output() -> None:
    boxes = _boxes([0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21], [30, 30, 31, 31])
    scores = np.array([0.2, 0.9, 0.5, 0.7], np.float32)
    assert nms(boxes, scores, 0.5, 10).tolist() == [1, 3, 2, 0]
    assert nms(boxes, scores, 0.5, 2).tolist() == [1, 3]


def test_iou_treats_swapped_corners_alike_and_empty_boxes_as_disjoint() -> None:
    assert iou_one_to_many(_boxes([10, 10, 0, 0])[0], _boxes([0, 0, 10, 10]))[0] == 1.0
    assert iou_one_to_many(_boxes([0, 0, 0, 10])[0], _boxes([0, 0, 10, 10]))[0] == 0.0


def test_nms_of_nothing_is_empty() -> None:
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, 10).tolist() == []
