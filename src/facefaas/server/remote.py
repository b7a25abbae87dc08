"""The seed's remote inputs and outputs on the run routes: images by URL and callbacks.

* ``SSVM_Fetch: <url>`` (or ``SSVM-Fetch``): the server downloads the image from the URL instead
  of reading it from the body (which must then be empty, or multipart/JSON parameters only).
* A multipart field whose name starts with ``fetch`` (the seed's ``fetch_input_2=<url>``), or a
  field ``file`` whose value is a URL: the same, in place of a file part.
* ``SSVM_Callback: {"hostname", "port", "path", "method", "headers", "protocol"}`` (a header, or a
  multipart/JSON field of that name): the result is sent on there, and the caller is told where
  it went and what the target answered.

Every URL goes through the guard of :mod:`facefaas.fetch` with the service's allowlist, byte
limit and timeouts. A callback target is checked before the image is run, so a refused one costs
no inference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facefaas.errors import FetchRefusedError, InputError, UpstreamError
from facefaas.fetch import FetchPolicy, check_target, fetch_image, send
from facefaas.server.inputs import Payload, media_type, read_body, read_payload
from facefaas.server.runner import RunOutput
from facefaas.settings import Settings

__all__ = ["Callback", "RunInput", "deliver", "fetch_policy", "parse_callback", "read_run_input"]

FETCH_HEADERS = ("ssvm_fetch", "ssvm-fetch")
CALLBACK_NAMES = ("ssvm_callback", "ssvm-callback")
_STRUCTURED = ("multipart/form-data", "application/json")
_METHODS = ("POST", "PUT")
_MAX_CALLBACK_HEADERS = 32
# Set by the server for the request it makes; a callback object may not choose them.
_SERVER_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer",
     "keep-alive", "proxy-authorization", "proxy-connection", "expect"}
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_PATH = re.compile(r"^/[\x21-\x7e]{0,2047}$")


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The guard's policy from the service's settings: its allowlist, the upload byte limit,
    its timeouts."""
    return FetchPolicy(
        allow=tuple(settings.fetch_allow),
        max_bytes=settings.max_body_bytes,
        connect_timeout=settings.fetch_connect_timeout,
        read_timeout=settings.fetch_read_timeout,
        timeout=settings.fetch_timeout,
    )


@dataclass(frozen=True)
class Callback:
    """Where a run's result goes: the URL the seed's object names, its method and headers, and
    what to add to a failed TLS handshake's error when https was assumed rather than asked for."""

    url: str
    method: str
    headers: dict[str, str]
    tls_hint: str | None = None


@dataclass
class RunInput:
    """A run's image and parameters, and its callback when one was asked for."""

    payload: Payload
    callback: Callback | None = None


def _refuse(message: str) -> FetchRefusedError:
    return FetchRefusedError(f"SSVM_Callback: {message}", reason="callback")


def _callback_headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > _MAX_CALLBACK_HEADERS:
        raise _refuse(f"'headers' must be an object of at most {_MAX_CALLBACK_HEADERS} headers")
    headers: dict[str, str] = {}
    for name, item in value.items():
        if not _TOKEN.match(name) or name.lower() in _SERVER_HEADERS:
            raise _refuse(f"header {name!r} may not be set")
        text = str(item) if isinstance(item, str | int | float) else None
        if text is None or any(c in text for c in "\r\n\0") or len(text) > 4096:
            raise _refuse(f"header {name!r} must be a short single-line text")
        headers[name] = text
    return headers


def parse_callback(text: str, policy: FetchPolicy) -> Callback:
    """The seed's callback object (Node's ``https.request`` options), checked by the guard.

    ``hostname`` (or ``host``), ``port`` (default 443, or 80 with ``http``), ``path`` (with its
    query), ``method`` (POST or PUT), ``headers``, ``protocol`` (``"http:"``/``"https:"``; https
    unless it or port 80 says http). A ``body`` member is ignored: the result is the body.
    """
    try:
        options = json.loads(text)
    except ValueError:
        raise _refuse("not a JSON object") from None
    if not isinstance(options, dict):
        raise _refuse("not a JSON object")
    host = options.get("hostname", options.get("host"))
    if not isinstance(host, str) or not (_HOST.match(host) or ":" in host):
        raise _refuse("'hostname' must be a host name or address")
    port = options.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        raise _refuse("'port' must be a number from 1 to 65535")
    protocol = str(options.get("protocol") or "").lower().rstrip(":")
    if protocol not in ("", "http", "https"):
        raise _refuse("'protocol' must be http: or https:")
    scheme = protocol or ("http" if port == 80 else "https")
    path = options.get("path", "/")
    if not isinstance(path, str) or not _PATH.match(path):
        raise _refuse("'path' must start with / and hold no spaces")
    method = str(options.get("method") or "POST").upper()
    if method not in _METHODS:
        raise _refuse(f"'method' must be one of {', '.join(_METHODS)}")
    headers = _callback_headers(options.get("headers"))
    try:
        base = httpx.URL(scheme=scheme, host=host.strip("[]"), port=port)
        url = base.copy_with(raw_path=path.encode("ascii"))
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise _refuse(f"not a valid target ({exc})") from None
    check_target(url, policy)  # refused before any work is done
    return Callback(
        url=str(url), method=method, headers=headers, tls_hint=_tls_hint(protocol, scheme)
    )


