"""The request edge: read bodies within their limit and find the file and fields in them.

A request carries its file (an image or a model) in one of three ways:

* the raw body: ``application/octet-stream``, ``image/*`` (the seed's way), no content type, or
  ``application/x-www-form-urlencoded`` (what ``curl --data-binary`` sends by default);
* ``multipart/form-data``: the file in the part ``file`` (the first file part otherwise), other
  parts are parameters;
* ``application/json`` (images only): ``{"image": "<base64 or data: URI>", ...parameters}``.

Anything else is 415. Bodies are counted as they stream in and refused with 413 past the limit;
they stay in memory (never written to disk) and are dropped after the request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from facefaas.errors import ImageDecodeError, InputError, TooLargeError, UnsupportedMediaError

__all__ = [
    "Part",
    "Payload",
    "media_type",
    "preferred",
    "read_body",
    "read_files",
    "read_parts",
    "read_payload",
]

_RAW_TYPES = ("application/octet-stream", "application/x-www-form-urlencoded", "")


@dataclass
class Payload:
    """What a request carried: its file(s) and its parameters (strings or JSON values)."""

    files: list[tuple[str | None, bytes]]  # (filename, bytes)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> bytes:
        return self.files[0][1] if self.files else b""


def media_type(request: Request) -> str:
    """The request's media type, lowercased, without parameters ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int, what: str = "request body") -> bytes:
    """The whole body, refused with TooLargeError (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InputError("Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(what, limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> TooLargeError:
    return TooLargeError(
        f"the {what} is over the limit of {limit} bytes", limit=limit, unit="bytes"
    )


async def read_payload(
    request: Request, limit: int, *, what: str, allow_json: bool, require_file: bool = True
) -> Payload:
    """The file and fields of a request (module docstring), within ``limit`` bytes.

    ``require_file=False`` (the image comes from elsewhere, e.g. a URL): a multipart body or
    JSON may carry fields only, and a multipart ``file`` may be a plain field.
    """
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await _read_multipart(request, limit, what, require_file=require_file)
    if kind == "application/json" and allow_json:
        return _from_json(await read_body(request, limit, what), require_file=require_file)
    if kind in _RAW_TYPES or kind.startswith("image/"):
        return Payload(files=[(None, await read_body(request, limit, what))])
    accepted = "application/octet-stream, image/*, multipart/form-data"
    if allow_json:
        accepted += ", application/json"
    raise UnsupportedMediaError(f"content type {kind!r} is not accepted; send one of {accepted}")


async def read_files(request: Request, limit: int, *, what: str, models: bool = False) -> Payload:
    """Several files: every multipart file part, or JSON ``{"images": [...]}`` (a batch of
    images); with ``models``, a raw body (one model file) instead of JSON."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await _read_multipart(request, limit, what, all_files=True)
    if models:
        if kind in _RAW_TYPES:
            return Payload(files=[(None, await read_body(request, limit, what))])
        raise UnsupportedMediaError(
            f"content type {kind!r} is not accepted for a {what}; send the file as "
            "application/octet-stream, or multipart/form-data with one part 'file' per file"
        )
    if kind == "application/json":
        body = _json_object(await read_body(request, limit, what))
        images = body.pop("images", None)
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise InputError("a JSON batch needs 'images': a list of base64 strings or data URIs")
        return Payload(files=[(None, _decode_base64(i)) for i in images], fields=body)
    raise UnsupportedMediaError(
        f"content type {kind!r} is not accepted for a batch; send multipart/form-data or JSON"
    )


Part = tuple[str, str | tuple[str | None, bytes]]  # (name, text) or (name, (filename, bytes))


async def read_parts(request: Request, limit: int, *, what: str, max_parts: int) -> list[Part]:
    """Every part of a multipart body in the order sent: a field's text, or a file's name and
    bytes (names may repeat: a job's inputs keep their order)."""
    form = await _parse_multipart(request, limit, what, max_files=max_parts, max_fields=max_parts)
    parts: list[Part] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                parts.append((name, (value.filename, await value.read())))
            else:
                parts.append((name, value))
    finally:
        await form.close()
    return parts


async def _parse_multipart(
    request: Request, limit: int, what: str, *, max_files: int = 1000, max_fields: int = 100
) -> FormData:
    body = await read_body(request, limit, what)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers, replay(), max_files=max_files, max_fields=max_fields, max_part_size=limit
    )
    parser.spool_max_size = limit + 1  # keep uploads in memory: never write them to disk
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"malformed multipart body: {exc.message}") from None


async def _read_multipart(
    request: Request, limit: int, what: str, *, all_files: bool = False, require_file: bool = True
) -> Payload:
    form = await _parse_multipart(request, limit, what)
    uploads: list[tuple[str, UploadFile]] = []
    fields: dict[str, Any] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append((name, value))
            elif name == "file" and require_file:
                raise InputError("multipart part 'file' must be a file (a part with a filename)")
            elif name in fields:
                raise InputError(f"multipart field {name!r} is given twice")
            else:
                fields[name] = value
        if not uploads and require_file:
            raise InputError("the multipart body has no file part (name it 'file')")
        if not all_files:
            # The part named 'file', else the first file part.
            named = [u for u in uploads if u[0] == "file"]
            uploads = named[:1] or uploads[:1]
        files = [(upload.filename, await upload.read()) for _, upload in uploads]
    finally:
        await form.close()
    return Payload(files=files, fields=fields)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError("the JSON body must be an object")
    return data


def _from_json(body: bytes, *, require_file: bool = True) -> Payload:
    data = _json_object(body)
    if not require_file and "image" not in data:
        return Payload(files=[], fields=data)
    image = data.pop("image", None)
    if not isinstance(image, str):
        raise InputError("a JSON request needs 'image': base64 of the image or a data: URI")
    return Payload(files=[(None, _decode_base64(image))], fields=data)


def _decode_base64(text: str) -> bytes:
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ImageDecodeError("a data: URI must be base64 ('data:image/png;base64,...')")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageDecodeError("the image is not valid base64") from None


def preferred(request: Request, offered: tuple[str, ...]) -> str | None:
    """The media type of ``offered`` the ``Accept`` header ranks highest (``None``: no match).

    Wildcards (``*/*``, ``image/*``) do not choose: they leave the server's default.
    """
    header = request.headers.get("accept", "")
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        kind = pieces[0].lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind in offered and quality > 0:
            ranked.append((-quality, position, kind))
    return min(ranked)[2] if ranked else None
