"""HTTP routes, one module per area: ``run`` (images), ``models`` (registry), ``seed`` (the seed's
FaaS API), ``ops`` (health, readiness, metrics, info); ``deps`` holds the dependencies they
share (the service, keys, who may do what, rate limits). The bodies' OpenAPI schemas live here."""

from __future__ import annotations

from typing import Any

from facefaas.server.schemas import RunJsonBody

__all__ = ["IMAGE_BODY", "MODEL_BODY"]

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
        "description": "The model file (a TensorFlow frozen graph, a bundle zip, ...) as raw "
        "bytes, or multipart with one part `file` per file of the model (e.g. det1/det2/det3."
        "caffemodel or pnet/rnet/onet.pt, each with its file name) and optional fields `name`, "
        "`description`, `private`, `format`.",
        "content": {
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
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
