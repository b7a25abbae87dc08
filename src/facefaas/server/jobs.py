"""`JobWorker`: the service's background worker of jobs (:mod:`facefaas.jobs`).

Each service process runs one (unless ``job_worker`` is off): it claims items from the shared
queue in the registry's database, fetches URL inputs through the SSRF guard
(:func:`facefaas.fetch.fetch_image`, the ``fetch_allow`` allowlist), and runs each image through
the same path as a synchronous request, :meth:`Service.run` (the cost plan, the inference
pool, the deadline, usage and metrics).

Jobs never starve synchronous calls, and leave no thread idle that they could use
(:class:`JobGate`): while synchronous calls are being made, job images hold at most
``job_threads`` of the pool's threads (default ``inference_threads - 1``, at least 1), so **at
least one inference thread stays free for synchronous calls** whenever the pool has two or more.
Once no synchronous call has come for ``job_borrow_after`` seconds (default 2), jobs may borrow
the free threads too; the next synchronous call takes a thread back at the next job image's end
(it waits at most one image's time), and jobs are held to ``job_threads`` again from then on.
A job image refused by a full pool waits and tries again; it is not an error.

A job's model record is cached for a while; when its weights are replaced meanwhile, the image
that finds the old files gone is run again on the new ones (a replaced model fails no image).
A fetch refused or failed, an undecodable image, a deadline passed: each is that item's error
(problem+json), never the worker's. Claims are leases renewed while the worker lives; when it
stops gracefully it gives its unfinished items back; when it is killed they are claimed again
once their lease runs out, or at once when a worker restarts on the same host (it sees the
killed worker's process is gone: ids are ``host:pid:token``). Alongside it: the webhook
deliveries (retried with exponential backoff, :meth:`JobStore.webhook_attempted`) and the
periodic sweep of expired jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from facefaas import functions
from facefaas.errors import CancelledError, FacefaasError, ModelNotFoundError, OverloadedError
from facefaas.fetch import fetch_image, send
from facefaas.jobs import ClaimedItem, DueWebhook, JobStore
from facefaas.jobs.webhooks import signature_headers
from facefaas.registry import ModelRecord
from facefaas.request import DetectionRequest
from facefaas.server.edge import detection_request
from facefaas.server.problems import error_extensions, problem_body
from facefaas.server.remote import fetch_policy
from facefaas.server.runner import RunOutput
from facefaas.server.schemas import RunParams

if TYPE_CHECKING:
    from facefaas.server.service import Service

__all__ = ["MAX_ATTEMPTS", "JobGate", "JobWorker", "job_request"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # an item whose worker died this many times is failed, not tried again
_JOB_CACHE_SECONDS = 30.0
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/zip": "zip"}


def job_request(
    function_name: str, params: dict[str, Any], record: ModelRecord
) -> DetectionRequest:
    """The typed request of a job's images, built as the run routes build theirs (a job's
    ``crops`` are JSON, never a zip)."""
    function = functions.get_function(function_name)
    run_params = RunParams.model_validate(params)
    if function.output == "crops" and run_params.zip:
        run_params = run_params.model_copy(update={"zip": False})
    return detection_request(function, run_params, record, None)


@dataclass
class _Job:
    record: ModelRecord
    request: DetectionRequest
    loaded_at: float


class JobGate:
    """How many job images may run at once (module docstring): ``reserved_limit`` while
    synchronous calls are recent, every inference thread once none has come for
    ``borrow_after`` seconds (``None``: never)."""

    def __init__(self, service: Service, reserved_limit: int, borrow_after: float | None) -> None:
        self.service = service
        self.reserved_limit = reserved_limit
        self.borrow_after = borrow_after
        self.running = 0
        self._released = asyncio.Event()

    def limit(self) -> int:
        service = self.service
        if self.borrow_after is None:
            return self.reserved_limit
        if time.monotonic() - service.foreground_at < self.borrow_after:
            return self.reserved_limit
        return max(self.reserved_limit, service.settings.inference_threads)

    async def __aenter__(self) -> None:
        while self.running >= self.limit():
            self._released.clear()
            # A release wakes us; the limit also rises by itself as time passes, so look again.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), timeout=0.1)
        self.running += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self.running -= 1
        self._released.set()


_HOST = socket.gethostname()[:32]
_LIVE: set[str] = set()  # the ids of this process's workers (a process may run several apps)


def _dead_here(worker_id: str) -> bool:
    """Whether a worker id of this host (``host:pid:token``) names a worker that has ended: its
    process is gone, or it had this process's pid but is none of its workers (a restart that got
    the same pid, as a container's first process does)."""
    try:
        pid = int(worker_id.split(":")[-2])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return worker_id not in _LIVE
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's) or cannot be asked: not ours to judge
        return False
    return False


class _Stopping(Exception):
    """The service is draining: leave the item for the next worker."""


class _JobCancelled(Exception):
    """The item's job was cancelled before its image started: the item is cancelled."""


