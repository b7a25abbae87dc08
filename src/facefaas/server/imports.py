"""`ImportWorkers`: model imports in child processes with CPU-time, memory and wall-clock limits.

An upload is a stranger's file read by parsers (a pure-Python restricted unpickler, protobuf and
zip readers) and smoke-tested on ONNX Runtime. In the server process, a file crafted to be slow
to refuse holds the GIL and the threads requests need, and one crafted to be large once read
takes the server's memory. So each import runs in a process of its own:

* **one process per import**, forked from a ``forkserver`` that has already imported the
  importers (numpy, onnx, ONNX Runtime), so a child starts in milliseconds and inherits none of
  the server's threads, sockets, database connections or secrets. Not a ``ProcessPoolExecutor``:
  its workers cannot be killed one at a time (killing one breaks the whole pool), and with
  ``max_tasks_per_child=1`` it would start a process per task anyway;
* **limits set by the child on itself** (:func:`facefaas.models.import_worker.import_in_child`):
  ``RLIMIT_CPU``, ``RLIMIT_AS``, no core files, ``nice 19`` so inference always comes first;
* **a wall-clock deadline kept by the parent**, which kills the child when it passes;
* **bounded concurrency**: ``workers`` imports at once and ``queue_size`` more waiting; one more
  is refused at once with :class:`~facefaas.errors.OverloadedError` (503 + ``Retry-After``) by
  :meth:`ImportWorkers.admit`, before its body is read. Waiting for a child happens on this
  class's own threads, never on the threads that serve requests or run inference.

Outcomes: the importer's own errors come back as the same classes (422/413/400); past the memory
limit a :class:`~facefaas.errors.TooLargeError` (413, ``unit`` ``"bytes of memory"``), past the
CPU limit a 413 (``unit`` ``"CPU seconds"``), past the wall-clock limit a 503 (the machine is
busy; the file may import later). An importer that fails in an unexpected way is logged and
answered 422, never 500.

``workers`` and ``queue_size`` count this process's imports on purpose (never in Redis): they
bound its own children, CPU and memory. What an owner may keep (quotas) is counted in the
registry's database, shared by every process.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import multiprocessing
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from facefaas.errors import FacefaasError, ModelFormatError, OverloadedError, TooLargeError
from facefaas.models.import_worker import (
    ImportJob,
    ImportLimits,
    ImportWorkerError,
    import_in_child,
    memory_error,
    receive_imported,
)
from facefaas.models.importing import ImportedModel

__all__ = ["ImportJob", "ImportLimits", "ImportWorkers"]

log = logging.getLogger(__name__)

# What the forkserver imports once, so that every child starts with it loaded. Only the models
# layer: facefaas.server would import the whole web app into every child.
_PRELOAD = ["facefaas.models.import_worker", "facefaas.models.validate"]


class ImportWorkers:
    """Runs :class:`ImportJob` s in limited child processes (module docstring).

    Admission (:meth:`admit`) is decided on the event loop thread, so it needs no lock. Close
    with :meth:`close`.
    """

    def __init__(
        self, workers: int, queue_size: int, limits: ImportLimits, *, retry_after: float = 1.0
    ) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self.limits = limits
        self.retry_after = retry_after
        self.pending = 0
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="facefaas-import")

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of the ``workers + queue_size`` places, or raise OverloadedError (503)."""
        if self.pending >= self.capacity:
            raise OverloadedError(
                f"{self.capacity} model imports are running or waiting; retry shortly",
                retry_after=self.retry_after,
            )
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def run(self, job: ImportJob) -> ImportedModel:
        """Import ``job`` in a child process (call it inside :meth:`admit`).

        Raises the importer's errors, TooLargeError past the memory or CPU limit,
        OverloadedError past the wall-clock limit.
        """
        call = functools.partial(contextvars.copy_context().run, self._run_child, job)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)

    def _run_child(self, job: ImportJob) -> ImportedModel:
        limits = self.limits
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=import_in_child, args=(sender, job, limits), name="facefaas-import", daemon=True
        )
        deadline = time.monotonic() + limits.wall_seconds
        process.start()
        sender.close()
        try:
            return receive_imported(receiver, deadline, limits, job.max_bytes)
        except TimeoutError:
            raise OverloadedError(
                f"the import did not finish within {limits.wall_seconds:g} s; retry later",
                retry_after=self.retry_after,
            ) from None
        except ImportWorkerError as exc:
            process.join(timeout=5)
            raise _failure(process.exitcode, limits, exc) from None
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join()
            process.close()


def _failure(exitcode: int | None, limits: ImportLimits, exc: Exception) -> FacefaasError:
    """The error of a child that ended without an answer."""
    if exitcode == -signal.SIGXCPU:
        return TooLargeError(
            f"importing this model takes more than the {limits.cpu_seconds} CPU seconds an "
            "import may use",
            limit=limits.cpu_seconds,
            unit="CPU seconds",
        )
    if exitcode is not None and exitcode < 0:
        # Native code (onnx, ORT) aborts when an allocation fails; the kernel kills a process
        # that runs out of memory: both are this import's memory.
        log.warning("import worker ended by signal %d", -exitcode)
        return memory_error(limits)
    log.error("import worker failed (exit code %r): %s", exitcode, exc)
    return ModelFormatError("the model could not be imported: the importer failed on this file")
