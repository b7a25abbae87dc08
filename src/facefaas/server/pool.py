"""`InferencePool`: bounded inference off the event loop.

A fixed set of threads runs the jobs (ONNX Runtime, Pillow and numpy release the GIL, so threads
run in parallel). At most ``threads + queue_size`` jobs are admitted at once; one more is refused
at once with :class:`~facefaas.errors.OverloadedError` (503 + ``Retry-After``) instead of waiting
in an unbounded queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from facefaas.errors import OverloadedError

__all__ = ["InferencePool"]

T = TypeVar("T")


class InferencePool:
    """Runs blocking jobs on ``threads`` threads with ``queue_size`` waiting places.

    ``on_change(pending)`` is called with the number of admitted jobs whenever it changes.
    Admission is decided on the event loop thread, so it needs no lock.
    """

    def __init__(
        self,
        threads: int,
        queue_size: int,
        *,
        retry_after: float = 1.0,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.threads = threads
        self.capacity = threads + queue_size
        self.retry_after = retry_after
        self.pending = 0
        self._on_change = on_change
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="facefaas-inference")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a pool thread, carrying the request's context (its log id)."""
        if self.pending >= self.capacity:
            raise OverloadedError(
                f"the inference queue is full ({self.capacity} requests); retry shortly",
                retry_after=self.retry_after,
            )
        self._set_pending(self.pending + 1)
        try:
            context = contextvars.copy_context()
            call = functools.partial(context.run, fn, *args)
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self._set_pending(self.pending - 1)

    def _set_pending(self, value: int) -> None:
        self.pending = value
        if self._on_change is not None:
            self._on_change(value)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
