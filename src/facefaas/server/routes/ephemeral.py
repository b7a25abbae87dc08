"""The seed's ephemeral storage: ``/api/ephemeral_storage``, JSON values kept for a while.

| route | what |
| --- | --- |
| ``POST /api/ephemeral_storage`` | keep the JSON body; 201 ``{"key": ..., "expires_in": s}`` |
| ``GET /api/ephemeral_storage/{key}`` | the JSON value, as it was sent |
| ``PUT /api/ephemeral_storage/{key}`` | replace it (kept ``ephemeral_ttl`` from now) |
| ``DELETE /api/ephemeral_storage/{key}`` | remove it; 204 |

The key is the only credential: random and unguessable. Unknown, deleted and expired keys are
404; a value over ``ephemeral_max_value_bytes`` is 413; a full store (``ephemeral_max_values``)
is 507. The store is :class:`~facefaas.registry.ephemeral.EphemeralStore`, in the registry's
database; this router's lifespan sweeps expired values every ``ephemeral_sweep_interval``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facefaas.errors import UnsupportedMediaError
from facefaas.registry.ephemeral import EphemeralStore
from facefaas.server.inputs import media_type, read_body
from facefaas.server.routes.deps import rate_limited
from facefaas.server.service import Service

__all__ = ["router"]

log = logging.getLogger(__name__)


def _store(app: Any) -> EphemeralStore:
    """The app's store, made on first use on the registry's engine (open by then)."""
    store: EphemeralStore | None = getattr(app.state, "ephemeral_store", None)
    if store is None:
        service: Service = app.state.service
        settings = service.settings
        store = EphemeralStore(
            service.registry.engine,
            ttl=settings.ephemeral_ttl,
            max_value_bytes=settings.ephemeral_max_value_bytes,
            max_values=settings.ephemeral_max_values,
        )
        app.state.ephemeral_store = store
    return store


async def get_store(request: Request) -> EphemeralStore:
    if getattr(request.app.state, "ephemeral_store", None) is None:
        return await run_in_threadpool(_store, request.app)
    return _store(request.app)


Store = Annotated[EphemeralStore, Depends(get_store)]


@asynccontextmanager
async def sweeping(app: FastAPI) -> AsyncIterator[None]:
    """Sweep expired values every ``ephemeral_sweep_interval`` while the app runs."""

    async def sweep_forever() -> None:
        service: Service = app.state.service
        while True:
            await asyncio.sleep(service.settings.ephemeral_sweep_interval)
            try:
                await run_in_threadpool(lambda: _store(app).sweep())
            except Exception:  # the next sweep tries again; a request never waits on this
                log.warning("sweeping ephemeral values failed", exc_info=True)

    task = asyncio.create_task(sweep_forever())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


router = APIRouter(
    prefix="/api/ephemeral_storage",
    tags=["ephemeral storage"],
    dependencies=[Depends(rate_limited)],
    lifespan=sweeping,
)

_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "any JSON value",
        "content": {"application/json": {"schema": {}}},
    }
}


async def _value(request: Request, store: EphemeralStore) -> bytes:
    if media_type(request) == "multipart/form-data":
        raise UnsupportedMediaError("send the value as a JSON body, not multipart")
    return await read_body(request, store.max_value_bytes, "value")


@router.post("", status_code=201, openapi_extra=_JSON_BODY, summary="Keep a JSON value")
async def add(request: Request, store: Store) -> JSONResponse:
    """Keep the JSON body for ``ephemeral_ttl`` seconds; answers its key (and ``Location``)."""
    text = await _value(request, store)
    key = await run_in_threadpool(store.add, text)
    return JSONResponse(
        {"key": key, "expires_in": store.ttl},
        status_code=201,
        headers={"Location": f"/api/ephemeral_storage/{key}"},
    )


@router.get(
    "/{key}", summary="Read a value", responses={200: {"content": {"application/json": {}}}}
)
async def read(key: str, store: Store) -> Response:
    """The value, exactly the JSON that was sent."""
    value = await run_in_threadpool(store.get, key)
    return Response(value, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.put("/{key}", openapi_extra=_JSON_BODY, summary="Replace a value")
async def replace(key: str, request: Request, store: Store) -> dict[str, Any]:
    """Replace the value; it is kept ``ephemeral_ttl`` seconds from now."""
    text = await _value(request, store)
    await run_in_threadpool(store.replace, key, text)
    return {"key": key, "expires_in": store.ttl}


@router.delete("/{key}", status_code=204, summary="Delete a value")
async def delete(key: str, store: Store) -> Response:
    await run_in_threadpool(store.delete, key)
    return Response(status_code=204)
