"""The registry over HTTP: ``/api/models`` (upload, list, show, replace, delete, keys, config)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from facefaas.models.bundle import read_bundle
from facefaas.models.export import bundle_zip
from facefaas.registry import CreatedModel as CreatedRecord
from facefaas.registry import Creation, ModelRecord
from facefaas.server.inputs import read_body, read_files
from facefaas.server.routes import MODEL_BODY
from facefaas.server.routes.deps import (
    AdminModel,
    ServiceDep,
    Uploader,
    UsableModel,
    rate_limited,
)
from facefaas.server.routes.paging import VisiblePage
from facefaas.server.schemas import CreatedModel, ModelConfig, ModelInfo, UsageKey, UsageOut
from facefaas.server.service import ModelUpload, Service
from facefaas.server.uploads import IDEMPOTENCY_KEY_PATTERN, request_digest

__all__ = ["IdempotencyKey", "create", "created_json", "model_info", "read_upload", "router"]

router = APIRouter(prefix="/api/models", tags=["models"], dependencies=[Depends(rate_limited)])

_CONFIG_LIMIT = 64 * 1024
_CONFIG_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ModelConfig.model_json_schema()}},
    }
}


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="16 to 255 visible ASCII characters, e.g. a UUID: a retry with the same key "
        "and the same request gets the model it created (keys issued again), not a second one",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


class UploadFields(BaseModel):
    """What an uploader may say about a model (query string, multipart fields or the seed's
    ``SSVM_Description`` header): every text bounded, over-long ones refused (422)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    private: bool = False
    format: str | None = Field(
        default=None, max_length=64, description="importer to use; default: guess"
    )


def model_info(record: ModelRecord) -> ModelInfo:
    usage = record.usage
    return ModelInfo(
        id=record.id,
        name=record.name,
        description=record.description,
        sha256=record.sha256,
        format=record.format,
        family=record.family,
        builtin=record.builtin,
        private=record.private,
        parameters=record.parameters,
        config=record.config,
        created_at=record.created_at,
        updated_at=record.updated_at,
        usage=UsageOut(
            calls=usage.calls,
            faces=usage.faces,
            errors=usage.errors,
            mean_latency_ms=usage.mean_latency_ms,
            last_used_at=usage.last_used_at,
        ),
    )


def created_json(created: CreatedRecord, warnings: list[str]) -> CreatedModel:
    return CreatedModel(
        **model_info(created.record).model_dump(),
        model_id=created.record.id,
        admin_key=created.admin_key,
        usage_key=created.usage_key,
        warnings=warnings,
    )


async def read_upload(
    request: Request, service: Service, query: UploadFields, defaults: dict[str, Any] | None = None
) -> ModelUpload:
    """The model's file(s) and fields (query, then multipart fields, then ``defaults``).

    A multipart body may carry several file parts (a model's det1-det3 or pnet/rnet/onet files),
    each with its file name; the importer reads them together. Call it inside
    ``service.imports.admit()``, so that bodies are read only for admitted imports.
    """
    payload = await read_files(
        request, service.settings.max_model_bytes, what="model file", models=True
    )
    merged = {**(defaults or {}), **query.model_dump(exclude_unset=True), **payload.fields}
    fields = UploadFields.model_validate(merged)
    return ModelUpload(files=payload.files, **fields.model_dump())


async def create(
    request: Request,
    service: Service,
    query: UploadFields,
    uploader: str,
    idempotency_key: str | None,
    defaults: dict[str, Any] | None = None,
) -> tuple[CreatedRecord, list[str]]:
    """Admit, read and create an upload (both upload routes); sets the replay header."""
    with service.imports.admit():
        upload = await read_upload(request, service, query, defaults)
        fields = {k: getattr(upload, k) for k in ("name", "description", "format", "private")}
        creation = Creation(uploader, request_digest(upload.files, fields), idempotency_key)
        return await service.create_model(upload, creation)


@router.post(
    "", status_code=201, response_model=CreatedModel, openapi_extra=MODEL_BODY,
    summary="Upload a model",
)  # fmt: skip
async def upload(
    request: Request,
    response: Response,
    query: Annotated[UploadFields, Query()],
    service: ServiceDep,
    uploader: Uploader,
    idempotency_key: IdempotencyKey = None,
) -> CreatedModel:
    """Import, validate and store a model under a new random id. The keys are shown once. With
    an ``Idempotency-Key``, a retry of the same request gets the same model (with its keys issued
    again and ``Idempotent-Replayed: true``) instead of a second one."""
    created, warnings = await create(request, service, query, uploader, idempotency_key)
    if created.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return created_json(created, warnings)


