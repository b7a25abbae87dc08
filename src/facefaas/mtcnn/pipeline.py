"""The three stages of MTCNN over a :class:`CascadeOps` implementation, and the optional fourth
(LNet landmark refinement, :mod:`facefaas.mtcnn.lnet`).

The functions here are pure: they take a planar normalised image and return arrays. The heavy
steps (networks, sampling, NMS) are delegated to a :class:`CascadeOps` implementation: ONNX Runtime
sessions in practice (:mod:`facefaas.runtime.sessions`), or the NumPy reference
(:mod:`facefaas.runtime.reference`) the fast path is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facefaas.mtcnn import constants as C
from facefaas.mtcnn.boxes import landmarks_in_box, pnet_candidates, regress, square
from facefaas.mtcnn.lnet import patch_sizes, refine_points
from facefaas.params import DetectionParams

__all__ = [
    "CascadeOps",
    "Detections",
    "lnet_stage",
    "normalize",
    "onet_stage",
    "pnet_stage",
    "pyramid_sizes",
    "rnet_stage",
    "run_cascade",
]

F32 = npt.NDArray[np.float32]


Check = Callable[[], None]
"""Called between steps; raises to stop the work (:meth:`facefaas.deadline.Deadline.check`)."""


def never_stop() -> None:
    """A :data:`Check` that never stops the work."""


class CascadeOps(Protocol):
    """The heavy steps of the cascade, implemented by a runtime (ONNX Runtime in practice).

    ``source`` is the whole normalised image, planar ``(1, 3, H, W)`` float32. ``check`` is
    called before each piece of work (a P-Net band, a chunk of crops) and may raise to stop.
    """

    def pnet(
        self, source: F32, sizes: Sequence[tuple[int, int]], check: Check = never_stop
    ) -> list[tuple[F32, F32]]:
        """P-Net on ``source`` resized (legacy bilinear) to each ``(height, width)``: per level,
        face probability ``(h, w)`` and offsets ``(4, h, w)``."""
        ...

    def rnet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32]:
        """R-Net on 24x24 CropAndResize crops of ``boxes``: probability ``(n,)``,
        offsets ``(n, 4)``."""
        ...

    def onet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32, F32]:
        """O-Net on 48x48 crops: probability ``(n,)``, offsets ``(n, 4)``, landmarks ``(n, 10)``."""
        ...

    def lnet(self, source: F32, points: F32, patch_sizes: F32, check: Check = never_stop) -> F32:
        """LNet on 24x24 crops of :func:`facefaas.mtcnn.lnet.patch_boxes` around ``points
        (n, 5, 2)`` with sides ``patch_sizes (n,)``: fractions ``(n, 10)`` ``(x1..x5, y1..y5)``."""
        ...

    def nms(
        self, boxes: F32, scores: F32, threshold: float, max_output: int
    ) -> npt.NDArray[np.intp]:
        """Indices kept by :func:`facefaas.mtcnn.nms.nms`'s rule, in selection order."""
        ...


@dataclass(frozen=True)
class Detections:
    """Raw cascade output: boxes ``(n, 4)``, scores ``(n,)``, landmarks ``(n, 5, 2)``."""

    boxes: F32
    scores: F32
    landmarks: F32

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )


def normalize(rgb: npt.NDArray[np.uint8]) -> F32:
    """``(H, W, 3)`` uint8 RGB -> planar ``(1, 3, H, W)`` float32 ``(x - 127.5) / 128``."""
    planar = np.empty((1, 3, *rgb.shape[:2]), np.float32)
    np.subtract(rgb.transpose(2, 0, 1), C.PIXEL_MEAN, out=planar[0], dtype=np.float32)
    # Dividing by 128 and multiplying by 1/128 give the same float32 (a power of two): the
    # multiplication is the cheaper pass over a 14-Mpx image.
    planar *= np.float32(1.0) / C.PIXEL_SCALE
    return planar


