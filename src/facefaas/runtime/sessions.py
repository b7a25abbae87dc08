"""`OnnxNetworks`: the three MTCNN networks as ONNX Runtime sessions.

One instance is shared by every thread: ``InferenceSession.run`` is thread-safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelValidationError, ProviderError
from facefaas.runtime.providers import resolve_providers

__all__ = ["OnnxNetworks"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


class OnnxNetworks:
    """P-Net, R-Net and O-Net sessions built from serialized ONNX models.

    Args:
        networks: ``{"pnet": bytes, "rnet": bytes, "onet": bytes}`` serialized ONNX models.
        providers: see :func:`~facefaas.runtime.providers.resolve_providers`.
        threads: intra-op threads per session (default: all cores).
    """

    def __init__(
        self,
        networks: Mapping[str, bytes],
        *,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        chosen = resolve_providers(providers, ort.get_available_providers())
        options = _session_options(threads)
        self._sessions: dict[str, Any] = {}
        for net in ("pnet", "rnet", "onet"):
            try:
                self._sessions[net] = ort.InferenceSession(
                    networks[net], sess_options=options, providers=chosen
                )
            except KeyError:
                raise ModelValidationError(f"the model has no {net}") from None
            except Exception as exc:  # ORT raises its own exception types for bad models
                if "CUDA" in str(exc) and "CUDAExecutionProvider" in chosen:
                    raise ProviderError(f"CUDA could not be initialised: {exc}") from None
                raise ModelValidationError(f"{net}: ONNX Runtime cannot load it: {exc}") from None
        active = self._sessions["pnet"].get_providers()
        if chosen[0] not in active:
            raise ProviderError(f"{chosen[0]} was requested but ONNX Runtime uses {active[0]}")
        self.provider: str = active[0]
        log.info("MTCNN sessions ready on %s", self.provider)

    def pnet(self, image: F32) -> tuple[F32, F32]:
        prob, reg = self._sessions["pnet"].run(None, {"image": image})
        return prob[0, 1], reg[0]

    def rnet(self, crops: F32) -> tuple[F32, F32]:
        prob, reg = self._sessions["rnet"].run(None, {"image": crops})
        return prob[:, 1], reg

    def onet(self, crops: F32) -> tuple[F32, F32, F32]:
        prob, reg, landmarks = self._sessions["onet"].run(None, {"image": crops})
        return prob[:, 1], reg, landmarks