@router.get("", response_model=list[ModelInfo], summary="List models")
async def list_models(page: VisiblePage) -> list[ModelInfo]:
    """Built-in models first, then by upload time, a page at a time (``Link: <...>;
    rel="next"`` when more follow). Private models are listed only to holders of their keys."""
    return [model_info(record) for record in page]


@router.get("/{model_id}", response_model=ModelInfo, summary="Show a model")
async def show(record: UsableModel, service: ServiceDep) -> ModelInfo:
    """Metadata, recommended parameters, run defaults, usage counts and mean latency. A private
    model's metadata needs one of its keys, as running it does (401 without, 403 with another)."""
    return model_info(await service.get_model(record.id))


@router.put("/{model_id}", response_model=ModelInfo, openapi_extra=MODEL_BODY, summary="Replace")
async def replace(
    record: AdminModel,
    request: Request,
    query: Annotated[UploadFields, Query()],
    service: ServiceDep,
) -> ModelInfo:
    """New weights under the same id (admin key); no other model changes. Weights of another
    detector family are refused (409): upload them as a new model."""
    with service.imports.admit():
        upload = await read_upload(request, service, query)
        return model_info(await service.replace_model(record, upload))


@router.delete("/{model_id}", status_code=204, summary="Delete a model")
async def delete(record: AdminModel, service: ServiceDep) -> Response:
    """Remove the model and, unless another model shares them, its files (admin key)."""
    await service.delete_model(record)
    return Response(status_code=204)


@router.put("/{model_id}/usage_key", response_model=UsageKey, summary="Make private")
async def make_private(record: AdminModel, service: ServiceDep) -> UsageKey:
    """Give the model a new usage key (shown once); from now on running it needs that key."""
    return UsageKey(model_id=record.id, usage_key=await service.make_private(record))


@router.delete("/{model_id}/usage_key", status_code=204, summary="Make public")
async def make_public(record: AdminModel, service: ServiceDep) -> Response:
    await service.make_public(record)
    return Response(status_code=204)


@router.get("/{model_id}/config", response_model=ModelConfig, summary="Run defaults")
async def get_config(record: UsableModel) -> ModelConfig:
    return ModelConfig.model_validate(record.config)


@router.put(
    "/{model_id}/config", response_model=ModelConfig, openapi_extra=_CONFIG_BODY,
    summary="Set run defaults",
)  # fmt: skip
async def put_config(record: AdminModel, request: Request, service: ServiceDep) -> ModelConfig:
    """Default ``min_size``, ``thresholds``, ``factor``, ``max_faces``, ``score_threshold`` for
    every run of this model; a request's own parameters still win (admin key)."""
    config = parse_config(await read_body(request, _CONFIG_LIMIT, "config"))
    record = await service.set_config(record, config.model_dump(exclude_none=True))
    return ModelConfig.model_validate(record.config)


def parse_config(body: bytes) -> ModelConfig:
    """A config from JSON text (an object; ``null`` or empty clears it)."""
    text = body.strip()
    if text in (b"", b"null"):
        return ModelConfig()
    return ModelConfig.model_validate_json(text)


@router.get(
    "/{model_id}/bundle",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    summary="Download the model",
)
async def bundle(record: UsableModel, service: ServiceDep) -> Response:
    """The model as a facefaas bundle zip (``pnet/rnet/onet.onnx``, ``manifest.json``), which
    uploads again as a new model with the same ``sha256``."""
    data = await run_in_threadpool(_bundle_zip, service, record)
    headers = {"Content-Disposition": f'attachment; filename="{record.id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


def _bundle_zip(service: Service, record: ModelRecord) -> bytes:
    bundle = read_bundle(service.registry.bundle_path(record))
    manifest = dataclasses.replace(
        bundle.manifest, name=record.name, description=record.description
    )
    mtcnn = manifest.family == "mtcnn"
    return bundle_zip(bundle.weights() if mtcnn else bundle.networks, manifest)
