"""`OnnxCascade`: MTCNN's networks and sampling steps as ONNX Runtime sessions.

It implements :class:`facefaas.mtcnn.pipeline.CascadeOps` with the fused graphs of
:mod:`facefaas.runtime.graphs`. One instance is shared by every thread: ``InferenceSession.run``
is thread-safe and nothing here keeps per-call state.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelValidationError, ProviderError
from facefaas.mtcnn.constants import ONET_SIDE, RNET_SIDE
from facefaas.mtcnn.sampling import crop_grid
from facefaas.runtime import graphs
from facefaas.runtime.providers import resolve_providers

__all__ = ["OnnxCascade"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Several sessions run in turn (and requests run concurrently): spinning threads of an idle
    # session would steal the cores the next one needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _crop_inputs(source: F32, boxes: F32, side: int) -> dict[str, Any]:
    """RoiAlign inputs that sample exactly where TensorFlow's CropAndResize does."""
    _, _, height, width = source.shape
    grid = crop_grid(boxes, height, width, side)
    # RoiAlign (one sample per bin, legacy coordinates) samples bin k at x1 + (k + 0.5) * w / side.
    step_y = (grid.rows[:, -1] - grid.rows[:, 0]) / np.float32(side - 1)
    step_x = (grid.cols[:, -1] - grid.cols[:, 0]) / np.float32(side - 1)
    y1 = grid.rows[:, 0] - step_y / 2
    x1 = grid.cols[:, 0] - step_x / 2
    rois = np.stack([x1, y1, x1 + step_x * side, y1 + step_y * side], axis=1).astype(np.float32)
    inside = (grid.rows_inside[:, :, None] & grid.cols_inside[:, None, :]).astype(np.float32)
    return {
        "source": source,
        "rois": rois,
        "batch": np.zeros(len(boxes), np.int64),
        "inside": inside[:, None],
    }


class OnnxCascade:
    """The cascade's heavy steps on ONNX Runtime.

    Args:
        networks: ``{"pnet": bytes, "rnet": bytes, "onet": bytes}`` serialized pure networks.
        providers: see :func:`~facefaas.runtime.providers.resolve_providers`.
        threads: intra-op threads of each session (default: all cores).
    """

    def __init__(
        self,
        networks: Mapping[str, bytes],
        *,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnx
        import onnxruntime as ort

        chosen = resolve_providers(providers, ort.get_available_providers())
        options = _session_options(threads)
        try:
            pure = {net: onnx.load_from_string(networks[net]) for net in ("pnet", "rnet", "onet")}
        except KeyError as exc:
            raise ModelValidationError(f"the model has no {exc.args[0]}") from None
        except Exception as exc:  # protobuf's DecodeError and friends
            raise ModelValidationError(f"a network is not a readable ONNX model: {exc}") from None
        wrapped = {
            "pnet": graphs.pnet_with_resize(pure["pnet"]),
            "rnet": graphs.net_with_crops(pure["rnet"], RNET_SIDE),
            "onet": graphs.net_with_crops(pure["onet"], ONET_SIDE),
            "nms": graphs.nms_model(),
        }
        self._sessions: dict[str, Any] = {}
        for name, model in wrapped.items():
            try:
                self._sessions[name] = ort.InferenceSession(
                    model.SerializeToString(), sess_options=options, providers=chosen
                )
            except Exception as exc:  # ORT raises its own exception types for bad models
                if "CUDA" in str(exc) and "CUDAExecutionProvider" in chosen:
                    raise ProviderError(f"CUDA could not be initialised: {exc}") from None
                raise ModelValidationError(f"{name}: ONNX Runtime cannot load it: {exc}") from None
        active = self._sessions["pnet"].get_providers()
        if chosen[0] not in active:
            raise ProviderError(f"{chosen[0]} was requested but ONNX Runtime uses {active[0]}")
        self.provider: str = active[0]
        log.info("MTCNN sessions ready on %s", self.provider)

    def pnet(self, source: F32, height: int, width: int) -> tuple[F32, F32]:
        sizes = np.array([1, 3, height, width], np.int64)
        prob, reg = self._sessions["pnet"].run(None, {"source": source, "sizes": sizes})
        return prob[0, 1], reg[0]

    def rnet(self, source: F32, boxes: F32) -> tuple[F32, F32]:
        prob, reg = self._sessions["rnet"].run(None, _crop_inputs(source, boxes, RNET_SIDE))
        return prob[:, 1], reg

    def onet(self, source: F32, boxes: F32) -> tuple[F32, F32, F32]:
        prob, reg, landmarks = self._sessions["onet"].run(None, _crop_inputs(source, boxes, ONET_SIDE))
        return prob[:, 1], reg, landmarks

    def nms(self, boxes: F32, scores: F32, threshold: float, max_output: int) -> npt.NDArray[np.intp]:
        if len(scores) == 0:
            return np.zeros(0, np.intp)
        (selected,) = self._sessions["nms"].run(
            None,
            {
                "boxes": np.ascontiguousarray(boxes, np.float32)[None],
                "scores": np.ascontiguousarray(scores, np.float32)[None, None],
                "max_output": np.array([max_output], np.int64),
                "threshold": np.array([threshold], np.float32),
            },
        )
        return selected[:, 2].astype(np.intp)
