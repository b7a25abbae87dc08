"""The OpenAPI pages at ``/docs``, served from this process: no CDN, so they work offline.

Swagger UI's files come from the ``swagger-ui-bundle`` package (Swagger UI 4.15, Apache-2.0,
maintained with connexion) and are mounted at ``/docs/assets``; the page and its start script
are ours, with no inline script, so a strict Content-Security-Policy can cover them.

Swagger UI 4 renders only documents that say ``openapi: 3.0.x`` and refuses FastAPI's 3.1
("Unable to render this definition"), so the page reads ``/docs/openapi.json``: the same
document labelled 3.0.3, which it displays in full. ``/openapi.json`` stays the true 3.1 one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["install_api_docs"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/start.js"></script>
</body>
</html>
"""

_START = """window.ui = SwaggerUIBundle({
  url: "%s",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


_SWAGGER_UI_VERSION = "3.0.3"  # the newest OpenAPI version Swagger UI 4 renders


def install_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app`` at ``/docs`` (create the app with ``docs_url=None``)."""
    from swagger_ui_bundle import swagger_ui_path

    page = _PAGE.format(title=app.title)
    start = _START % "/docs/openapi.json"

    @app.get("/docs/openapi.json", include_in_schema=False)
    async def docs_openapi() -> JSONResponse:
        document: dict[str, Any] = {**app.openapi(), "openapi": _SWAGGER_UI_VERSION}
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/start.js", include_in_schema=False)
    async def docs_start() -> Response:
        return Response(start, media_type="text/javascript")

    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
