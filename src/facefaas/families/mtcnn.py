"""The MTCNN family: the seed's three-stage cascade (P-Net, R-Net, O-Net, optional LNet) on ONNX
Runtime, with :class:`~facefaas.params.DetectionParams`."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.cost import Cost, estimate_cost
from facefaas.families.base import Check, Family, Found
from facefaas.params import DetectionParams

__all__ = ["MTCNN"]


class _Runner:
    def __init__(
        self,
        networks: Mapping[str, bytes],
        providers: Any,
        threads: int | None,
        pool: Executor | None,
    ) -> None:
        from facefaas.runtime.sessions import OnnxCascade

        self.ops = OnnxCascade(networks, providers=providers, threads=threads, pool=pool)
        self.provider = self.ops.provider

    def detect(self, rgb: npt.NDArray[np.uint8], params: DetectionParams, check: Check) -> Found:
        from facefaas.mtcnn.pipeline import normalize, run_cascade

        found = run_cascade(
            normalize(rgb), self.ops, params, refine_landmarks=self.ops.has_lnet, check=check
        )
        return Found(found.boxes, found.scores, found.landmarks)

    def close(self) -> None:
        self.ops.close()


def _estimate(width: int, height: int, params: DetectionParams) -> Cost:
    return estimate_cost(width, height, params)


MTCNN = Family(
    name="mtcnn",
    title="MTCNN",
    summary="the seed's cascade (Zhang et al. 2016): P-Net, R-Net, O-Net, five landmarks",
    bundle_format="facefaas-mtcnn-onnx",
    network_files={
        "pnet": "pnet.onnx",
        "rnet": "rnet.onnx",
        "onet": "onet.onnx",
        "lnet": "lnet.onnx",
    },
    parameter_names=("min_size", "thresholds", "factor"),
    params_type=DetectionParams,
    load=_Runner,
    estimate=_estimate,
    optional_networks=("lnet",),
    input_convention={
        "layout": "NCHW",
        "channels": "RGB",
        "mean": 127.5,
        "scale": 1 / 128,
        "description": "float32 (pixel - 127.5) / 128, RGB, images in normal orientation",
    },
)
