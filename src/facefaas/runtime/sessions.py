"""`OnnxCascade`: MTCNN's networks and sampling steps as ONNX Runtime sessions.

It implements :class:`facefaas.mtcnn.pipeline.CascadeOps` with the fused graphs of
:mod:`facefaas.runtime.graphs`. One instance is shared by every thread: ``InferenceSession.run``
is thread-safe and nothing here keeps per-call state.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelValidationError, ParameterError, ProviderError
from facefaas.mtcnn.constants import ONET_SIDE, RNET_SIDE
from facefaas.mtcnn.lnet import LNET_SIDE, patch_boxes
from facefaas.mtcnn.pipeline import Check, never_stop
from facefaas.runtime import graphs
from facefaas.runtime.providers import resolve_providers

__all__ = ["OnnxCascade"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]

_T = TypeVar("_T")
_R = TypeVar("_R")

_BAND_LEVEL_PIXELS = 60_000  # pyramid levels larger than this run in bands of output rows
_BAND_PIXELS = 40_000  # about this many level pixels per band: activations stay in cache
_RNET_CHUNK = 32  # crops per R-Net call (see OnnxCascade._run_chunked)
_ONET_CHUNK = 8
_LNET_PATCHES = 5  # per face
_LNET_CHUNK = 8 * _LNET_PATCHES  # patches per LNet call: whole faces only


def _session_options(*, arena: bool) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Each run is single-threaded: MTCNN's layers are too small for intra-op threads to pay off
    # (measured), so parallelism comes from running pyramid levels and crop chunks side by side.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    # ONNX Runtime's memory arena keeps the largest buffers a session ever needed for the life of
    # the process. Sessions whose buffers are bounded (crop chunks, P-Net bands and small levels)
    # keep it: allocating and faulting in fresh pages every run costs R-Net and O-Net ~15%.
    # The whole-level resize of a 14-Mpx photo must give its memory back (see README).
    options.enable_cpu_mem_arena = arena
    return options


class OnnxCascade:
    """The cascade's heavy steps on ONNX Runtime.

    Args:
        networks: ``{"pnet": bytes, "rnet": bytes, "onet": bytes}`` serialized pure networks,
            and ``"lnet"`` for a model with landmark refinement (:attr:`has_lnet`).
        providers: see :func:`~facefaas.runtime.providers.resolve_providers`.
        threads: how many pyramid levels or crop chunks run at once (default: all cores).
        pool: run them on this executor instead (shared by several models; ``threads`` is then
            ignored, and :meth:`close` leaves it running: its owner shuts it down).

    :meth:`close` (or leaving a ``with`` block) shuts down the pool it started and releases the
    sessions; the cascade cannot run afterwards.
    """

    def __init__(
        self,
        networks: Mapping[str, bytes],
        *,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
        pool: Executor | None = None,
    ) -> None:
        import onnx
        import onnxruntime as ort

        chosen = resolve_providers(providers, ort.get_available_providers())
        workers = threads or (os.cpu_count() or 1)
        if workers < 1:
            raise ParameterError(f"threads must be >= 1, got {threads}")
        self._own_pool = pool is None and workers > 1
        self._pool: Executor | None = pool
        if self._own_pool:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="facefaas")
        try:
            pure = {net: onnx.load_from_string(networks[net]) for net in ("pnet", "rnet", "onet")}
            if "lnet" in networks:
                pure["lnet"] = onnx.load_from_string(networks["lnet"])
        except KeyError as exc:
            raise ModelValidationError(f"the model has no {exc.args[0]}") from None
        except Exception as exc:  # protobuf's DecodeError and friends
            raise ModelValidationError(f"a network is not a readable ONNX model: {exc}") from None
        pnet = graphs.pnet_logits(pure["pnet"])
        wrapped = {
            "pnet": graphs.pnet_with_resize(pnet),
            "pnet_bands": pnet,
            "resize": graphs.resize_model(),
            "rnet": graphs.net_with_crops(pure["rnet"], RNET_SIDE),
            "onet": graphs.net_with_crops(pure["onet"], ONET_SIDE),
            "nms": graphs.nms_model(),
        }
        if "lnet" in pure:
            wrapped["lnet"] = graphs.lnet_with_patches(pure["lnet"], LNET_SIDE, _LNET_PATCHES)
        self._sessions: dict[str, Any] = {}
        for name, model in wrapped.items():
            try:
                self._sessions[name] = ort.InferenceSession(
                    model.SerializeToString(),
                    sess_options=_session_options(arena=name != "resize"),
                    providers=chosen,
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

    def close(self) -> None:
        """Shut down the pool this cascade started and drop its sessions (idempotent)."""
        if self._own_pool and self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self._own_pool = False
        self._sessions = {}

    def __enter__(self) -> OnnxCascade:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def has_lnet(self) -> bool:
        """Whether the model has LNet, so :meth:`lnet` can run."""
        return "lnet" in self._sessions

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if self._pool is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def pnet(
        self, source: F32, sizes: Sequence[tuple[int, int]], check: Check = never_stop
    ) -> list[tuple[F32, F32]]:
        """P-Net on every level. Large levels run a band of output rows at a time, so that
        their activations (hundreds of MB for a 14-Mpx photo) never exist all at once: they are
        resized first, side by side, then the bands of every large level and the small levels
        (resize and P-Net in one run each) form one list of tasks for the pool, largest first,
        so that no core waits at the end of a level. ``check`` runs before every resize and
        band, so a stopped request gives its cores back within one band.

        Output row ``i`` sees level rows ``2i .. 2i + 11`` (conv3x3, pool 2/2, conv3x3, conv3x3);
        bands start on even rows so the pooling grid is the whole level's: the result is the same.
        """
        large = [i for i, (h, w) in enumerate(sizes) if h * w > _BAND_LEVEL_PIXELS]

        def resize(i: int) -> F32:
            check()
            return self._resize(source, sizes[i])

        resized = self._map(resize, large)
        levels = dict(zip(large, resized, strict=True))
        tasks: list[tuple[int, int, int]] = []  # (level, first and last output row); 0, 0: all
        for i in large:
            height, width = sizes[i]
            rows = (height - 2) // 2 - 4
            band = max(16, _BAND_PIXELS // width)
            tasks += [(i, start, min(start + band, rows)) for start in range(0, rows, band)]
        tasks += [(i, 0, 0) for i in range(len(sizes)) if i not in levels]  # pyramid order

        def run(task: tuple[int, int, int]) -> list[F32]:
            check()
            i, start, stop = task
            if i in levels:
                image = levels[i][:, :, 2 * start : 2 * stop + 10]
                band: list[F32] = self._sessions["pnet_bands"].run(None, {"image": image})
                return band
            feed = {"source": source, "sizes": np.array([1, 3, *sizes[i]], np.int64)}
            whole: list[F32] = self._sessions["pnet"].run(None, feed)
            return whole

        by_level: list[list[list[F32]]] = [[] for _ in sizes]  # bands in row order
        for task, part in zip(tasks, self._map(run, tasks), strict=True):
            by_level[task[0]].append(part)
        outputs = []
        for parts in by_level:
            logits = np.concatenate([part[0][0] for part in parts], axis=1)
            reg = np.concatenate([part[1][0] for part in parts], axis=1)
            outputs.append((graphs.face_probability(logits), reg))
        return outputs

    def _resize(self, source: F32, size: tuple[int, int]) -> F32:
        (level,) = self._sessions["resize"].run(
            None, {"source": source, "sizes": np.array([1, 3, *size], np.int64)}
        )
        resized: F32 = level
        return resized

    def _run_chunked(
        self, net: str, source: F32, boxes: F32, chunk: int, check: Check
    ) -> list[F32]:
        # Small chunks keep each layer's activations in the core's cache: one call over
        # hundreds of crops streams tens of MB per layer through memory (measured ~15% slower).
        session = self._sessions[net]
        rois = graphs.crop_rois(boxes, *source.shape[2:])
        starts = list(range(0, len(boxes), chunk))

        def run(i: int) -> list[F32]:
            check()
            part: list[F32] = session.run(None, {"source": source, "rois": rois[i : i + chunk]})
            return part

        parts = self._map(run, starts)
        return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]

    def rnet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32]:
        prob, reg = self._run_chunked("rnet", source, boxes, _RNET_CHUNK, check)
        return prob[:, 1], reg

    def onet(self, source: F32, boxes: F32, check: Check = never_stop) -> tuple[F32, F32, F32]:
        prob, reg, landmarks = self._run_chunked("onet", source, boxes, _ONET_CHUNK, check)
        return prob[:, 1], reg, landmarks

    def lnet(self, source: F32, points: F32, patch_sizes: F32, check: Check = never_stop) -> F32:
        if not self.has_lnet:
            raise ModelValidationError("the model has no LNet (landmark refinement)")
        boxes = patch_boxes(points, patch_sizes)
        (fractions,) = self._run_chunked("lnet", source, boxes, _LNET_CHUNK, check)
        return fractions

    def nms(
        self, boxes: F32, scores: F32, threshold: float, max_output: int
    ) -> npt.NDArray[np.intp]:
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
        kept: npt.NDArray[np.intp] = selected[:, 2].astype(np.intp)
        return kept
