"""Who may do what, as FastAPI dependencies: checked once, in the route's signature.

A route says what it needs by the type of a parameter, as FastAPI's own project template does:

* :data:`UsableModel`: the model of the path's ``model_id``, which the request's keys may run
  (public, or its usage or admin key);
* :data:`AdminModel`: the model, which the keys may change (its admin key; never a built-in);
* :data:`Uploader`: the uploader's identity, when the request may upload (the server's upload
  token, or uploads open to all: :mod:`facefaas.server.uploads`); :data:`MayUpload` checks the
  same as a route dependency.

:class:`~facefaas.server.service.Service` trusts what it is handed and never checks keys again.
The rules themselves live in :mod:`facefaas.server.auth`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from facefaas.errors import FacefaasError
from facefaas.registry import ModelRecord
from facefaas.server.auth import (
    authorize_admin,
    authorize_upload,
    authorize_use,
    presented_keys,
    verified_key,
)
from facefaas.server.service import Service
from facefaas.server.uploads import uploads_open

__all__ = [
    "AdminModel",
    "Keys",
    "MayUpload",
    "ServiceDep",
    "Uploader",
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


async def _record(request: Request, service: Service, model_id: str) -> ModelRecord:
    """The model's record, read once per request (the rate limit and the authorization both
    need it)."""
    cached: ModelRecord | None = getattr(request.state, "model_record", None)
    if cached is None or cached.id != model_id:
        cached = await run_in_threadpool(service.registry.get, model_id)
        request.state.model_record = cached
    return cached


async def rate_limited(request: Request, service: ServiceDep, keys: Keys) -> None:
    """Count the request against its client's rate limit (429 when over).

    The client is the first presented key that opens the model of the path's ``model_id``
    (verified here against the model's hashed keys), else the request's address: an invented or
    foreign key identifies nobody (:mod:`facefaas.server.ratelimit`).
    """
    limiter = service.limiter
    if not limiter.enabled:
        return
    verified = None
    model_id = request.path_params.get("model_id")
    if keys and isinstance(model_id, str):
        try:
            record: ModelRecord | None = await _record(request, service, model_id)
        except FacefaasError:
            record = None  # no such model: the route answers 404; the address is counted
        if record is not None:
            verified = verified_key(record, keys)
    address = request.client.host if request.client else None
    await limiter.hit(limiter.key_id(verified) if verified else limiter.address_id(address))


async def usable_model(
    model_id: str, request: Request, service: ServiceDep, keys: Keys
) -> ModelRecord:
    record = await _record(request, service, model_id)
    authorize_use(record, keys)
    return record


async def admin_model(
    model_id: str, request: Request, service: ServiceDep, keys: Keys
) -> ModelRecord:
    record = await _record(request, service, model_id)
    authorize_admin(record, keys)
    return record


def may_upload(request: Request, service: ServiceDep, keys: Keys) -> str:
    settings = service.settings
    address = request.client.host if request.client else None
    return authorize_upload(
        settings.upload_token, keys, address=address, open_to_all=uploads_open(settings)
    )


UsableModel = Annotated[ModelRecord, Depends(usable_model)]
AdminModel = Annotated[ModelRecord, Depends(admin_model)]
MayUpload = Depends(may_upload)
Uploader = Annotated[str, Depends(may_upload)]
