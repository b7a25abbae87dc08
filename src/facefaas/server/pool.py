"""`InferencePool`: bounded inference off the event loop, admitted by cost.

A fixed set of threads runs the jobs (ONNX Runtime, Pillow and numpy release the GIL, so threads
run in parallel). A job is admitted when a thread is free *and* its estimated peak memory
(:mod:`facefaas.cost`) fits what the running jobs leave of the memory budget; otherwise it waits
in a first-in, first-out queue of ``queue_size`` places (the head waits for room, so a large job
is not overtaken for ever by small ones). A job that finds the queue full is refused at once
with :class:`~facefaas.errors.OverloadedError` (503 and ``Retry-After``, estimated from the recent
job times), and so is one whose deadline passes while it waits. Refusing early, before any work,
is what keeps the useful throughput up past saturation.

Admission is decided on the event loop's thread, so it needs no lock.

Threads, queue and memory budget are counted in this process on purpose, also when
``redis_url`` shares other counts across the fleet: they bound this process's own CPU and
memory, which no other process can use or free (docs/service.md, "Counting across processes").
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from facefaas.deadline import Deadline
from facefaas.errors import CostLimitError, OverloadedError

__all__ = ["InferencePool"]

T = TypeVar("T")

_POLL_SECONDS = 0.1  # how often a waiting job looks at its deadline (client gone, draining)
_EWMA = 0.2  # weight of the latest job in the mean job time


@dataclass
class _Waiter:
    """A job waiting for room; ``ready`` is set once it has been given its room."""

    cost: int
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InferencePool:
    """Runs blocking jobs on ``threads`` threads; ``queue_size`` jobs may wait for room.

    Args:
        memory_budget: bytes of estimated peak memory the running jobs may hold together
            (``None``: count jobs only).
        retry_after: the least ``Retry-After`` (seconds) of a refusal.
        on_change: called with the number of admitted jobs (running and waiting) on change.
    """

    def __init__(
        self,
        threads: int,
        queue_size: int,
        *,
        memory_budget: int | None = None,
        retry_after: float = 1.0,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.threads = threads
        self.queue_size = queue_size
        self.capacity = threads + queue_size
        self.memory_budget = memory_budget
        self.retry_after = retry_after
        self.running = 0
        self.memory_in_use = 0
        self._waiters: deque[_Waiter] = deque()
        self._mean_seconds = 0.1
        self._on_change = on_change
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="facefaas-inference")

    @property
    def pending(self) -> int:
        """Jobs admitted: running or waiting."""
        return self.running + len(self._waiters)

    def expected_wait(self) -> float:
        """Seconds until a job queued now would likely start (from the mean job time)."""
        return self._mean_seconds * (self.pending + 1) / self.threads

    def refuse_if_full(self) -> None:
        """Raise :class:`OverloadedError` if a job arriving now would be refused (so a request
        is turned away before its body is read)."""
        if len(self._waiters) >= self.queue_size and not self._room_for(0):
            raise self._overloaded()

    def check_cost(self, cost: int) -> None:
        """Raise :class:`CostLimitError` if ``cost`` could never be admitted."""
        if self.memory_budget is not None and cost > self.memory_budget:
            raise CostLimitError(
                f"the estimated peak memory of this request, {cost / 2**20:.0f} MiB, is over "
                f"the server's memory budget of {self.memory_budget / 2**20:.0f} MiB",
                estimate={"peak_bytes": cost},
                limit=self.memory_budget,
            )

    async def run(
        self, fn: Callable[..., T], *args: Any, cost: int = 0, deadline: Deadline | None = None
    ) -> T:
        """Run ``fn(*args)`` on a pool thread once admitted, carrying the request's context
        (its log id). ``cost``: the job's estimated peak memory in bytes."""
        self.check_cost(cost)
        await self._admit(cost, deadline)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            context = contextvars.copy_context()
            call = functools.partial(context.run, fn, *args)
            return await loop.run_in_executor(self._executor, call)
        finally:
            elapsed = loop.time() - started
            self._mean_seconds += _EWMA * (elapsed - self._mean_seconds)
            self.running -= 1
            self.memory_in_use -= cost
            self._wake()
            self._changed()

    def _room_for(self, cost: int) -> bool:
        if self.running >= self.threads:
            return False
        return self.memory_budget is None or self.memory_in_use + cost <= self.memory_budget

    def _take(self, cost: int) -> None:
        self.running += 1
        self.memory_in_use += cost

    async def _admit(self, cost: int, deadline: Deadline | None) -> None:
        if not self._waiters and self._room_for(cost):
            self._take(cost)
            self._changed()
            return
        if len(self._waiters) >= self.queue_size:
            raise self._overloaded()
        waiter = _Waiter(cost)
        self._waiters.append(waiter)
        self._changed()
        try:
            while True:
                timeout = _POLL_SECONDS
                if deadline is not None:
                    deadline.check()
                    remaining = deadline.remaining
                    if remaining is not None:
                        timeout = max(0.0, min(timeout, remaining))
                done, _ = await asyncio.wait({waiter.ready}, timeout=timeout)
                if done:
                    return  # _wake took the room for us
        except BaseException:
            if waiter.ready.done() and not waiter.ready.cancelled():
                self.running -= 1  # admitted at the last moment: give the room back
                self.memory_in_use -= cost
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._wake()
            self._changed()
            raise

    def _wake(self) -> None:
        """Admit waiters from the head of the queue while they fit."""
        while self._waiters and self._room_for(self._waiters[0].cost):
            waiter = self._waiters.popleft()
            if waiter.ready.done():
                continue
            self._take(waiter.cost)
            waiter.ready.set_result(None)

    def _overloaded(self) -> OverloadedError:
        wait = self.expected_wait()
        return OverloadedError(
            f"the server is at capacity ({self.running} running, {len(self._waiters)} waiting); "
            f"retry in about {math.ceil(wait * 1000)} ms",
            retry_after=max(self.retry_after, wait),
            retry_after_ms=wait * 1000,
        )

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.pending)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