def _tls_hint(protocol: str, scheme: str) -> str | None:
    # The seed's rule (https unless port 80 or "protocol" says http) surprises a plain-HTTP
    # receiver on another port: its TLS handshake fails, and the message says why https was used.
    if protocol or scheme != "https":
        return None
    return (
        'the callback has no "protocol", so https was assumed: '
        'add "protocol": "http" for a plain-HTTP receiver'
    )


def _header(request: Request, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = request.headers.get(name)
        if value is not None:
            return value.strip()
    return None


def _pop_callback(fields: dict[str, Any]) -> str | None:
    for name in list(fields):
        if name.lower() in CALLBACK_NAMES:
            value = fields.pop(name)
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def _pop_urls(fields: dict[str, Any]) -> list[str]:
    urls = []
    for name in sorted((n for n in fields if n.lower().startswith("fetch")), key=_position):
        value = fields.pop(name)
        if not _is_url(value):
            raise FetchRefusedError(
                f"multipart field {name!r} must hold an http or https URL", reason="invalid-url"
            )
        urls.append(value.strip())
    if "file" in fields:
        if not _is_url(fields["file"]):
            raise InputError("multipart part 'file' must be a file or an http(s) URL")
        urls.append(fields.pop("file").strip())
    return urls


def _position(name: str) -> tuple[int, str]:
    # The seed named parts by argument position: fetch_input_2 is argument 2.
    suffix = name.rsplit("_", 1)[-1]
    return (int(suffix) if suffix.isdigit() else 1_000_000, name)


async def read_run_input(request: Request, settings: Settings) -> RunInput:
    """The image of a run from its body, ``SSVM_Fetch`` or a URL field (fetched through the
    guard), its parameters, and its callback (checked, not yet called)."""
    limit = settings.max_body_bytes
    header_url = _header(request, FETCH_HEADERS)
    callback_text = _header(request, CALLBACK_NAMES)
    if header_url is None and callback_text is None and media_type(request) not in _STRUCTURED:
        return RunInput(await read_payload(request, limit, what="image", allow_json=True))
    if header_url is not None and media_type(request) not in _STRUCTURED:
        if await read_body(request, limit, "image"):
            raise InputError("SSVM_Fetch names the image: send an empty body")
        payload = Payload(files=[])
    else:
        payload = await read_payload(
            request, limit, what="image", allow_json=True, require_file=False
        )
    fields = dict(payload.fields)
    callback_text = callback_text or _pop_callback(fields)
    urls = ([header_url] if header_url else []) + _pop_urls(fields)
    sources = len(payload.files) + len(urls)
    if sources != 1:
        raise InputError(
            "no image: send it as the body, a multipart part 'file', JSON 'image', or a URL "
            "(the SSVM_Fetch header or a multipart field fetch_*)"
            if sources == 0
            else f"{sources} images given; a run takes one (a file part or a URL)"
        )
    policy = fetch_policy(settings)
    callback = parse_callback(callback_text, policy) if callback_text is not None else None
    files = payload.files
    if urls:
        fetched = await run_in_threadpool(fetch_image, urls[0], policy)
        files = [(None, fetched.data)]
    return RunInput(Payload(files=files, fields=fields), callback)


def result_body(output: RunOutput) -> tuple[bytes, str]:
    """A run's result as the bytes and media type a synchronous answer would carry."""
    if output.body is not None:
        return bytes(JSONResponse(output.body).body), "application/json"
    return output.content or b"", output.media_type


async def deliver(callback: Callback, output: RunOutput, settings: Settings) -> JSONResponse:
    """Send ``output`` to the callback target and answer where it went and what it said.

    The body and media type are those the run route would have answered with; the callback's
    own headers are sent too (its ``Content-Type`` wins, as in the seed). A target that cannot
    be reached, or answers with other than 2xx, is a 502 problem (504 when too slow).
    """
    content, kind = result_body(output)
    headers = httpx.Headers({"Content-Type": kind, "X-Face-Count": str(len(output.faces))})
    for name, value in callback.headers.items():
        headers[name] = value  # case-insensitive: the callback's Content-Type replaces ours
    status = await run_in_threadpool(
        lambda: send(
            callback.url,
            content,
            fetch_policy(settings),
            method=callback.method,
            headers=headers,
            tls_hint=callback.tls_hint,
        )
    )
    if not 200 <= status < 300:
        raise UpstreamError(
            f"the callback target {callback.url} answered {status}",
            reason="status",
            upstream_status=status,
        )
    timing = ", ".join(f"{name};dur={ms}" for name, ms in output.timings_ms.items())
    return JSONResponse(
        {
            "callback": {"url": callback.url, "method": callback.method, "status": status},
            "media_type": kind,
            "bytes": len(content),
            "face_count": len(output.faces),
        },
        headers={"X-Face-Count": str(len(output.faces)), "Server-Timing": timing},
    )
