"""The three stages of MTCNN over a :class:`Networks` implementation.

The functions here are pure: they take a planar normalised image and return arrays. Running the
networks is delegated to ``Networks`` (ONNX Runtime sessions in practice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facefaas.mtcnn import constants as C
from facefaas.mtcnn.boxes import landmarks_in_box, pnet_candidates, regress, square
from facefaas.mtcnn.nms import nms
from facefaas.mtcnn.sampling import crop_and_resize, resize_bilinear
from facefaas.params import DetectionParams

__all__ = ["Detections", "Networks", "normalize", "onet_stage", "pnet_stage", "rnet_stage", "run_cascade"]

F32 = npt.NDArray[np.float32]


class Networks(Protocol):
    """What the pipeline needs from a model: the three networks as array functions."""

    def pnet(self, image: F32) -> tuple[F32, F32]:
        """``(1, 3, H, W)`` -> face probability ``(h, w)``, offsets ``(4, h, w)``."""
        ...

    def rnet(self, crops: F32) -> tuple[F32, F32]:
        """``(n, 3, 24, 24)`` -> face probability ``(n,)``, offsets ``(n, 4)``."""
        ...

    def onet(self, crops: F32) -> tuple[F32, F32, F32]:
        """``(n, 3, 48, 48)`` -> probability ``(n,)``, offsets ``(n, 4)``, landmarks ``(n, 10)``."""
        ...


@dataclass(frozen=True)
class Detections:
    """Raw cascade output: boxes ``(n, 4)``, scores ``(n,)``, landmarks ``(n, 5, 2)``."""

    boxes: F32
    scores: F32
    landmarks: F32

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def normalize(rgb: npt.NDArray[np.uint8]) -> F32:
    """``(H, W, 3)`` uint8 RGB -> planar ``(3, H, W)`` float32 ``(x - 127.5) / 128``."""
    planar = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    planar -= C.PIXEL_MEAN
    planar /= C.PIXEL_SCALE
    return planar


def pyramid_sizes(height: int, width: int, params: DetectionParams) -> list[tuple[float, int, int]]:
    """``(scale, height, width)`` of every pyramid level (sizes truncated as the graph does)."""
    levels = []
    for scale in params.scales(height, width):
        s = np.float32(scale)
        levels.append((scale, int(np.float32(height) * s), int(np.float32(width) * s)))
    return levels


def pnet_stage(image: F32, nets: Networks, params: DetectionParams) -> tuple[F32, F32]:
    """Candidate boxes (squared, in pixels) and their P-Net scores."""
    _, height, width = image.shape
    all_boxes, all_scores, all_offsets = [], [], []
    for scale, h, w in pyramid_sizes(height, width, params):
        level = resize_bilinear(image, h, w)
        prob, reg = nets.pnet(level[None])
        boxes, scores, offsets = pnet_candidates(prob, reg, scale, params.thresholds[0])
        keep = nms(boxes, scores, C.NMS_PNET_SCALE, C.NMS_MAX_OUTPUT)
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_offsets.append(offsets[keep])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    boxes = np.concatenate(all_boxes)
    scores = np.concatenate(all_scores)
    offsets = np.concatenate(all_offsets)
    keep = nms(boxes, scores, C.NMS_PNET_ALL, C.NMS_MAX_OUTPUT)
    return square(regress(boxes[keep], offsets[keep])), scores[keep]


def rnet_stage(image: F32, boxes: F32, nets: Networks, params: DetectionParams) -> tuple[F32, F32]:
    """Refined, squared boxes and R-Net scores."""
    if len(boxes) == 0:
        return boxes, np.zeros(0, np.float32)
    prob, offsets = nets.rnet(crop_and_resize(image, boxes, C.RNET_SIDE))
    mask = prob > np.float32(params.thresholds[1])
    boxes, prob, offsets = boxes[mask], prob[mask], offsets[mask]
    keep = nms(boxes, prob, C.NMS_RNET, C.NMS_MAX_OUTPUT)
    return square(regress(boxes[keep], offsets[keep])), prob[keep]


def onet_stage(image: F32, boxes: F32, nets: Networks, params: DetectionParams) -> Detections:
    """Final boxes, scores and landmarks."""
    if len(boxes) == 0:
        return Detections.empty()
    prob, offsets, marks = nets.onet(crop_and_resize(image, boxes, C.ONET_SIDE))
    mask = prob > np.float32(params.thresholds[2])
    boxes, prob, offsets, marks = boxes[mask], prob[mask], offsets[mask], marks[mask]
    landmarks = landmarks_in_box(boxes, marks)
    boxes = regress(boxes, offsets)
    keep = nms(boxes, prob, C.NMS_ONET, C.NMS_MAX_OUTPUT)
    return Detections(boxes[keep], prob[keep], landmarks[keep])


def run_cascade(image: F32, nets: Networks, params: DetectionParams) -> Detections:
    """The whole cascade on a planar normalised image ``(3, H, W)``."""
    boxes, _ = pnet_stage(image, nets, params)
    boxes, _ = rnet_stage(image, boxes, nets, params)
    return onet_stage(image, boxes, nets, params)
