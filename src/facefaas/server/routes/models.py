"""The registry over HTTP: ``/api/models`` (upload, list, show, replace, delete, keys, config)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from facefaas.models.bundle import read_bundle
from facefaas.models.export import bundle_zip
from facefaas.registry import CreatedModel as CreatedRecord
from facefaas.registry import ModelRecord
from facefaas.server.inputs import read_body, read_payload
from facefaas.server.routes import MODEL_BODY, Keys, ServiceDep, rate_limited
from facefaas.server.schemas import CreatedModel, ModelConfig, ModelInfo, UsageKey, UsageOut
from facefaas.server.service import ModelUpload, Service

__all__ = ["created_json", "model_info", "read_upload", "router"]

router = APIRouter(prefix="/api/models", tags=["models"], dependencies=[Depends(rate_limited)])

_CONFIG_LIMIT = 64 * 1024
_CONFIG_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ModelConfig.model_json_schema()}},
    }
}


class UploadFields(BaseModel):
    """What an uploader may say about a model (query string or multipart fields)."""

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
    """The model file and its fields (query, then multipart fields, then ``defaults``)."""
    payload = await read_payload(
        request, service.settings.max_model_bytes, what="model file", allow_json=False
    )
    merged = {**(defaults or {}), **query.model_dump(exclude_unset=True), **payload.fields}
    fields = UploadFields.model_validate(merged)
    return ModelUpload(data=payload.data, filename=payload.files[0][0], **fields.model_dump())


@router.post(
    "", status_code=201, response_model=CreatedModel, openapi_extra=MODEL_BODY,
    summary="Upload a model",
)  # fmt: skip
async def upload(
    request: Request, query: Annotated[UploadFields, Query()], service: ServiceDep, keys: Keys
) -> CreatedModel:
    """Import, validate and store a model. The id comes from its weights, so uploading the same
    weights again is a 409 whose ``model_id`` names the existing model. The keys are shown once."""
    service.check_upload(keys)
    upload = await read_upload(request, service, query)
    created, warnings = await service.create_model(upload, keys)
    return created_json(created, warnings)


@router.get("", response_model=list[ModelInfo], summary="List models")
async def list_models(service: ServiceDep) -> list[ModelInfo]:
    return [model_info(record) for record in await service.list_models()]


@router.get("/{model_id}", response_model=ModelInfo, summary="Show a model")
async def show(model_id: str, service: ServiceDep) -> ModelInfo:
    """Metadata, recommended parameters, run defaults, usage counts and mean latency."""
    return model_info(await service.get_model(model_id))


@router.put("/{model_id}", response_model=ModelInfo, openapi_extra=MODEL_BODY, summary="Replace")
async def replace(
    model_id: str,
    request: Request,
    query: Annotated[UploadFields, Query()],
    service: ServiceDep,
    keys: Keys,
) -> ModelInfo:
    """New weights under the same id (admin key)."""
    await service.admin(model_id, keys)
    upload = await read_upload(request, service, query)
    return model_info(await service.replace_model(model_id, upload, keys))


@router.delete("/{model_id}", status_code=204, summary="Delete a model")
async def delete(model_id: str, service: ServiceDep, keys: Keys) -> Response:
    """Remove the model and, unless another model shares them, its files (admin key)."""
    await service.delete_model(model_id, keys)
    return Response(status_code=204)


@router.put("/{model_id}/usage_key", response_model=UsageKey, summary="Make private")
async def make_private(model_id: str, service: ServiceDep, keys: Keys) -> UsageKey:
    """Give the model a new usage key (shown once); from now on running it needs that key."""
    return UsageKey(model_id=model_id, usage_key=await service.make_private(model_id, keys))


@router.delete("/{model_id}/usage_key", status_code=204, summary="Make public")
async def make_public(model_id: str, service: ServiceDep, keys: Keys) -> Response:
    await service.make_public(model_id, keys)
    return Response(status_code=204)


@router.get("/{model_id}/config", response_model=ModelConfig, summary="Run defaults")
async def get_config(model_id: str, service: ServiceDep, keys: Keys) -> ModelConfig:
    record = await service.model_for_use(model_id, keys)
    return ModelConfig.model_validate(record.config)


@router.put(
    "/{model_id}/config", response_model=ModelConfig, openapi_extra=_CONFIG_BODY,
    summary="Set run defaults",
)  # fmt: skip
async def put_config(
    model_id: str, request: Request, service: ServiceDep, keys: Keys
) -> ModelConfig:
    """Default ``min_size``, ``thresholds``, ``factor``, ``max_faces``, ``score_threshold`` for
    every run of this model; a request's own parameters still win (admin key)."""
    await service.admin(model_id, keys)
    config = parse_config(await read_body(request, _CONFIG_LIMIT, "config"))
    record = await service.set_config(model_id, config.model_dump(exclude_none=True), keys)
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
async def bundle(model_id: str, service: ServiceDep, keys: Keys) -> Response:
    """The model as a facefaas bundle zip (``pnet/rnet/onet.onnx``, ``manifest.json``), which
    uploads again under the same id."""
    record = await service.model_for_use(model_id, keys)
    data = await run_in_threadpool(_bundle_zip, service, record)
    headers = {"Content-Disposition": f'attachment; filename="{record.id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


def _bundle_zip(service: Service, record: ModelRecord) -> bytes:
    bundle = read_bundle(service.registry.bundle_path(record))
    manifest = dataclasses.replace(
        bundle.manifest, name=record.name, description=record.description
    )
    return bundle_zip(bundle.weights(), manifest)
