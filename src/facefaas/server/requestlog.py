"""Request ids and structured logs.

Every request gets an id: the caller's ``X-Request-ID`` when it is a short token, else a new
one. It is sent back in the ``X-Request-ID`` header, put in problem responses, and attached to
every log record written while the request runs (worker threads included, through
:mod:`contextvars`). One access line per request records method, path, status and duration.
Logs never contain bodies, images or keys; query strings are left out too (they may hold
parameters only, but a client could put a key there).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestContextMiddleware",
    "RequestObserver",
    "configure_logging",
    "current_request_id",
]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("facefaas_request_id", default="")
access_log = logging.getLogger("facefaas.access")


def current_request_id() -> str:
    """The id of the request being served ('' outside a request)."""
    return _request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``request_id``, extras.

    Extras are the record's ``fields`` attribute (``logger.info("...", extra={"fields": {...}})``).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = _request_id.get()
        fields = getattr(record, "fields", None)
        extra = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        return " ".join(
            p for p in (text, f"request_id={request_id}" if request_id else "", extra) if p
        )


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Send facefaas's and uvicorn's logs to stderr in ``log_format`` ("json" or "text").

    Called by ``facefaas serve`` and by each worker process; importing facefaas never does it.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # RequestContextMiddleware writes the access lines (with request ids); mute uvicorn's.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False


class RequestObserver(Protocol):
    """What the middleware reports to (the metrics)."""

    def request_started(self) -> None: ...

    def request_finished(self, method: str, path: str, status: int, seconds: float) -> None: ...


class RequestContextMiddleware:
    """Assigns the request id, logs one access line, and reports each request to ``observer``."""

    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        _request_id.set(request_id)
        status = 500
        start = time.perf_counter()
        if self.observer is not None:
            self.observer.request_started()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            method, path = scope.get("method", ""), scope.get("path", "")
            if self.observer is not None:
                self.observer.request_finished(method, path, status, seconds)
            client = scope.get("client")
            access_log.info(
                "%s %s %d %.1fms",
                method,
                path,
                status,
                seconds * 1000,
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "client": client[0] if client else None,
                    }
                },
            )
