"""The seed's FaaS API (second-state's wasm-joey), so its scripts and web page work unchanged.

| seed call | here |
| --- | --- |
| ``POST /api/executables`` + ``SSVM_Description`` | upload a model; returns ``wasm_id``, |
| | ``wasm_sha256``, ``SSVM_Usage_Key``, ``SSVM_Admin_Key`` |
| ``GET /api/executables[/{id}]`` | list / show |
| ``PUT /api/update_wasm_binary/{id}`` + ``SSVM_Admin_Key`` | replace the weights |
| ``DELETE /api/executables/{id}`` + ``SSVM_Admin_Key`` | delete |
| ``PUT`` / ``DELETE /api/keys/{id}/usage_key`` | make private (new usage key) / public |
| ``PUT`` / ``GET /api/state/{id}`` | the model's run defaults, as JSON text |
| ``POST /api/run/{id}/infer/bytes`` | the seed's picture: 1-px green boxes, JPEG quality 80 |
| ``POST /api/multipart/run/{id}/infer/bytes`` | the same, the image in the first file part |

Unlike the seed, errors are real statuses with problem+json bodies.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from facefaas import functions
from facefaas.registry import ModelRecord
from facefaas.server.inputs import read_body
from facefaas.server.routes import IMAGE_BODY, MODEL_BODY
from facefaas.server.routes.deps import (
    AdminModel,
    ServiceDep,
    Uploader,
    UsableModel,
    rate_limited,
)
from facefaas.server.routes.models import (
    REPLAYED_HEADER,
    IdempotencyKey,
    UploadFields,
    create,
    parse_config,
    read_upload,
)
from facefaas.server.routes.paging import VisiblePage
from facefaas.server.routes.run import run_function
from facefaas.server.schemas import RunParams

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["seed compatibility"], dependencies=[Depends(rate_limited)])

SEED_PUBLIC_KEY = "00000000-0000-0000-0000-000000000000"
# The /bytes routes answer with a picture: the table's picture functions and their aliases.
PictureName = StrEnum(  # type: ignore[misc]
    "PictureName",
    [(n, n) for f in functions.picture_functions() for n in (f.name, *f.aliases)],
)


def _description(request: Request) -> str | None:
    """The seed's ``SSVM_Description`` header; bounded as the ``description`` field (422)."""
    for name in ("ssvm_description", "ssvm-description"):
        value = request.headers.get(name)
        if value is not None:
            return value
    return None


def _executable(record: ModelRecord) -> dict[str, Any]:
    return {
        "wasm_id": record.id,
        "wasm_description": record.description,
        "wasm_sha256": "0x" + record.sha256,
        "name": record.name,
        "private": record.private,
        "usage": {"calls": record.usage.calls, "errors": record.usage.errors},
    }


@router.post("/executables", openapi_extra=MODEL_BODY, summary="Upload (seed)")
async def upload(
    request: Request,
    response: Response,
    query: Annotated[UploadFields, Query()],
    service: ServiceDep,
    uploader: Uploader,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """As ``POST /api/models`` (``Idempotency-Key`` included), in the seed's words."""
    defaults = {"description": _description(request)}
    created, _ = await create(request, service, query, uploader, idempotency_key, defaults)
    if created.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return {
        "wasm_id": created.record.id,
        "wasm_sha256": "0x" + created.record.sha256,
        "SSVM_Usage_Key": created.usage_key or SEED_PUBLIC_KEY,
        "SSVM_Admin_Key": created.admin_key,
        "model_id": created.record.id,
    }


@router.get("/executables", summary="List (seed)")
async def list_executables(page: VisiblePage) -> list[dict[str, Any]]:
    """As ``GET /api/models``: in pages, private models only to holders of their keys."""
    return [_executable(r) for r in page]


@router.get("/executables/{model_id}", summary="Show (seed)")
async def show_executable(record: UsableModel, service: ServiceDep) -> dict[str, Any]:
    return _executable(await service.get_model(record.id))


@router.put("/update_wasm_binary/{model_id}", openapi_extra=MODEL_BODY, summary="Replace (seed)")
async def update_binary(
    record: AdminModel,
    request: Request,
    query: Annotated[UploadFields, Query()],
    service: ServiceDep,
) -> dict[str, Any]:
    with service.imports.admit():
        defaults = {"description": _description(request)}
        upload = await read_upload(request, service, query, defaults)
        record = await service.replace_model(record, upload)
    return {"wasm_id": record.id, "wasm_sha256": "0x" + record.sha256}


@router.delete("/executables/{model_id}", summary="Delete (seed)")
async def delete_executable(record: AdminModel, service: ServiceDep) -> dict[str, Any]:
    await service.delete_model(record)
    return {"wasm_id": record.id}


@router.put("/keys/{model_id}/usage_key", summary="Make private (seed)")
async def make_private(record: AdminModel, service: ServiceDep) -> dict[str, Any]:
    return {"SSVM_Usage_Key": await service.make_private(record)}


@router.delete("/keys/{model_id}/usage_key", summary="Make public (seed)")
async def make_public(record: AdminModel, service: ServiceDep) -> dict[str, Any]:
    await service.make_public(record)
    return {"SSVM_Usage_Key": SEED_PUBLIC_KEY}


@router.put("/state/{model_id}", summary="Set run defaults (seed state)")
async def put_state(record: AdminModel, request: Request, service: ServiceDep) -> dict[str, Any]:
    config = parse_config(await read_body(request, 64 * 1024, "state"))
    await service.set_config(record, config.model_dump(exclude_none=True))
    return {"wasm_id": record.id}


@router.get("/state/{model_id}", summary="Run defaults (seed state)")
async def get_state(record: UsableModel) -> dict[str, Any]:
    return record.config


_BYTES_ROUTE: dict[str, Any] = {
    "openapi_extra": IMAGE_BODY,
    "response_class": Response,
    "responses": {200: {"content": {"image/jpeg": {}, "image/png": {}}}},
}


@router.post(
    "/run/{model_id}/{function}/bytes", summary="Run, binary result (seed)", **_BYTES_ROUTE
)
@router.post(
    "/multipart/run/{model_id}/{function}/bytes",
    summary="Run with multipart input, binary result (seed)",
    **_BYTES_ROUTE,
)
async def run_bytes(
    function: PictureName,
    record: UsableModel,
    request: Request,
    query: Annotated[RunParams, Query()],
    service: ServiceDep,
) -> Response:
    """``infer`` is the seed's function: the picture with 1-px green boxes as JPEG quality 80.

    The body is the raw image, a multipart part or JSON on either path (the seed's multipart
    route named its parts by argument position; the first image part is used).
    """
    return await run_function(function.value, record, request, query, service)
