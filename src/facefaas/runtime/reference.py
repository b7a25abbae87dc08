"""`ReferenceCascade`: the cascade's steps with NumPy sampling and NMS, networks on ORT.

It follows TensorFlow's kernels operation by operation (see :mod:`facefaas.mtcnn.sampling`) and is
slow; it is the oracle the fused graphs of :class:`~facefaas.runtime.sessions.OnnxCascade` are
tested against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.mtcnn.constants import ONET_SIDE, RNET_SIDE
from facefaas.mtcnn.lnet import LNET_SIDE, patch_boxes
from facefaas.mtcnn.nms import nms
from facefaas.mtcnn.pipeline import Check, never_stop
from facefaas.mtcnn.sampling import crop_and_resize, resize_bilinear

__all__ = ["ReferenceCascade"]

F32 = npt.NDArray[np.float32]


class ReferenceCascade:
    """Implements :class:`facefaas.mtcnn.pipeline.CascadeOps` on pure networks (CPU); ``lnet``
    needs ``networks["lnet"]``."""

    def __init__(self, networks: Mapping[str, bytes]) -> None:
        import onnxruntime as ort

        self._sessions: dict[str, Any] = {
            net: ort.InferenceSession(networks[net], providers=["CPUExecutionProvider"])
            for net in ("pnet", "rnet", "onet", "lnet")
            if net in networks
        }

    def pnet(
        self, source: F32, sizes: Sequence[tuple[int, int]], check: Check = never_stop
    ) -> list[tuple[F32, F32]]:
        outputs = []
        for height, width in sizes:
            check()
            level = resize_bilinear(source[0], height, width)
            prob, reg = self._sessions["pnet"].run(None, {"image": level[None]})
            outputs.append((prob[0, 1], reg[0]))
        return outputs

    def rnet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32]:
        check()
        prob, reg = self._sessions["rnet"].run(
            None, {"image": crop_and_resize(source[0], boxes, RNET_SIDE)}
        )
        return prob[:, 1], reg

    def onet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32, F32]:
        check()
        crops = crop_and_resize(source[0], boxes, ONET_SIDE)
        prob, reg, landmarks = self._sessions["onet"].run(None, {"image": crops})
        return prob[:, 1], reg, landmarks

    def lnet(self, source: F32, points: F32, patch_sizes: F32, check: Check = never_stop) -> F32:
        check()
        crops = crop_and_resize(source[0], patch_boxes(points, patch_sizes), LNET_SIDE)
        stacked = crops.reshape(len(points), -1, LNET_SIDE, LNET_SIDE)
        (fractions,) = self._sessions["lnet"].run(None, {"image": stacked})
        return np.asarray(fractions, np.float32)

    def nms(
        self, boxes: F32, scores: F32, threshold: float, max_output: int
    ) -> npt.NDArray[np.intp]:
        return nms(boxes, scores, threshold, max_output)
