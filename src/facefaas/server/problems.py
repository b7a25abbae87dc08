"""Errors as RFC 9457 ``application/problem+json``, mapped once for the whole service.

Every :class:`~facefaas.errors.FacefaasError` becomes a problem with the class's ``status`` and
``code``; request validation failures become 422, unknown routes 404, wrong methods 405, and any
other exception a bare 500 (logged with its traceback, never sent). A problem looks like::

    {"type": "urn:facefaas:problem:too-large", "title": "Content Too Large", "status": 413,
     "detail": "image is 61 Mpx, over the limit of 50 Mpx", "code": "too-large",
     "instance": "/api/run/mtcnn/detect", "request_id": "5f0c...", "limit": 50000000,
     "unit": "pixels"}

Extension members: ``limit`` and ``unit`` (413), ``retry_after`` (429, 503, also sent as the
``Retry-After`` header), ``model_id`` (409 on a duplicate upload), ``errors`` (422 from
validation), ``reason`` (why a fetch or callback was refused or failed) and ``upstream_status``
(what the other server answered, 502).
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from facefaas.errors import FacefaasError, RateLimitedError
from facefaas.server.requestlog import current_request_id

__all__ = [
    "PROBLEM_JSON",
    "TYPE_PREFIX",
    "error_extensions",
    "facefaas_problem",
    "install_problem_handlers",
    "problem_body",
    "problem_response",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:facefaas:problem:"

_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 400: "bad-request", 422: "invalid"}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int, detail: str, *, code: str, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The members of a problem object (module docstring)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    code: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    instance = request.url.path if request is not None else None
    body = problem_body(status, detail, code=code, instance=instance, **extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def error_extensions(exc: FacefaasError) -> dict[str, Any]:
    """The extension members an error carries (``limit``, ``unit``, ``model_id``, ...)."""
    extensions: dict[str, Any] = {}
    for name in ("limit", "unit", "model_id", "estimate", "reason", "upstream_status"):
        if hasattr(exc, name):
            extensions[name] = getattr(exc, name)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        # Retry-After counts whole seconds; the body also gives the wait in milliseconds.
        extensions["retry_after"] = max(1, math.ceil(float(retry_after)))
        wait_ms = getattr(exc, "retry_after_ms", None)
        wait_ms = float(retry_after) * 1000 if wait_ms is None else float(wait_ms)
        extensions["retry_after_ms"] = max(1, math.ceil(wait_ms))
    return extensions


def facefaas_problem(request: Request | None, exc: FacefaasError) -> JSONResponse:
    """The problem response of one of our errors."""
    extensions = error_extensions(exc)
    headers = {}
    if "retry_after" in extensions:
        headers["Retry-After"] = str(extensions["retry_after"])
        headers["Retry-After-Ms"] = str(extensions["retry_after_ms"])
    if exc.status >= 500 and not isinstance(exc, RateLimitedError):
        log.warning("%s: %s", exc.code, exc.message)
    return problem_response(
        exc.status, exc.message, code=exc.code, request=request, headers=headers, **extensions
    )


def _validation_errors(errors: Any) -> list[dict[str, Any]]:
    # Only where and what: the offending input is not echoed (it could be an image or a key).
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
         "type": str(err.get("type", ""))}
        for err in errors
    ]  # fmt: skip


def validation_problem(request: Request | None, errors: Any) -> JSONResponse:
    items = _validation_errors(errors)
    first = items[0] if items else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body", "query")) or "request"
    detail = f"{where}: {first['msg']}" + (
        f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    )
    return problem_response(422, detail, code="invalid-parameter", request=request, errors=items)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    async def on_facefaas(request: Request, exc: Exception) -> JSONResponse:
        return facefaas_problem(request, cast(FacefaasError, exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        return validation_problem(request, cast(ValidationError, exc).errors())

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        http = cast(StarletteHTTPException, exc)
        status = http.status_code
        detail = http.detail if isinstance(http.detail, str) else _title(status)
        if status == 404:
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(
            status,
            detail,
            code=_HTTP_CODES.get(status, f"http-{status}"),
            request=request,
            headers=dict(http.headers or {}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        # Sent from outside the request-id middleware, so the header is set here.
        return problem_response(
            500, "internal error; the request id is in the logs", code="internal-error",
            request=request, headers={"X-Request-ID": current_request_id()},
        )  # fmt: skip

    app.add_exception_handler(FacefaasError, on_facefaas)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
