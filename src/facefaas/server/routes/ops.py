"""Operations: ``/healthz``, ``/readyz``, ``/metrics`` (no auth, no rate limit), ``/api/info``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from facefaas import functions
from facefaas._version import __version__
from facefaas.families import FAMILIES
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.server.metrics import CONTENT_TYPE_LATEST
from facefaas.server.problems import problem_response
from facefaas.server.routes.deps import ServiceDep
from facefaas.server.runner import MEDIA_TYPES
from facefaas.server.schemas import FamilyInfo, FunctionInfo, ServiceInfo

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Ready", responses={503: {"description": "not ready yet"}})
async def readyz(service: ServiceDep) -> Response:
    """200 once the registry is open and the default model is loaded, else 503.

    With ``redis_url`` set, ``"redis"`` says whether Redis answers (``"ok"``, ``"unreachable"``);
    an unreachable Redis does not make the process unready: its counts fall back to this
    process (:mod:`facefaas.server.redis_link`), and one Redis down must not take every replica
    out of service."""
    if not service.ready:
        return problem_response(
            503, "the default model is not loaded yet", code="not-ready",
            headers={"Retry-After": "1"}, retry_after=1,
        )  # fmt: skip
    body: dict[str, str | None] = {
        "status": "ready",
        "default_model": DEFAULT_MODEL,
        "provider": service.provider,
    }
    if service.redis is not None:
        body["redis"] = "ok" if await service.redis.ping() else "unreachable"
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/info", response_model=ServiceInfo, summary="What this server offers")
async def info(service: ServiceDep) -> ServiceInfo:
    settings = service.settings
    return ServiceInfo(
        name="facefaas",
        version=__version__,
        default_model=DEFAULT_MODEL,
        functions=functions.names(),
        function_details=[FunctionInfo(**f.to_dict()) for f in functions.FUNCTIONS],
        families=[FamilyInfo(**family.describe()) for family in FAMILIES.values()],
        output_formats=sorted(MEDIA_TYPES),
        max_body_bytes=settings.max_body_bytes,
        max_pixels=settings.max_pixels,
        max_model_bytes=settings.max_model_bytes,
        max_batch_items=settings.max_batch_items,
        upload_token_required=settings.upload_token is not None,
        provider=service.provider,
    )
