"""`create_app`: the facefaas HTTP service as a FastAPI app.

Routes: ``/api/run``, ``/api/batch``, ``/api/models`` (:mod:`.routes`), the seed's API, operations
(``/healthz``, ``/readyz``, ``/metrics``, ``/api/info``), OpenAPI at ``/docs``, and the web page
(``static/``) at ``/``. The lifespan opens the registry and loads the default model in the
background (``/readyz`` answers 503 until it is loaded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from facefaas._version import __version__
from facefaas.server.apidocs import install_api_docs
from facefaas.server.edge_limits import BodyBudget, EdgeLimitsMiddleware
from facefaas.server.inference import Inference
from facefaas.server.problems import install_problem_handlers
from facefaas.server.requestlog import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    configure_logging,
)
from facefaas.server.routes import ephemeral, jobs, models, ops, run, seed
from facefaas.server.security_headers import SecurityHeadersMiddleware
from facefaas.server.service import Service
from facefaas.settings import Settings

__all__ = ["STATIC_DIR", "create_app", "create_app_from_env"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

_KEY_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    REQUEST_ID_HEADER,
    "SSVM_Admin_Key",
    "SSVM-Admin-Key",
    "SSVM_Usage_Key",
    "SSVM-Usage-Key",
    "SSVM_Description",
    "SSVM-Description",
    "SSVM_Fetch",
    "SSVM-Fetch",
    "SSVM_Callback",
    "SSVM-Callback",
    "X-Job-Token",
]
_EXPOSED_HEADERS = ["Retry-After", REQUEST_ID_HEADER, "X-Face-Count", "Server-Timing", "Link"]


class _Page(StaticFiles):
    """The web page, mounted at ``/`` after every route.

    Under ``/api/`` nothing is a file: a path that a route serves with another method is a 405,
    any other a 404, whatever the method (StaticFiles alone would answer 405 to any POST).
    """

    def __init__(self, routes: list[BaseRoute], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._routes = routes

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.replace("\\", "/").lstrip("/").startswith("api/"):
            partial = [r for r in self._routes if r.matches(scope)[0] == Match.PARTIAL]
            if partial:
                raise HTTPException(status_code=405)
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def create_app(
    settings: Settings | None = None,
    *,
    reconcile: bool | None = None,
    inference: Inference | None = None,
) -> FastAPI:
    """The service configured by ``settings`` (``Settings()`` from the environment if omitted).

    ``reconcile`` (default: when ``settings.workers == 1``) cleans the model store at startup;
    with several workers ``facefaas serve`` does it once, before starting them. ``inference``
    is where images run (default: this process; :mod:`facefaas.scale.serve` passes Ray's).
    """
    settings = settings or Settings()
    service = Service(settings, inference=inference)
    clean = settings.workers == 1 if reconcile is None else reconcile

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start(reconcile=clean)
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="facefaas",
        version=__version__,
        summary="Face detection as a function: MTCNN on ONNX Runtime, with a model registry.",
        lifespan=lifespan,
        docs_url=None,  # served from this process by install_api_docs, not from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.service = service
    install_problem_handlers(app)
    routers = (ops.router, run.router, models.router, seed.router, ephemeral.router, jobs.router)
    for router in routers:
        app.include_router(router)
    install_api_docs(app)
    # Last: the page at / must not shadow any route. Missing files are 404 problems.
    page = _Page(app.router.routes, directory=STATIC_DIR, html=True, check_dir=False)
    app.mount("/", page, name="static")
    # Outermost last: request ids and the access line, security headers, body limits, CORS.
    if settings.cors_origins:
        # Keys travel in headers, never in cookies: no credentials mode, whatever the origins.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=_KEY_HEADERS,
            expose_headers=_EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(
        EdgeLimitsMiddleware,
        body_timeout=settings.body_timeout,
        body_min_rate=settings.body_min_rate,
        budget=BodyBudget(settings.body_buffer_bytes),
        budget_wait=settings.body_buffer_wait,
        retry_after=settings.retry_after,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, observer=service.metrics)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings and logging from ``FACEFAAS_*``."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
