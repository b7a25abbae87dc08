"""HTTP routes, one module per area: ``run`` (images), ``models`` (registry), ``seed`` (the seed's
FaaS API), ``ops`` (health, readiness, metrics, info). Shared dependencies live here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from facefaas.server.auth import presented_keys
from facefaas.server.schemas import RunJsonBody
from facefaas.server.service import Service

__all__ = ["IMAGE_BODY", "MODEL_BODY", "Keys", "ServiceDep", "get_service", "rate_limited"]


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def keys_of(request: Request) -> list[str]:
    return presented_keys(request)


def rate_limited(request: Request, service: Annotated[Service, Depends(get_service)]) -> None:
    """Count the request against its client's rate limit (429 when over)."""
    if service.limiter.enabled:
        client = request.client.host if request.client else None
        service.limiter.hit(service.limiter.client_id(presented_keys(request), client))


ServiceDep = Annotated[Service, Depends(get_service)]
Keys = Annotated[list[str], Depends(keys_of)]

_BINARY = {"schema": {"type": "string", "format": "binary"}}

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image: raw bytes, multipart part `file`, or JSON with base64 `image`.",
        "content": {
            "application/octet-stream": _BINARY,
            "image/*": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {"schema": RunJsonBody.model_json_schema()},
        },
    }
}

MODEL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The model file (a TensorFlow frozen graph, a bundle zip, ...): raw bytes "
        "or multipart part `file` with optional fields `name`, `description`, `private`, `format`.",
        "content": {
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "private": {"type": "boolean"},
                        "format": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
        },
    }
}
