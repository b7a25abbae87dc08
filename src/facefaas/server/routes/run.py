"""Running models: ``POST /api/run/{model_id}/{function}`` and the batch route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from facefaas import functions
from facefaas.deadline import Deadline
from facefaas.errors import TooLargeError
from facefaas.request import ImageFormat
from facefaas.server.edge import detection_request
from facefaas.server.inputs import preferred, read_files
from facefaas.server.problems import error_extensions, problem_body
from facefaas.server.remote import deliver, read_run_input
from facefaas.server.routes import IMAGE_BODY
from facefaas.server.routes.deps import ServiceDep, UsableModel, rate_limited
from facefaas.server.runner import RunOutput
from facefaas.server.schemas import BatchResponse, CropsResponse, RunParams

__all__ = ["FunctionName", "accepted_format", "image_response", "merged_params", "router"]

router = APIRouter(prefix="/api", tags=["run"], dependencies=[Depends(rate_limited)])

# The path's {function}: every name and alias of the table (an enum, so OpenAPI lists them).
FunctionName = StrEnum(  # type: ignore[misc]
    "FunctionName", [(name, name) for name in functions.names(aliases=True)]
)

_IMAGE_TYPES = ("image/png", "image/jpeg")
_DISCONNECT_POLL_SECONDS = 0.25
_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "; ".join(
            f"{f.name}: {' or '.join(f.media_types)}" for f in functions.FUNCTIONS
        ),
        "content": {
            "application/json": {"schema": CropsResponse.model_json_schema()},
            "image/jpeg": {},
            "image/png": {},
            "application/zip": {},
        },
    }
}


def merged_params(query: RunParams, fields: dict[str, Any]) -> RunParams:
    """Query parameters overlaid by body fields (multipart or JSON), validated together."""
    merged = {**query.model_dump(exclude_unset=True), **fields}
    return RunParams.model_validate(merged)


def accepted_format(request: Request) -> ImageFormat | None:
    """What ``Accept`` prefers among PNG and JPEG (``None``: no preference)."""
    chosen = preferred(request, _IMAGE_TYPES)
    return "png" if chosen == "image/png" else "jpeg" if chosen == "image/jpeg" else None


def image_response(output: RunOutput) -> Response:
    """The HTTP response of a job: JSON, or bytes with the face count and timings in headers."""
    if output.body is not None:
        return JSONResponse(output.body)
    timing = ", ".join(f"{name};dur={ms}" for name, ms in output.timings_ms.items())
    headers = {"X-Face-Count": str(len(output.faces)), "Server-Timing": timing}
    if output.filename:
        headers["Content-Disposition"] = f'attachment; filename="{output.filename}"'
    return Response(output.content, media_type=output.media_type, headers=headers)


@asynccontextmanager
async def stopped_on_disconnect(request: Request, deadline: Deadline) -> AsyncIterator[None]:
    """Cancel ``deadline`` if the client goes away while the block runs (its work stops)."""

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(_DISCONNECT_POLL_SECONDS)
        deadline.cancel("the client went away")

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()


async def run_function(
    name: str, record: UsableModel, request: Request, query: RunParams, service: ServiceDep
) -> Response:
    """Read the image and parameters, build the one typed request, run it, answer."""
    function = functions.get_function(name)
    deadline = service.deadline()
    service.inference.refuse_if_full()  # before reading a body the server has no room for
    run_input = await read_run_input(request, service.settings)  # body, or SSVM_Fetch / fetch_*
    payload = run_input.payload
    params = merged_params(query, payload.fields)
    if function.output == "crops" and not params.zip:
        wanted = preferred(request, ("application/zip", "application/json"))
        params = params.model_copy(update={"zip": wanted == "application/zip"})
    job = detection_request(function, params, record, accepted_format(request))
    async with stopped_on_disconnect(request, deadline):
        output = await service.run(record, payload.data, job, deadline)
    if run_input.callback is not None:  # SSVM_Callback: the result goes on there
        return await deliver(run_input.callback, output, service.settings)
    return image_response(output)


@router.post(
    "/run/{model_id}/{function}",
    summary="Run a model on one image",
    openapi_extra=IMAGE_BODY,
    responses=_RUN_RESPONSES,
    response_class=Response,
)
async def run(
    function: FunctionName,
    record: UsableModel,
    request: Request,
    query: Annotated[RunParams, Query()],
    service: ServiceDep,
) -> Response:
    """Run one function of the table (``GET /api/info`` lists them with their options):
    ``detect`` gives the faces as JSON; ``annotate``, ``blur``, ``pixelate`` and ``redact`` the
    image; ``crops`` one chip per face; ``infer`` the seed's picture (1-px green boxes, JPEG q80).

    No faces is a 200 with an empty list (or the image unchanged)."""
    return await run_function(function.value, record, request, query, service)


@router.post(
    "/batch/{model_id}/detect",
    summary="Detect faces in many images",
    response_model=BatchResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "multipart with one part per image (any names), or JSON "
            '{"images": ["<base64 or data URI>", ...], ...parameters}',
            "content": {"multipart/form-data": {}, "application/json": {}},
        }
    },
)
async def batch(
    record: UsableModel,
    request: Request,
    query: Annotated[RunParams, Query()],
    service: ServiceDep,
) -> JSONResponse:
    """Each image gets its own ``status``: one bad image does not fail the others."""
    deadline = service.deadline()
    service.inference.refuse_if_full()
    payload = await read_files(request, service.settings.max_body_bytes, what="batch")
    limit = service.settings.max_batch_items
    if len(payload.files) > limit:
        raise TooLargeError(
            f"{len(payload.files)} images in one batch; the limit is {limit}",
            limit=limit,
            unit="images",
        )
    params = merged_params(query, payload.fields)
    job = detection_request(functions.get_function("detect"), params, record, None)
    async with stopped_on_disconnect(request, deadline):
        results = await service.run_batch(record, payload.files, job, deadline)
    items: list[dict[str, Any]] = []
    for index, ((filename, _), result) in enumerate(zip(payload.files, results, strict=True)):
        item: dict[str, Any] = {"index": index, "filename": filename}
        if isinstance(result, RunOutput):
            item.update(status=200, result=result.body)
        else:
            item.update(
                status=result.status,
                error=problem_body(
                    result.status, result.message, code=result.code, **error_extensions(result)
                ),
            )
        items.append(item)
    succeeded = sum(1 for item in items if item["status"] == 200)
    return JSONResponse(
        {
            "model_id": record.id,
            "succeeded": succeeded,
            "failed": len(items) - succeeded,
            "results": items,
        }
    )
