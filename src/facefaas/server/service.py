"""`Service`: what the routes call. It wires the registry, keys, limits and inference together.

Routes parse HTTP, build the typed :class:`~facefaas.request.DetectionRequest` and shape
responses; who may do what is checked once, by the routes' dependencies (:mod:`.routes.deps`),
before anything here is called. This class delegates the work: :mod:`facefaas.registry` for
models, :mod:`.runner` (on the :class:`.pool.InferencePool`) for images,
:class:`.imports.ImportWorkers` (a confined child process per import, never the inference pool)
for uploads. Blocking calls never run on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from facefaas.deadline import Deadline
from facefaas.errors import (
    CancelledError,
    FacefaasError,
    IdempotencyConflictError,
    OverloadedError,
)
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.registry import CreatedModel, Creation, ModelRecord, Registry, UploadQuota
from facefaas.request import DetectionRequest
from facefaas.server.admission import RunPlan, plan_batch, plan_run
from facefaas.server.detectors import DetectorCache
from facefaas.server.imports import ImportJob, ImportLimits, ImportWorkers
from facefaas.server.inference import Inference, LocalInference
from facefaas.server.inprogress import UploadsInProgress
from facefaas.server.metrics import Metrics
from facefaas.server.pool import InferencePool
from facefaas.server.ratelimit import RateLimiter
from facefaas.server.redis_link import RedisLink
from facefaas.server.runner import RunOutput
from facefaas.server.usage import UsageBuffer
from facefaas.settings import Settings

if TYPE_CHECKING:
    from facefaas.models.importing import ImportedModel
    from facefaas.server.jobs import JobWorker

__all__ = ["ModelUpload", "Service"]

log = logging.getLogger(__name__)

_USAGE_FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class ModelUpload:
    """A model's file(s) and what the uploader said about it.

    ``files`` are ``(filename, bytes)``: one file (a zip, a ``.pb``) or a model's several files
    (``det1``-``det3.caffemodel``, ``pnet/rnet/onet.pt``), each with its name.
    """

    files: Sequence[tuple[str | None, bytes]]
    name: str | None = None
    description: str | None = None
    format: str | None = None
    private: bool = False


class Service:
    """The state of one app: open it with :meth:`start`, close it with :meth:`stop`.

    ``inference`` runs the planned images (default: :class:`.inference.LocalInference` on this
    process's pool and detector cache; on Ray, the detector replicas).
    """

    def __init__(self, settings: Settings, *, inference: Inference | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.metrics_dir)
        # Counts shared by every process and replica, when there is a Redis (docs/service.md,
        # "Counting across processes"); the pool, caches and body budget below are this
        # process's own resources and stay counted here.
        self.redis = (
            RedisLink(
                settings.redis_url.get_secret_value(),
                timeout=settings.redis_timeout,
                on_error=self.metrics.redis_error,
            )
            if settings.redis_url is not None
            else None
        )
        self.limiter = RateLimiter(settings.rate_limit, settings.key_rate_limit, redis=self.redis)
        self.pool = InferencePool(
            settings.inference_threads,
            settings.queue_size,
            memory_budget=max(settings.memory_budget - settings.reserve_bytes, 16 * 2**20),
            retry_after=settings.retry_after,
            on_change=self.metrics.inference_pending.set,
        )
        self.draining = False
        # When the last synchronous request arrived (time.monotonic()): jobs borrow the threads
        # kept for synchronous calls only after none has come for ``job_borrow_after`` seconds.
        self.foreground_at = float("-inf")
        self._in_flight: weakref.WeakSet[Deadline] = weakref.WeakSet()
        self.detectors = DetectorCache(
            settings.model_cache_size,
            providers=settings.providers or None,
            threads=settings.inference_threads,
        )
        self.inference: Inference = inference or LocalInference(
            self.pool,
            self.detectors,
            lambda record: self.registry.bundle_path(record),
            max_pixels=settings.max_pixels,
        )
        self.usage = UsageBuffer()
        self.imports = ImportWorkers(
            settings.import_workers,
            settings.import_queue_size,
            ImportLimits(
                cpu_seconds=settings.import_cpu_seconds,
                memory_bytes=settings.import_memory_bytes,
                wall_seconds=settings.import_wall_seconds,
            ),
            retry_after=settings.retry_after,
        )
        self.quota = UploadQuota(
            models=settings.upload_quota_models,
            bytes=settings.upload_quota_bytes,
            storage_bytes=settings.storage_bytes,
        )
        # A mark outlives the longest import it guards, not a killed process for long.
        self.uploads_in_progress = UploadsInProgress(
            self.redis, ttl=settings.import_wall_seconds + settings.request_timeout
        )
        self._registry: Registry | None = None
        self.ready = False
        self.provider: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs: JobWorker | None = None  # jobs' store and worker, once started

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise OverloadedError("the service is starting", retry_after=1)
        return self._registry

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, reconcile: bool) -> None:
        """Open the registry (reconciling it if this process owns startup), load the default."""
        settings = self.settings
        if settings.providers:
            # Fail the startup, loudly, when an accelerator asked for is not there.
            import onnxruntime

            from facefaas.runtime.providers import resolve_providers

            wanted = settings.providers
            resolve_providers(
                wanted[0] if len(wanted) == 1 else wanted, onnxruntime.get_available_providers()
            )
        self._registry = await run_in_threadpool(
            Registry.open, settings.data_dir, settings.database_url, settings.shared_files
        )
        if reconcile:
            await run_in_threadpool(self._registry.reconcile)
        if self.redis is not None:
            log.info("rate limits and uploads in progress counted in Redis at %s", self.redis.shown)
        self._drain_on_sigterm()
        self._tasks = [
            asyncio.create_task(self._load_default()),
            asyncio.create_task(self._flush_usage_forever()),
        ]
        from facefaas.server.jobs import JobWorker

        self.jobs = await run_in_threadpool(JobWorker.open, self)
        if settings.job_worker:
            self.jobs.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.jobs is not None:
            await self.jobs.stop()  # unfinished job items go back to the queue
        await self.flush_usage()
        await run_in_threadpool(self.pool.shutdown)
        await run_in_threadpool(self.detectors.close)
        await run_in_threadpool(self.imports.close)
        if self._registry is not None:
            self._registry.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.metrics.close()

    async def _load_default(self) -> None:
        try:
            record = await run_in_threadpool(self.registry.get, DEFAULT_MODEL)
            provider = await self.inference.load(record)
        except Exception:
            log.exception("could not load the default model %r; /readyz stays 503", DEFAULT_MODEL)
            return
        self.provider = provider
        self.ready = True
        log.info("default model %r loaded (%s)", DEFAULT_MODEL, provider)

    async def _flush_usage_forever(self) -> None:
        while True:
            await asyncio.sleep(_USAGE_FLUSH_SECONDS)
            try:
                await self.flush_usage()
            except Exception:
                log.exception("could not record usage counters; will retry")

    async def flush_usage(self) -> None:
        """Write this worker's buffered usage counters to the registry."""
        pending = self.usage.drain()
        if pending and self._registry is not None:
            registry = self._registry

            def write() -> None:
                for model_id, c in pending.items():
                    registry.record_usage(
                        model_id,
                        calls=c.calls,
                        faces=c.faces,
                        errors=c.errors,
                        latency_ms=c.latency_ms,
                    )

            await run_in_threadpool(write)

    # -- running models --------------------------------------------------------------------

    def deadline(self) -> Deadline:
        """A new request's deadline (``request_timeout`` from now), cancelled if the server
        drains. Refuses at once (503) while draining."""
        if self.draining:
            raise CancelledError("the server is shutting down; retry on another instance")
        deadline = Deadline(self.settings.request_timeout)
        self._in_flight.add(deadline)
        return deadline

    def begin_drain(self) -> None:
        """Stop taking requests; work in flight may go on for ``drain_seconds``, then it is
        stopped and answered 503 (call on the event loop when SIGTERM arrives)."""
        if self.draining:
            return
        self.draining = True
        grace = self.settings.drain_seconds
        log.info("draining: %d requests in flight get %.0f s", len(self._in_flight), grace)
        asyncio.get_running_loop().call_later(grace, self._cancel_in_flight)

    def _drain_on_sigterm(self) -> None:
        """Chain :meth:`begin_drain` before the SIGTERM handler the server (uvicorn) installed.

        Only in the main thread, where Python runs signal handlers (not when the app is served
        from a test's thread).
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.begin_drain)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _cancel_in_flight(self) -> None:
        for deadline in list(self._in_flight):
            deadline.cancel("the server is shutting down and could not finish this in time")

    def _plan(self, data: bytes, request: DetectionRequest) -> RunPlan:
        settings = self.settings
        return plan_run(
            data, request, limit_bytes=settings.max_request_bytes, max_pixels=settings.max_pixels
        )

    async def run(
        self,
        record: ModelRecord,
        data: bytes,
        request: DetectionRequest,
        deadline: Deadline | None = None,
        *,
        background: bool = False,
    ) -> RunOutput:
        """Run one image through ``request`` on the inference pool, admitted by its estimated
        cost, stopped by ``deadline``; counts usage and metrics. ``background``: a job's image
        (it does not count as synchronous activity, :attr:`foreground_at`)."""
        if not background:
            self.foreground_at = time.monotonic()
        deadline = deadline or self.deadline()
        start = time.perf_counter()
        try:
            plan = await run_in_threadpool(self._plan, data, request)
            output = await self.inference.run(
                record, data, request, scale=plan.scale, cost=plan.cost.peak_bytes,
                deadline=deadline,
            )  # fmt: skip
        except FacefaasError as exc:
            if not isinstance(exc, OverloadedError):
                self.usage.add(record.id, faces=0, latency_ms=0.0, error=True)
            raise
        seconds = time.perf_counter() - start
        self.metrics.observe_inference(
            record.id, request.function.name, seconds, len(output.faces), private=record.private
        )
        self.usage.add(record.id, faces=len(output.faces), latency_ms=seconds * 1000, error=False)
        return output

    async def run_batch(
        self,
        record: ModelRecord,
        files: list[tuple[str | None, bytes]],
        request: DetectionRequest,
        deadline: Deadline | None = None,
    ) -> list[RunOutput | FacefaasError]:
        """Every image of a batch in one job, admitted by the sum of their estimated costs;
        an image that cannot be planned or run gets its own error."""
        self.foreground_at = time.monotonic()
        deadline = deadline or self.deadline()
        settings = self.settings
        plans = await run_in_threadpool(
            lambda: plan_batch(
                [data for _, data in files], request,
                limit_bytes=settings.max_request_bytes, max_pixels=settings.max_pixels,
            )
        )  # fmt: skip
        runnable = [
            (data, plan.scale)
            for (_, data), plan in zip(files, plans, strict=True)
            if isinstance(plan, RunPlan)
        ]
        cost = sum(plan.cost.peak_bytes for plan in plans if isinstance(plan, RunPlan))
        ran = iter(
            await self.inference.run_batch(record, runnable, request, cost=cost, deadline=deadline)
            if runnable
            else []
        )
        results = [next(ran) if isinstance(plan, RunPlan) else plan for plan in plans]
        for result in results:
            if isinstance(result, RunOutput):
                seconds = result.timings_ms.get("total", 0.0) / 1000
                self.metrics.observe_inference(
                    record.id, "batch", seconds, len(result.faces), private=record.private
                )
                self.usage.add(record.id, faces=len(result.faces), latency_ms=seconds * 1000)
            else:
                self.usage.add(record.id, faces=0, latency_ms=0.0, error=True)
        return results

    # -- managing models -------------------------------------------------------------------

    async def get_model(self, model_id: str) -> ModelRecord:
        await self.flush_usage()
        return await run_in_threadpool(self.registry.get, model_id)

    async def list_models(self) -> list[ModelRecord]:
        await self.flush_usage()
        return await run_in_threadpool(self.registry.list)

    async def create_model(
        self, upload: ModelUpload, creation: Creation
    ) -> tuple[CreatedModel, list[str]]:
        """Import, validate and register an upload for ``creation.owner``, within its quota.

        A retry with the Idempotency-Key of a model already created gets that model back (keys
        issued again) without importing anything; the same key while its first request is still
        in progress is a 409. Returns the model and the import's warnings.
        """
        key = creation.idempotency_key
        if key is not None and not await self.uploads_in_progress.begin(creation.owner, key):
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is in progress; retry when it is done",
                retry_after=self.settings.retry_after,
            )
        try:
            replayed = await run_in_threadpool(self.registry.replay, creation)
            if replayed is not None:
                return replayed, []
            await run_in_threadpool(self.registry.check_quota, creation.owner, self.quota)
            imported = await self._import(upload)
            created = await run_in_threadpool(
                lambda: self.registry.create(
                    imported.stored(),
                    imported.manifest,
                    source_format=imported.format,
                    name=upload.name,
                    description=upload.description,
                    private=upload.private,
                    creation=creation,
                    quota=self.quota,
                )
            )
        finally:
            if key is not None:
                await self.uploads_in_progress.end(creation.owner, key)
        return created, list(imported.warnings)

    async def replace_model(self, record: ModelRecord, upload: ModelUpload) -> ModelRecord:
        """New weights for ``record`` (same id); no other model changes."""
        imported = await self._import(upload)
        return await run_in_threadpool(
            lambda: self.registry.replace(
                record.id,
                imported.stored(),
                imported.manifest,
                source_format=imported.format,
                name=upload.name,
                description=upload.description,
                quota=self.quota,
            )
        )

    async def delete_model(self, record: ModelRecord) -> None:
        await run_in_threadpool(self.registry.delete, record.id)

    async def make_private(self, record: ModelRecord) -> str:
        return await run_in_threadpool(self.registry.make_private, record.id)

    async def make_public(self, record: ModelRecord) -> None:
        await run_in_threadpool(self.registry.make_public, record.id)

    async def set_config(self, record: ModelRecord, config: Mapping[str, Any]) -> ModelRecord:
        """Store run defaults; the detection parameters among them are validated first, as
        parameters of the model's family (ParameterError, 422, if out of range or foreign)."""
        from facefaas.families import get_family
        from facefaas.server.edge import family_params
        from facefaas.server.schemas import ModelConfig

        given = ModelConfig.model_validate(dict(config))
        family_params(get_family(record.family), given, ModelConfig(), record.parameters)
        return await run_in_threadpool(self.registry.set_config, record.id, config)

    async def _import(self, upload: ModelUpload) -> ImportedModel:
        """Import in a confined child process (:mod:`.imports`); call inside
        ``self.imports.admit()``."""
        job = ImportJob(
            upload_source(upload.files),
            name=upload.name,
            description=upload.description,
            format=upload.format,
            max_bytes=self.settings.max_model_bytes,
        )
        return await self.imports.run(job)


def upload_source(files: Sequence[tuple[str | None, bytes]]) -> bytes | dict[str, bytes]:
    """What the importer reads: one unnamed file as bytes, else ``{file name: bytes}``.

    File names help the importer tell formats apart; only their last part is used. Several
    files need names, and different ones.
    """
    from facefaas.errors import InputError

    if len(files) == 1 and not files[0][0]:
        return files[0][1]
    named: dict[str, bytes] = {}
    for filename, data in files:
        name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not name:
            raise InputError("with several model files, each part needs a file name")
        if name in named:
            raise InputError(f"two model files are named {name!r}")
        named[name] = data
    return named