def pyramid_sizes(height: int, width: int, params: DetectionParams) -> list[tuple[float, int, int]]:
    """``(scale, height, width)`` of every pyramid level (sizes truncated as the graph does)."""
    levels = []
    for scale in params.scales(height, width):
        s = np.float32(scale)
        levels.append((scale, int(np.float32(height) * s), int(np.float32(width) * s)))
    return levels


def pnet_stage(
    source: F32, ops: CascadeOps, params: DetectionParams, check: Check = never_stop
) -> tuple[F32, F32]:
    """Candidate boxes (squared, in pixels) and their P-Net scores."""
    _, _, height, width = source.shape
    all_boxes, all_scores, all_offsets = [], [], []
    levels = pyramid_sizes(height, width, params)
    outputs = ops.pnet(source, [(h, w) for _, h, w in levels], check)
    for (scale, _, _), (prob, reg) in zip(levels, outputs, strict=True):
        boxes, scores, offsets = pnet_candidates(prob, reg, scale, params.thresholds[0])
        keep = ops.nms(boxes, scores, float(C.NMS_PNET_SCALE), C.NMS_MAX_OUTPUT)
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_offsets.append(offsets[keep])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    boxes = np.concatenate(all_boxes)
    scores = np.concatenate(all_scores)
    offsets = np.concatenate(all_offsets)
    keep = ops.nms(boxes, scores, float(C.NMS_PNET_ALL), C.NMS_MAX_OUTPUT)
    return square(regress(boxes[keep], offsets[keep])), scores[keep]


def rnet_stage(
    source: F32, boxes: F32, ops: CascadeOps, params: DetectionParams, check: Check = never_stop
) -> tuple[F32, F32]:
    """Refined, squared boxes and R-Net scores."""
    if len(boxes) == 0:
        return boxes, np.zeros(0, np.float32)
    prob, offsets = ops.rnet(source, boxes, check)
    mask = prob > np.float32(params.thresholds[1])
    boxes, prob, offsets = boxes[mask], prob[mask], offsets[mask]
    keep = ops.nms(boxes, prob, float(C.NMS_RNET), C.NMS_MAX_OUTPUT)
    return square(regress(boxes[keep], offsets[keep])), prob[keep]


def onet_stage(
    source: F32, boxes: F32, ops: CascadeOps, params: DetectionParams, check: Check = never_stop
) -> Detections:
    """Final boxes, scores and landmarks."""
    if len(boxes) == 0:
        return Detections.empty()
    prob, offsets, marks = ops.onet(source, boxes, check)
    mask = prob > np.float32(params.thresholds[2])
    boxes, prob, offsets, marks = boxes[mask], prob[mask], offsets[mask], marks[mask]
    landmarks = landmarks_in_box(boxes, marks)
    boxes = regress(boxes, offsets)
    keep = ops.nms(boxes, prob, float(C.NMS_ONET), C.NMS_MAX_OUTPUT)
    return Detections(boxes[keep], prob[keep], landmarks[keep])


def lnet_stage(
    source: F32, found: Detections, ops: CascadeOps, check: Check = never_stop
) -> Detections:
    """``found`` with its landmarks refined by LNet (boxes and scores unchanged)."""
    if len(found.boxes) == 0:
        return found
    sizes = patch_sizes(found.boxes)
    fractions = ops.lnet(source, found.landmarks, sizes, check)
    return Detections(found.boxes, found.scores, refine_points(found.landmarks, fractions, sizes))


def run_cascade(
    source: F32,
    ops: CascadeOps,
    params: DetectionParams,
    *,
    refine_landmarks: bool = False,
    check: Check = never_stop,
) -> Detections:
    """The whole cascade on a normalised planar image ``(1, 3, H, W)``; with
    ``refine_landmarks``, LNet refines the landmarks after O-Net (``ops`` must have LNet).
    ``check`` runs between stages and inside them; whatever it raises stops the cascade."""
    check()
    boxes, _ = pnet_stage(source, ops, params, check)
    check()
    boxes, _ = rnet_stage(source, boxes, ops, params, check)
    check()
    found = onet_stage(source, boxes, ops, params, check)
    check()
    return lnet_stage(source, found, ops, check) if refine_landmarks else found
