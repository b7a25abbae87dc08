"""`Inference`: where :class:`~.service.Service` sends the images it has admitted and planned.

The service does everything before and after (keys, parsing, the typed request, cost planning,
usage and metrics); an ``Inference`` only runs the planned work of one model on one image or a
batch. :class:`LocalInference` is the plain service's: the bounded :class:`.pool.InferencePool`,
the :class:`.detectors.DetectorCache` and :mod:`.runner`, in this process. On Ray the same calls
go to detector replicas (:mod:`facefaas.scale.remote`), so every route, the seed's API and the
jobs worker run the same way wherever the models live.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from facefaas.deadline import Deadline
from facefaas.errors import FacefaasError
from facefaas.registry import ModelRecord
from facefaas.request import DetectionRequest
from facefaas.server.detectors import DetectorCache
from facefaas.server.pool import InferencePool
from facefaas.server.runner import RunOutput, run_batch, run_one

__all__ = ["Inference", "LocalInference"]


class Inference(Protocol):
    """Runs admitted, planned images of one model (``scale`` and ``cost`` from
    :mod:`.admission`; ``cost`` is the estimated peak memory in bytes)."""

    def refuse_if_full(self) -> None:
        """Raise :class:`~facefaas.errors.OverloadedError` if new work would be refused now
        (so a request is turned away before its body is read)."""

    async def run(
        self,
        record: ModelRecord,
        data: bytes,
        request: DetectionRequest,
        *,
        scale: float,
        cost: int,
        deadline: Deadline,
    ) -> RunOutput:
        """One image; raises the :class:`~facefaas.errors.FacefaasError` of a failure."""

    async def run_batch(
        self,
        record: ModelRecord,
        images: list[tuple[bytes, float]],
        request: DetectionRequest,
        *,
        cost: int,
        deadline: Deadline,
    ) -> list[RunOutput | FacefaasError]:
        """Each ``(image, scale)`` in one job; a failed image gets its error in its place."""

    async def load(self, record: ModelRecord) -> str:
        """Load ``record``'s detector where it runs (readiness); returns its provider."""


class LocalInference:
    """The plain service's inference: this process's pool, detector cache and runner."""

    def __init__(
        self,
        pool: InferencePool,
        detectors: DetectorCache,
        bundle_path: Callable[[ModelRecord], Path],
        *,
        max_pixels: int,
    ) -> None:
        self.pool = pool
        self.detectors = detectors
        self._bundle_path = bundle_path
        self._max_pixels = max_pixels

    def refuse_if_full(self) -> None:
        self.pool.refuse_if_full()

    async def run(
        self,
        record: ModelRecord,
        data: bytes,
        request: DetectionRequest,
        *,
        scale: float,
        cost: int,
        deadline: Deadline,
    ) -> RunOutput:
        path = await run_in_threadpool(self._bundle_path, record)

        def job() -> RunOutput:
            with self.detectors.lease((record.id, record.sha256), path) as detector:
                return run_one(
                    detector, data, request, model_id=record.id, max_pixels=self._max_pixels,
                    scale=scale, deadline=deadline,
                )  # fmt: skip

        return await self.pool.run(job, cost=cost, deadline=deadline)

    async def run_batch(
        self,
        record: ModelRecord,
        images: list[tuple[bytes, float]],
        request: DetectionRequest,
        *,
        cost: int,
        deadline: Deadline,
    ) -> list[RunOutput | FacefaasError]:
        path = await run_in_threadpool(self._bundle_path, record)

        def job() -> list[RunOutput | FacefaasError]:
            with self.detectors.lease((record.id, record.sha256), path) as detector:
                return run_batch(
                    detector, images, request, model_id=record.id,
                    max_pixels=self._max_pixels, deadline=deadline,
                )  # fmt: skip

        return await self.pool.run(job, cost=cost, deadline=deadline)

    async def load(self, record: ModelRecord) -> str:
        path = await run_in_threadpool(self._bundle_path, record)

        def load() -> str:
            with self.detectors.lease((record.id, record.sha256), path) as detector:
                return detector.provider

        return await run_in_threadpool(load)
