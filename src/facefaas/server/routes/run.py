"""Running models: ``POST /api/run/{model_id}/{function}`` and the batch route."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from facefaas.errors import TooLargeError
from facefaas.server.inputs import preferred, read_files, read_payload
from facefaas.server.problems import error_extensions, problem_body
from facefaas.server.routes import IMAGE_BODY, Keys, ServiceDep, rate_limited
from facefaas.server.runner import Function, RunOutput
from facefaas.server.schemas import BatchResponse, CropsResponse, RunParams

__all__ = ["image_response", "merged_params", "output_format", "router"]

router = APIRouter(prefix="/api", tags=["run"], dependencies=[Depends(rate_limited)])

RunFunction = Literal["detect", "annotate", "blur", "pixelate", "crops", "infer"]

_IMAGE_TYPES = ("image/png", "image/jpeg")
_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "detect: JSON; annotate/blur/pixelate/infer: the image; crops: JSON "
        "(or a zip with zip=true or Accept: application/zip)",
        "content": {
            "application/json": {"schema": CropsResponse.model_json_schema()},
            "image/jpeg": {},
            "image/png": {},
            "application/zip": {},
        },
    }
}


def merged_params(query: RunParams, fields: dict[str, Any]) -> dict[str, Any]:
    """Query parameters overlaid by body fields (multipart or JSON), validated together."""
    merged = {**query.model_dump(exclude_unset=True), **fields}
    return RunParams.model_validate(merged).model_dump(exclude_unset=True)


def output_format(params: dict[str, Any], request: Request) -> str | None:
    """``format`` if given, else what ``Accept`` prefers among PNG and JPEG (None: default)."""
    fmt = params.get("format")
    if fmt:
        return "png" if fmt == "png" else "jpeg"
    chosen = preferred(request, _IMAGE_TYPES)
    return {"image/png": "png", "image/jpeg": "jpeg"}.get(chosen or "")


def image_response(output: RunOutput) -> Response:
    """The HTTP response of a job: JSON, or bytes with the face count and timings in headers."""
    if output.body is not None:
        return JSONResponse(output.body)
    timing = ", ".join(f"{name};dur={ms}" for name, ms in output.timings_ms.items())
    headers = {"X-Face-Count": str(len(output.faces)), "Server-Timing": timing}
    if output.filename:
        headers["Content-Disposition"] = f'attachment; filename="{output.filename}"'
    return Response(output.content, media_type=output.media_type, headers=headers)


@router.post(
    "/run/{model_id}/{function}",
    summary="Run a model on one image",
    openapi_extra=IMAGE_BODY,
    responses=_RUN_RESPONSES,
    response_class=Response,
)
async def run(
    model_id: str,
    function: RunFunction,
    request: Request,
    query: Annotated[RunParams, Query()],
    service: ServiceDep,
    keys: Keys,
) -> Response:
    """``detect`` gives the faces as JSON; ``annotate``, ``blur`` and ``pixelate`` the image;
    ``crops`` one chip per face; ``infer`` the seed's picture (1-px green boxes, JPEG q80).

    No faces is a 200 with an empty list (or the image unchanged)."""
    record = await service.model_for_use(model_id, keys)
    payload = await read_payload(
        request, service.settings.max_body_bytes, what="image", allow_json=True
    )
    params = merged_params(query, payload.fields)
    name: Function = "seed" if function == "infer" else function
    if name == "crops" and not params.get("zip"):
        params["zip"] = preferred(request, ("application/zip", "application/json")) == (
            "application/zip"
        )
    spec = service.spec(record, name, params, output_format(params, request))
    return image_response(await service.run(record, payload.data, spec))


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
    model_id: str,
    request: Request,
    query: Annotated[RunParams, Query()],
    service: ServiceDep,
    keys: Keys,
) -> JSONResponse:
    """Each image gets its own ``status``: one bad image does not fail the others."""
    record = await service.model_for_use(model_id, keys)
    payload = await read_files(request, service.settings.max_body_bytes, what="batch")
    limit = service.settings.max_batch_items
    if len(payload.files) > limit:
        raise TooLargeError(
            f"{len(payload.files)} images in one batch; the limit is {limit}",
            limit=limit,
            unit="images",
        )
    spec = service.spec(record, "detect", merged_params(query, payload.fields), None)
    results = await service.run_batch(record, payload.files, spec)
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
