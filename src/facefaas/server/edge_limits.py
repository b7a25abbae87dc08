"""`EdgeLimitsMiddleware`: what one request body may cost in time and in memory.

uvicorn, through :mod:`facefaas.server.http_protocol`, bounds connections, the size of a request
head and the time it takes. Once the head is in, the app reads the body; this middleware bounds
that reading:

* **time**: no pause in the body may last ``body_timeout`` seconds, and the whole body must
  arrive within ``body_timeout`` seconds plus one second for every ``body_min_rate`` bytes
  received (the rule of Apache's mod_reqtimeout). A client that stalls or trickles is answered
  408 (``request-timeout``) whatever length it declared; a steady upload of any size is not cut;
* **memory**: the bytes received by all requests of the worker and not yet released (a request
  releases its bytes when it ends) stay under ``body_buffer_bytes``. A chunk that would pass it
  waits up to ``body_buffer_wait`` seconds for room, then the request is answered 503
  (``overloaded``, ``Retry-After``). uvicorn itself buffers at most about 64 KiB per connection
  before it stops reading, so a client that is not read cannot push more.

A response that starts before its request's body was read to the end carries
``Connection: close``: the unread rest never keeps the connection, or its deadline, alive. A
client that hangs up in the middle of its body gets (in the log and the metrics) a 400, not the
500 of an unhandled ``ClientDisconnect``. Requests without a body (no ``Content-Length`` or
``Transfer-Encoding``) pass untouched.

The budget is per process on purpose (never in Redis): it bounds the bytes this process holds
in its own memory.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facefaas.errors import FacefaasError, InputError, OverloadedError, RequestTimeoutError
from facefaas.server.problems import facefaas_problem

__all__ = ["BodyBudget", "EdgeLimitsMiddleware"]


class BodyBudget:
    """Bytes held by request bodies in one worker (one event loop), at most ``capacity``.

    A single chunk larger than the whole budget is let in when nothing else is held, so that a
    budget smaller than one network read cannot block every request.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._changed = asyncio.Condition()

    async def acquire(self, size: int, wait: float) -> bool:
        """Hold ``size`` more bytes, waiting up to ``wait`` seconds for room; ``False`` if none."""

        def fits() -> bool:
            return self.held == 0 or self.held + size <= self.capacity

        async with self._changed:
            if not fits():
                try:
                    async with asyncio.timeout(wait):
                        await self._changed.wait_for(fits)
                except TimeoutError:
                    return False
            self.held += size
            return True

    async def release(self, size: int) -> None:
        if size:
            async with self._changed:
                self.held -= size
                self._changed.notify_all()


class EdgeLimitsMiddleware:
    """Body deadlines and the worker's body byte budget (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout: float,
        body_min_rate: int,
        budget: BodyBudget,
        budget_wait: float,
        retry_after: float = 1.0,
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.budget = budget
        self.budget_wait = budget_wait
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body = _Body(self, receive, send)
        try:
            await self.app(scope, body.receive, body.send)
        except (RequestTimeoutError, OverloadedError, ClientDisconnect) as exc:
            # Raised by our receive (or Starlette's, on a hang-up) where no handler of the app
            # turned it into a problem.
            if body.response_started:
                raise
            error = exc if isinstance(exc, FacefaasError) else _hung_up()
            await facefaas_problem(None, error)(scope, body.receive, body.send)
        finally:
            await self.budget.release(body.held)


def _hung_up() -> InputError:
    return InputError("the client closed the connection before its request body arrived")


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class _Body:
    """One request's body as the app reads it: timed, counted and held against the budget."""

    def __init__(self, limits: EdgeLimitsMiddleware, receive: Receive, send: Send) -> None:
        self.limits = limits
        self._receive = receive
        self._send = send
        self.started_at = time.monotonic()
        self.received = 0
        self.held = 0
        self.complete = False
        self.response_started = False

    def deadline(self) -> float:
        """When the next chunk must have come, on the ``time.monotonic`` clock."""
        limits = self.limits
        overall = self.started_at + limits.body_timeout + self.received / limits.body_min_rate
        return min(overall, time.monotonic() + limits.body_timeout)

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()  # only a disconnect can come now: no deadline
        try:
            async with asyncio.timeout_at(self._loop_deadline()):
                message = await self._receive()
        except TimeoutError:
            raise self._too_slow() from None
        if message["type"] == "http.request":
            size = len(message.get("body", b""))
            self.received += size
            if size:
                await self._hold(size)
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
            if not self.complete:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
        await self._send(message)

    def _loop_deadline(self) -> float:
        # asyncio's clock is time.monotonic on every platform we run on; convert anyway.
        loop = asyncio.get_running_loop()
        return loop.time() + (self.deadline() - time.monotonic())

    async def _hold(self, size: int) -> None:
        limits = self.limits
        if not await limits.budget.acquire(size, limits.budget_wait):
            raise OverloadedError(
                f"the server is holding {limits.budget.capacity} bytes of request bodies, its "
                "limit; retry later",
                retry_after=limits.retry_after,
            )
        self.held += size

    def _too_slow(self) -> FacefaasError:
        limits = self.limits
        return RequestTimeoutError(
            f"the request body arrived too slowly: {self.received} bytes in "
            f"{time.monotonic() - self.started_at:.1f} s (it may pause {limits.body_timeout:g} s "
            f"at most, and take {limits.body_timeout:g} s plus 1 s per {limits.body_min_rate} "
            "bytes)"
        )
