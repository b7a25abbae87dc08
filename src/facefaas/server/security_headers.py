"""`SecurityHeadersMiddleware`: the browser-side protections sent with every response.

* ``Content-Security-Policy``: scripts, styles, fonts and fetches from this origin only (no inline
  script or style, no ``eval``), images also from ``blob:`` and ``data:`` (the page's previews,
  Swagger UI's icons), nothing embedded, no ``<base>``, forms post here only, and no other site
  may frame the page (``frame-ancestors 'none'``);
* ``X-Content-Type-Options: nosniff``: a body is only ever what its ``Content-Type`` says;
* ``Referrer-Policy: no-referrer``: the page's URLs never leave with a request;
* ``X-Frame-Options: DENY``: ``frame-ancestors`` for browsers that predate it.

The web page at ``/`` and Swagger UI at ``/docs`` keep no inline script, so the policy costs
them nothing; API answers (JSON, images) carry the headers too, where they are harmless.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "SecurityHeadersMiddleware"]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

_ENCODED = [
    (name.encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS.items()
]


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in _ENCODED if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
