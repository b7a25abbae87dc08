"""Who may do what, as FastAPI dependencies: checked once, in the route's signature.

A route says what it needs by the type of a parameter, as FastAPI's own project template does:

* :data:`UsableModel`: the model of the path's ``model_id``, which the request's keys may run
  (public, or its usage or admin key);
* :data:`AdminModel`: the model, which the keys may change (its admin key; never a built-in);
* :data:`MayUpload` (a route dependency): the server's upload token, when one is set.

:class:`~facefaas.server.service.Service` trusts what it is handed and never checks keys again.
The rules themselves live in :mod:`facefaas.server.auth`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from facefaas.registry import ModelRecord
from facefaas.server.auth import authorize_admin, authorize_upload, authorize_use, presented_keys
from facefaas.server.service import Service

__all__ = [
    "AdminModel",
    "Keys",
    "MayUpload",
    "ServiceDep",
    "UsableModel",
    "get_service",
    "rate_limited",
]


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def keys_of(request: Request) -> list[str]:
    return presented_keys(request)


Keys = Annotated[list[str], Depends(keys_of)]


def rate_limited(request: Request, service: ServiceDep, keys: Keys) -> None:
    """Count the request against its client's rate limit (429 when over)."""
    if service.limiter.enabled:
        client = request.client.host if request.client else None
        service.limiter.hit(service.limiter.client_id(keys, client))


async def usable_model(model_id: str, service: ServiceDep, keys: Keys) -> ModelRecord:
    record = await run_in_threadpool(service.registry.get, model_id)
    authorize_use(record, keys)
    return record


async def admin_model(model_id: str, service: ServiceDep, keys: Keys) -> ModelRecord:
    record = await run_in_threadpool(service.registry.get, model_id)
    authorize_admin(record, keys)
    return record


def may_upload(service: ServiceDep, keys: Keys) -> None:
    authorize_upload(service.settings.upload_token, keys)


UsableModel = Annotated[ModelRecord, Depends(usable_model)]
AdminModel = Annotated[ModelRecord, Depends(admin_model)]
MayUpload = Depends(may_upload)
