"""`Service`: what the routes call. It wires the registry, keys, limits and inference together.

Routes parse HTTP and shape responses; this class decides (who may, which model, which
parameters) and delegates the work: :mod:`facefaas.registry` for models, :mod:`.runner` (on the
:class:`.pool.InferencePool`) for images, :func:`facefaas.models.importing.import_model` for
uploads. Blocking calls never run on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from facefaas.errors import FacefaasError, OverloadedError
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.params import DetectionParams
from facefaas.registry import CreatedModel, ModelRecord, Registry
from facefaas.server.auth import authorize_admin, authorize_upload, authorize_use
from facefaas.server.detectors import DetectorCache
from facefaas.server.metrics import Metrics
from facefaas.server.pool import InferencePool
from facefaas.server.ratelimit import RateLimiter
from facefaas.server.runner import (
    DEFAULT_QUALITY,
    Function,
    RunOutput,
    RunSpec,
    run_batch,
    run_one,
)
from facefaas.server.usage import UsageBuffer
from facefaas.settings import Settings

if TYPE_CHECKING:
    from facefaas.models.importing import ImportedModel

__all__ = ["ModelUpload", "Service"]

log = logging.getLogger(__name__)

_DETECTION_KEYS = ("min_size", "thresholds", "factor")
_USAGE_FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class ModelUpload:
    """A model file and what the uploader said about it."""

    data: bytes
    filename: str | None = None
    name: str | None = None
    description: str | None = None
    format: str | None = None
    private: bool = False


class Service:
    """The state of one app: open it with :meth:`start`, close it with :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.metrics_dir)
        self.limiter = RateLimiter(settings.rate_limit)
        self.pool = InferencePool(
            settings.inference_threads,
            settings.queue_size,
            retry_after=settings.retry_after,
            on_change=self.metrics.inference_pending.set,
        )
        self.detectors = DetectorCache(
            settings.model_cache_size, providers=settings.providers or None
        )
        self.usage = UsageBuffer()
        self._registry: Registry | None = None
        self.ready = False
        self.provider: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
            Registry.open, settings.data_dir, settings.database_url
        )
        if reconcile:
            await run_in_threadpool(self._registry.reconcile)
        self._tasks = [
            asyncio.create_task(self._load_default()),
            asyncio.create_task(self._flush_usage_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush_usage()
        await run_in_threadpool(self.pool.shutdown)
        if self._registry is not None:
            self._registry.close()
        self.metrics.close()

    async def _load_default(self) -> None:
        try:
            record = await run_in_threadpool(self.registry.get, DEFAULT_MODEL)
            path = self.registry.bundle_path(record)
            detector = await run_in_threadpool(self.detectors.get, (record.id, record.sha256), path)
        except Exception:
            log.exception("could not load the default model %r; /readyz stays 503", DEFAULT_MODEL)
            return
        self.provider = detector.provider
        self.ready = True
        log.info("default model %r loaded (%s)", DEFAULT_MODEL, detector.provider)

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

    async def model_for_use(self, model_id: str, keys: list[str]) -> ModelRecord:
        record = await run_in_threadpool(self.registry.get, model_id)
        authorize_use(record, keys)
        return record

    def spec(
        self, record: ModelRecord, function: Function, params: Mapping[str, Any], fmt: str | None
    ) -> RunSpec:
        """The job of one request: the model's defaults overlaid by the request's parameters."""
        config = record.config
        detection = {
            k: v for k in _DETECTION_KEYS if (v := params.get(k, config.get(k))) is not None
        }
        base = DetectionParams.from_mapping(record.parameters)
        options = {k: v for k, v in params.items() if v is not None and k not in _DETECTION_KEYS}
        options.pop("format", None)
        max_faces = options.pop("max_faces", config.get("max_faces"))
        score_threshold = options.pop("score_threshold", config.get("score_threshold"))
        quality = options.pop("quality", None) or DEFAULT_QUALITY
        return RunSpec(
            function=function,
            model_id=record.id,
            params=DetectionParams.from_mapping(detection, base=base),
            max_pixels=self.settings.max_pixels,
            max_faces=max_faces,
            score_threshold=float(score_threshold or 0.0),
            format="png" if fmt == "png" else "jpeg",
            quality=int(quality),
            **options,
        )

    async def run(self, record: ModelRecord, data: bytes, spec: RunSpec) -> RunOutput:
        """Run one image through ``spec`` on the inference pool; counts usage and metrics."""
        path = await run_in_threadpool(self.registry.bundle_path, record)
        key = (record.id, record.sha256)
        start = time.perf_counter()

        def job() -> RunOutput:
            return run_one(self.detectors.get(key, path), data, spec)

        try:
            output = await self.pool.run(job)
        except FacefaasError as exc:
            if not isinstance(exc, OverloadedError):
                self.usage.add(record.id, faces=0, latency_ms=0.0, error=True)
            raise
        seconds = time.perf_counter() - start
        self.metrics.observe_inference(record.id, spec.function, seconds, len(output.faces))
        self.usage.add(record.id, faces=len(output.faces), latency_ms=seconds * 1000, error=False)
        return output

    async def run_batch(
        self, record: ModelRecord, files: list[tuple[str | None, bytes]], spec: RunSpec
    ) -> list[RunOutput | FacefaasError]:
        path = await run_in_threadpool(self.registry.bundle_path, record)
        key = (record.id, record.sha256)

        def job() -> list[RunOutput | FacefaasError]:
            return run_batch(self.detectors.get(key, path), files, spec)

        results = await self.pool.run(job)
        for result in results:
            if isinstance(result, RunOutput):
                seconds = result.timings_ms.get("total", 0.0) / 1000
                self.metrics.observe_inference(record.id, "batch", seconds, len(result.faces))
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

    def check_upload(self, keys: list[str]) -> None:
        """Pass if ``keys`` may upload (the server's upload token, when one is set)."""
        authorize_upload(self.settings.upload_token, keys)

    async def create_model(
        self, upload: ModelUpload, keys: list[str]
    ) -> tuple[CreatedModel, list[str]]:
        """Import, validate and register an upload. Returns the new model and import warnings."""
        self.check_upload(keys)
        imported = await run_in_threadpool(self._import, upload)
        created = await run_in_threadpool(
            lambda: self.registry.create(
                imported.weights,
                imported.manifest,
                source_format=imported.format,
                name=upload.name,
                description=upload.description,
                private=upload.private,
            )
        )
        return created, list(imported.warnings)

    async def replace_model(
        self, model_id: str, upload: ModelUpload, keys: list[str]
    ) -> ModelRecord:
        record = await run_in_threadpool(self.registry.get, model_id)
        authorize_admin(record, keys)
        imported = await run_in_threadpool(self._import, upload)
        return await run_in_threadpool(
            lambda: self.registry.replace(
                model_id,
                imported.weights,
                imported.manifest,
                source_format=imported.format,
                name=upload.name,
                description=upload.description,
            )
        )

    async def admin(self, model_id: str, keys: list[str]) -> ModelRecord:
        """The model, once ``keys`` are shown to hold its admin key."""
        record = await run_in_threadpool(self.registry.get, model_id)
        authorize_admin(record, keys)
        return record

    async def delete_model(self, model_id: str, keys: list[str]) -> None:
        await self.admin(model_id, keys)
        await run_in_threadpool(self.registry.delete, model_id)

    async def make_private(self, model_id: str, keys: list[str]) -> str:
        await self.admin(model_id, keys)
        return await run_in_threadpool(self.registry.make_private, model_id)

    async def make_public(self, model_id: str, keys: list[str]) -> None:
        await self.admin(model_id, keys)
        await run_in_threadpool(self.registry.make_public, model_id)

    async def set_config(
        self, model_id: str, config: dict[str, Any], keys: list[str]
    ) -> ModelRecord:
        await self.admin(model_id, keys)
        detection = {k: v for k in _DETECTION_KEYS if (v := config.get(k)) is not None}
        DetectionParams.from_mapping(detection)  # ParameterError (422) if out of range
        return await run_in_threadpool(self.registry.set_config, model_id, config)

    def _import(self, upload: ModelUpload) -> ImportedModel:
        from facefaas.models.importing import import_model

        # A file name helps the importer tell formats apart; only its last part is used.
        name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        source: bytes | dict[str, bytes] = {name: upload.data} if name else upload.data
        return import_model(
            source,
            name=upload.name,
            description=upload.description,
            format=upload.format,
            max_bytes=self.settings.max_model_bytes,
        )
