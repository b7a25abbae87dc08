"""`DetectorReplica`: the Ray Serve deployment that runs the models (the ingress plans, this runs).

Each replica holds the detectors of the models it serves in a bounded LRU cache through
``@serve.multiplexed`` (``ray_models_per_replica``), keyed by :func:`.loaded.model_key`; Serve's
router sends a model's requests to the replicas that already hold it, so a model is loaded where
it is used. Inside a replica the work runs as in the plain service: the bounded, cost-admitted
:class:`~facefaas.server.pool.InferencePool` and :mod:`facefaas.server.runner`, on one shared
cascade thread pool, so the answers are the plain service's, byte for byte.

Errors of the work (:class:`~facefaas.errors.FacefaasError`) come back as values, not raised:
Ray would wrap a raised one in its own error class, and the ingress answers them with their own
status. With ``ray_batching``, concurrent requests for one model are collected
(``@serve.batch``) and run as one job on one lease of the detector.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from ray import serve
from starlette.concurrency import run_in_threadpool

from facefaas.deadline import Deadline
from facefaas.detector import Detector
from facefaas.errors import FacefaasError
from facefaas.registry import ModelRecord, Registry
from facefaas.request import DetectionRequest
from facefaas.scale.loaded import LoadedModel, model_key
from facefaas.server.pool import InferencePool
from facefaas.server.runner import RunOutput, run_batch, run_one
from facefaas.settings import Settings

__all__ = ["DetectorReplica"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = RunOutput | FacefaasError


@dataclass(frozen=True)
class _Item:
    """One image waiting in a batch, with its own deadline."""

    record: ModelRecord
    data: bytes
    request: DetectionRequest
    scale: float
    cost: int
    deadline: Deadline


class DetectorReplica:
    """One detector replica: its models, its inference pool and its cascade threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry.open(
            settings.data_dir, settings.database_url, settings.shared_files
        )
        threads = settings.inference_threads
        self.cascade = ThreadPoolExecutor(threads, thread_name_prefix="facefaas-cascade")
        self.pool = InferencePool(
            threads,
            settings.queue_size,
            memory_budget=max(settings.memory_budget - settings.reserve_bytes, 16 * 2**20),
            retry_after=settings.retry_after,
        )
        # The record each key was last asked for: the loader receives only the key.
        self._records: dict[str, ModelRecord] = {}

        async def load(key: str) -> LoadedModel:
            return await run_in_threadpool(self._load, self._records[key])

        self._model: Callable[[str], Awaitable[LoadedModel]] = serve.multiplexed(
            max_num_models_per_replica=settings.ray_models_per_replica
        )(load)

        async def run_items(items: list[_Item]) -> list[Outcome]:
            return await self._run_items(items)

        self._batched: Callable[[_Item], Awaitable[Outcome]] | None = None
        if settings.ray_batching:
            self._batched = serve.batch(
                max_batch_size=settings.ray_batch_size,
                batch_wait_timeout_s=settings.ray_batch_wait,
                max_concurrent_batches=threads,
            )(run_items)

    def _load(self, record: ModelRecord) -> LoadedModel:
        providers = self.settings.providers
        chosen: str | list[str] | None = None
        if providers:
            chosen = providers[0] if len(providers) == 1 else list(providers)
        path = self.registry.bundle_path(record)
        log.info("loading model %s on this detector replica", record.id)
        return LoadedModel(Detector(str(path), providers=chosen, pool=self.cascade))

    async def _lease(self, record: ModelRecord) -> LoadedModel:
        key = model_key(record)
        self._records[key] = record
        return await self._model(key)

    async def _admitted(self, job: Callable[[], T], cost: int, deadline: Deadline) -> T:
        """``job`` on the pool; if the caller goes away (Ray cancels this task), its work is
        stopped at its next deadline check and its room in the pool is given back after."""
        task = asyncio.ensure_future(self.pool.run(job, cost=cost, deadline=deadline))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            deadline.cancel("the request was cancelled")
            raise

    # -- what the ingress calls (through its DeploymentHandle) ---------------------------------

    async def run(
        self,
        record: ModelRecord,
        data: bytes,
        request: DetectionRequest,
        scale: float,
        cost: int,
        seconds: float | None,
    ) -> Outcome:
        """One image (:meth:`facefaas.server.inference.Inference.run`); ``seconds`` left of its
        deadline."""
        item = _Item(record, data, request, scale, cost, Deadline(seconds))
        if self._batched is not None:
            return await self._batched(item)
        try:
            model = await self._lease(record)

            def job() -> RunOutput:
                with model.lease() as detector:
                    return self._run_one(detector, item)

            return await self._admitted(job, cost, item.deadline)
        except FacefaasError as exc:
            return exc

    async def run_batch(
        self,
        record: ModelRecord,
        images: list[tuple[bytes, float]],
        request: DetectionRequest,
        cost: int,
        seconds: float | None,
    ) -> list[Outcome] | FacefaasError:
        """A batch request's images in one job (:meth:`facefaas.server.inference.Inference.
        run_batch`)."""
        deadline = Deadline(seconds)
        max_pixels = self.settings.max_pixels
        try:
            model = await self._lease(record)

            def job() -> list[Outcome]:
                with model.lease() as detector:
                    return run_batch(
                        detector, images, request, model_id=record.id, max_pixels=max_pixels,
                        deadline=deadline,
                    )  # fmt: skip

            return await self._admitted(job, cost, deadline)
        except FacefaasError as exc:
            return exc

    async def load(self, record: ModelRecord) -> str | FacefaasError:
        """Load ``record``'s model here (readiness); its execution provider."""
        try:
            return (await self._lease(record)).detector.provider
        except FacefaasError as exc:
            return exc

    def _run_one(self, detector: Detector, item: _Item) -> RunOutput:
        return run_one(
            detector, item.data, item.request, model_id=item.record.id,
            max_pixels=self.settings.max_pixels, scale=item.scale, deadline=item.deadline,
        )  # fmt: skip

    async def _run_items(self, items: list[_Item]) -> list[Outcome]:
        """A batch of requests for one model (Serve splits batches by model): one lease, one
        job; each item keeps its own request, scale, deadline and error."""
        try:
            model = await self._lease(items[0].record)
        except FacefaasError as exc:
            return [exc] * len(items)

        def job() -> list[Outcome]:
            outcomes: list[Outcome] = []
            with model.lease() as detector:
                for item in items:
                    try:
                        outcomes.append(self._run_one(detector, item))
                    except FacefaasError as exc:
                        outcomes.append(exc)
            return outcomes

        deadline = max(items, key=lambda item: item.deadline.remaining or 0.0).deadline
        try:
            return await self._admitted(job, sum(item.cost for item in items), deadline)
        except FacefaasError as exc:
            return [exc] * len(items)

    def __del__(self) -> None:
        # Serve calls this when the replica stops: no new work is coming.
        self.pool.shutdown()
        self.cascade.shutdown(wait=False)
        self.registry.close()