class JobWorker:
    """Claims and runs job items for one :class:`Service` (module docstring)."""

    def __init__(self, service: Service, store: JobStore) -> None:
        self.service = service
        self.store = store
        settings = service.settings
        self.threads = settings.inference_threads
        self.gate = JobGate(service, settings.effective_job_threads, settings.job_borrow_after)
        self.worker_id = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        _LIVE.add(self.worker_id)
        self.wake = asyncio.Event()
        self.active: dict[int, ClaimedItem] = {}
        self._jobs: dict[str, _Job] = {}
        self._cancelled: set[str] = set()  # jobs cancelled here: their claimed images are not run
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def open(cls, service: Service) -> JobWorker:
        """A worker on the service's registry engine (call in a thread: it may create tables)."""
        settings = service.settings
        store = JobStore(
            service.registry.engine,
            settings.data_dir,
            webhook_retry_seconds=settings.webhook_retry_seconds,
            blobs=service.registry.store.blobs,  # shared files: inputs and results in the database
        )
        return cls(service, store)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_forever()),
            asyncio.create_task(self._renew_forever()),
            asyncio.create_task(self._deliver_forever()),
            asyncio.create_task(self._sweep_forever()),
        ]

    async def stop(self) -> None:
        """Stop working and give the unfinished items back to the queue."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.active:
            try:
                await run_in_threadpool(self.store.release, self.worker_id, list(self.active))
            except Exception:
                log.warning("could not give job items back; their leases will run out")
            self.active.clear()
        _LIVE.discard(self.worker_id)  # what it still holds is an ended worker's now

    def job_cancelled(self, job_id: str) -> None:
        """A job was cancelled through this service: the images this worker claimed ahead and
        has not started are cancelled too, not run (another process's claimed images run)."""
        if len(self._cancelled) > 1024:
            self._cancelled.clear()
        self._cancelled.add(job_id)

    # -- items -------------------------------------------------------------------------------

    async def _claim_forever(self) -> None:
        settings = self.service.settings
        capacity = 2 * self.threads  # fetch the next images while these run
        running: set[asyncio.Task[None]] = set()
        try:
            reclaimed = await run_in_threadpool(self.store.reclaim, f"{_HOST}:", _dead_here)
        except Exception:
            log.warning("giving back the items of ended workers failed", exc_info=True)
        else:
            if reclaimed:
                log.info("gave back %d job items held by ended workers of this host", reclaimed)
        try:
            while True:
                claimed: list[ClaimedItem] = []
                free = capacity - len(running)
                # Claimed a thread's worth at a time (not one by one as each image ends): one
                # claim's cost shared by more images, while `capacity` keeps the next ones
                # fetched ahead.
                if free >= self.threads and not self.service.draining:
                    try:
                        claimed = await self._claim(free)
                    except Exception:
                        log.warning("claiming job items failed; trying again", exc_info=True)
                for item in claimed:
                    self.active[item.id] = item
                    task = asyncio.create_task(self._process(item))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if claimed and len(running) < capacity:
                    continue
                waker = asyncio.create_task(self.wake.wait())
                await asyncio.wait(
                    {waker, *running},
                    timeout=settings.job_poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waker.cancel()
                self.wake.clear()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self, limit: int) -> list[ClaimedItem]:
        """Claim up to ``limit`` items. A claim runs in a thread and may commit after the worker
        was told to stop: its items are then recorded as ours anyway, so that :meth:`stop`
        gives them back instead of leaving them claimed until their lease runs out."""
        lease = self.service.settings.job_lease_seconds
        claim = asyncio.ensure_future(
            run_in_threadpool(self.store.claim, self.worker_id, limit, lease)
        )
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with suppress(Exception):
                for item in await claim:
                    self.active[item.id] = item
            raise

    async def _renew_forever(self) -> None:
        lease = self.service.settings.job_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            if self.active:
                try:
                    await run_in_threadpool(
                        self.store.renew, self.worker_id, list(self.active), lease
                    )
                except Exception:
                    log.warning("renewing job claims failed", exc_info=True)

    async def _process(self, item: ClaimedItem) -> None:
        output: RunOutput | None = None
        error: dict[str, Any] | None = None
        cancelled = False
        try:
            if item.attempts > MAX_ATTEMPTS:
                raise FacefaasError(
                    f"gave up on this image after {MAX_ATTEMPTS} attempts (each stopped its worker)"
                )
            job = await self._job(item.job_id)
            if job is None:  # the job was deleted (expired) meanwhile
                self.active.pop(item.id, None)
                return
            data = await self._input(item)
            try:
                output = await self._run(item, job, data)
            except ModelNotFoundError:
                # The model's weights were replaced since its record was cached: the new ones.
                fresh = await self._job(item.job_id, refresh=True)
                if fresh is None or fresh.record.sha256 == job.record.sha256:
                    raise
                output = await self._run(item, fresh, data)
        except _Stopping:
            return  # left claimed: given back by stop(), or its lease runs out
        except _JobCancelled:
            cancelled = True
        except Exception as exc:
            error = self._problem(item, exc)
        try:
            # The result file and the item's completion: one trip to a thread.
            recorded = await run_in_threadpool(self._record, item, output, error, cancelled)
            if not recorded:
                log.info("job %s item %d: claim lost; another worker records it",
                         item.job_id, item.index)  # fmt: skip
        except Exception:
            log.warning("recording job %s item %d failed; it will be redone",
                        item.job_id, item.index, exc_info=True)  # fmt: skip
        self.active.pop(item.id, None)

    @staticmethod
    def _problem(item: ClaimedItem, exc: Exception) -> dict[str, Any]:
        """The item's problem+json error; a bug must not stop the worker: the item records it."""
        if isinstance(exc, FacefaasError):
            return problem_body(exc.status, exc.message, code=exc.code, **error_extensions(exc))
        log.error("job %s item %d failed unexpectedly", item.job_id, item.index, exc_info=exc)
        return problem_body(500, f"internal error: {type(exc).__name__}", code="internal-error")

    def _record(
        self,
        item: ClaimedItem,
        output: RunOutput | None,
        error: dict[str, Any] | None,
        cancelled: bool = False,
    ) -> bool:
        """Keep the item's result file, then record it done (or its error, or cancelled) if
        it is still ours."""
        result: dict[str, Any] | None = None
        if output is not None:
            try:
                result = self._save(item, output)
            except Exception as exc:
                error = self._problem(item, exc)
        return self.store.complete(
            self.worker_id, item, result=result, error=error, cancelled=cancelled
        )

    async def _job(self, job_id: str, *, refresh: bool = False) -> _Job | None:
        cached = self._jobs.get(job_id)
        now = time.monotonic()
        if cached is not None and not refresh and now - cached.loaded_at < _JOB_CACHE_SECONDS:
            return cached
        row = await run_in_threadpool(self.store.job, job_id)
        if row is None:
            return None
        record = await run_in_threadpool(self.service.registry.get, row["model_id"])
        request = job_request(row["function"], row["params"], record)
        if len(self._jobs) > 256:
            self._jobs.clear()
        job = self._jobs[job_id] = _Job(record, request, now)
        return job

    async def _input(self, item: ClaimedItem) -> bytes:
        if item.input_path is not None:  # uploaded
            uploaded = await run_in_threadpool(self.store.read_input, item)
            if uploaded is not None:
                return uploaded
        policy = fetch_policy(self.service.settings)
        fetched = await run_in_threadpool(fetch_image, item.source, policy)
        return fetched.data

    async def _run(self, item: ClaimedItem, job: _Job, data: bytes) -> RunOutput:
        service = self.service
        while True:
            if service.draining:
                raise _Stopping
            try:
                deadline = service.deadline()
            except CancelledError:
                raise _Stopping from None
            try:
                async with self.gate:
                    if item.job_id in self._cancelled:  # looked at once a thread is free
                        raise _JobCancelled
                    return await service.run(
                        job.record, data, job.request, deadline, background=True
                    )
            except CancelledError:
                raise _Stopping from None
            except OverloadedError as exc:  # the pool is full of synchronous calls: wait
                await asyncio.sleep(exc.retry_after or service.settings.retry_after)

    def _save(self, item: ClaimedItem, output: RunOutput) -> dict[str, Any]:
        if output.body is not None:
            name = f"{item.index}.json"
            data = json.dumps(output.body, separators=(",", ":")).encode()
            media_type = "application/json"
        else:
            media_type = output.media_type
            name = f"{item.index}.{_EXTENSIONS.get(media_type, 'bin')}"
            data = output.content or b""
        self.store.write_result(item.job_id, name, data)
        return {"file": name, "media_type": media_type, "faces": len(output.faces)}

    # -- webhooks and upkeep -----------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        settings = self.service.settings
        while True:
            try:
                due = await run_in_threadpool(self.store.claim_webhooks, 8, 60.0)
            except Exception:
                log.warning("claiming webhooks failed", exc_info=True)
                due = []
            await asyncio.gather(*(self._deliver(webhook) for webhook in due))
            if not due:
                await asyncio.sleep(settings.job_poll_interval)

    async def _deliver(self, webhook: DueWebhook) -> None:
        policy = fetch_policy(self.service.settings)
        headers = signature_headers(
            webhook.secret, webhook.webhook_id, int(time.time()), webhook.body
        )
        status: int | None
        try:
            status = await run_in_threadpool(
                lambda: send(webhook.url, webhook.body, policy, headers=headers)
            )
        except Exception as exc:  # refused, unreachable, timed out: retried later
            log.info("webhook of job %s not delivered: %s", webhook.job_id, exc)
            status = None
        try:
            await run_in_threadpool(self.store.webhook_attempted, webhook, status)
        except Exception:
            log.warning("recording a webhook attempt failed", exc_info=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.service.settings.job_sweep_interval)
            try:
                await run_in_threadpool(self.store.sweep)
            except Exception:
                log.warning("sweeping expired jobs failed", exc_info=True)

    async def sweep_now(self) -> None:
        with suppress(Exception):
            await run_in_threadpool(self.store.sweep)
