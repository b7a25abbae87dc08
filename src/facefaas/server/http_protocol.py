"""uvicorn's HTTP/1.1 (h11) with a deadline for request heads and a cap on connections.

uvicorn bounds the size of a request head (h11's ``max_incomplete_event_size``) and how long an
idle connection stays open between requests (``timeout_keep_alive``), but it waits for a head for
ever: a client that opens connections and sends their headers a byte at a time (slowloris) holds
them. :class:`EdgeProtocol` gives every request head ``header_timeout`` seconds, counted from the
connection or from the head's first byte, then answers 408 and closes the connection. With more
than ``max_connections`` connections open in the worker it answers 503 (``Retry-After``) instead
of running the app, as uvicorn's ``limit_concurrency`` does, but as a problem like every other
error. Both answers are ``application/problem+json`` with ``Connection: close``.

:class:`EdgeConfig` is the uvicorn ``Config`` that carries these settings to the protocol; being
a module-level class, it reaches worker processes too. Bodies are bounded by
:mod:`facefaas.server.edge_limits`, once the app reads them. Connections are counted per process
on purpose (never in Redis): each one holds this process's sockets and memory.
"""

from __future__ import annotations

import asyncio
import json
import math
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from facefaas.server.problems import PROBLEM_JSON, problem_body

__all__ = ["MAX_HEAD_BYTES", "EdgeConfig", "EdgeProtocol", "raw_problem"]

MAX_HEAD_BYTES = 16 * 1024  # request line and headers; the seed's description header fits


class EdgeConfig(uvicorn.Config):
    """A uvicorn ``Config`` serving HTTP/1.1 through :class:`EdgeProtocol`.

    ``header_timeout`` is in seconds; ``retry_after`` is the ``Retry-After`` of the 503 sent
    past ``max_connections``. Other keyword arguments are uvicorn's.
    """

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        max_connections: int,
        retry_after: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            app, http=EdgeProtocol, h11_max_incomplete_event_size=MAX_HEAD_BYTES, **kwargs
        )
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.retry_after = retry_after


def raw_problem(status: int, detail: str, code: str) -> bytes:
    """A whole HTTP/1.1 problem response that closes the connection, as bytes to write."""
    body = json.dumps(problem_body(status, detail, code=code)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"content-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n"
        "x-content-type-options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + body


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol plus the head deadline and the connection cap (module docstring).

    Without an :class:`EdgeConfig` (a plain uvicorn ``Config``) it behaves as uvicorn's own.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout: float | None = getattr(config, "header_timeout", None)
        self._head_timer: asyncio.TimerHandle | None = None
        max_connections: int | None = getattr(config, "max_connections", None)
        if max_connections is not None:
            retry_after = int(getattr(config, "retry_after", 1))
            self.app = _Capped(self.app, self, max_connections, retry_after)

    # -- the head deadline -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head(started=True)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self, *, started: bool = False) -> None:
        """Run the head timer while a head is awaited: from the connection (``started``), or
        from the first byte of a later head (between requests the keep-alive timeout applies)."""
        if self._header_timeout is None or self.transport.is_closing():
            return
        if self.conn.their_state is not h11.IDLE:
            self._stop_head_timer()  # the head is complete
            return
        if self._head_timer is None and (started or self.conn.trailing_data[0]):
            self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # still answering the previous request; its end re-arms the timer
        detail = f"the request's line and headers did not arrive within {self._header_timeout} s"
        self.transport.write(raw_problem(408, detail, "request-timeout"))
        self.transport.close()


class _Capped:
    """The app, or a 503 when the worker has more than ``limit`` connections or requests."""

    def __init__(self, app: Any, protocol: EdgeProtocol, limit: int, retry_after: int) -> None:
        self.app = app
        self.protocol = protocol
        self.limit = limit
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connections, tasks = self.protocol.connections, self.protocol.tasks
        if scope["type"] == "http" and max(len(connections), len(tasks)) > self.limit:
            detail = f"the server has more than {self.limit} connections open; retry later"
            seconds = max(1, math.ceil(self.retry_after))
            body = json.dumps(
                problem_body(
                    503, detail, code="overloaded", retry_after=seconds,
                    retry_after_ms=seconds * 1000,
                )
            ).encode()  # fmt: skip
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(seconds).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
