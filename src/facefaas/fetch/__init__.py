"""Fetching a URL safely: images by URL, and POSTs to callback and webhook targets.

A server that downloads what its callers name is the classic way into its private network
(server-side request forgery). Every request made here goes through one guard,
:func:`check_target`, and then only to the address the guard checked:

1. only ``http`` and ``https``, no credentials in the URL;
2. the host is read once: numeric spellings are addresses (``2130706433``, ``0177.0.0.1``,
   ``0x7f.1``, ``127.1`` are all 127.0.0.1), a name is resolved once (the ``resolver`` of the
   :class:`FetchPolicy`, injectable) and **every** address it gives is checked;
3. refused: loopback, private (10/8, 172.16/12, 192.168/16), carrier-grade NAT (100.64/10),
   link-local (169.254/16, fe80::/10), the cloud metadata addresses, multicast, unspecified,
   broadcast and reserved ranges, IPv6 unique-local (fc00::/7), any other non-global address, and
   IPv6 forms that carry a refused IPv4 (mapped, compatible, translated, 6to4, Teredo, NAT64);
   unless the operator's allowlist (CIDRs and host names) admits the address or the name;
4. the connection goes to the first checked address (:class:`PinnedTransport`), while the
   ``Host`` header, TLS SNI and certificate verification stay on the name: a second DNS answer
   (rebinding) is never asked for;
5. every redirect is checked again (at most ``max_redirects``); bodies are streamed with a byte
   cap, connect/read timeouts and a deadline for the whole fetch, without content decoding
   (``Accept-Encoding: identity``: no decompression bombs); an image is recognised by its first
   bytes, never by its ``Content-Type``.

Errors: :class:`~facefaas.errors.FetchRefusedError` (422) for a target or content refused before
or while reading it, :class:`~facefaas.errors.TooLargeError` (413) past the byte cap,
:class:`~facefaas.errors.UpstreamError` (502) when the other server fails, and
:class:`~facefaas.errors.UpstreamTimeoutError` (504) when it is too slow. Each has a ``reason``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from facefaas.errors import FetchRefusedError, TooLargeError, UpstreamError, UpstreamTimeoutError
from facefaas.fetch.guard import (
    MAX_REDIRECTS,
    Allowlist,
    FetchPolicy,
    Resolver,
    Target,
    check_target,
    refusal,
    system_resolver,
    where,
)
from facefaas.fetch.transport import PinnedTransport, pinned_client

__all__ = [
    "MAX_REDIRECTS",
    "Allowlist",
    "FetchPolicy",
    "Fetched",
    "PinnedTransport",
    "Resolver",
    "Target",
    "check_target",
    "fetch_image",
    "refusal",
    "send",
    "sniff_image",
    "system_resolver",
]

_CALLBACK_ANSWER_BYTES = 64 * 1024  # what is read of a callback target's answer (then dropped)


# The first bytes of the image formats the library reads: (offset, magic, media type).
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),  # after RIFF....
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
    (0, b"\xff\x4f\xff\x51", "image/jp2"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (4, b"ftypavif", "image/avif"),
    (4, b"ftypheic", "image/heic"),
)
SNIFF_BYTES = 16


def sniff_image(head: bytes) -> str | None:
    """The media type of an image recognised by its first bytes (at least ``SNIFF_BYTES`` of
    them, or the whole body when shorter), or ``None``: not an image we read."""
    for offset, magic, media_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if media_type == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return media_type
    return None


@dataclass(frozen=True)
class Fetched:
    """A fetched image: its bytes, the URL it finally came from and its sniffed media type."""

    data: bytes
    url: str
    media_type: str


def _read_capped(response: httpx.Response, policy: FetchPolicy, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise _too_large(policy.max_bytes)
    chunks: list[bytes] = []
    total = 0
    sniffed = False
    for chunk in response.iter_raw():
        total += len(chunk)
        if total > policy.max_bytes:
            raise _too_large(policy.max_bytes)
        chunks.append(chunk)
        if not sniffed and total >= SNIFF_BYTES:
            _require_image(b"".join(chunks), response.url)
            sniffed = True
        if time.monotonic() > deadline:
            raise _slow(response.url, policy)
    data = b"".join(chunks)
    if not sniffed:
        _require_image(data, response.url)
    return data


def _require_image(head: bytes, url: httpx.URL) -> None:
    if sniff_image(head) is None:
        raise FetchRefusedError(
            f"{where(url)}: the content is not an image (by its first bytes, "
            "whatever its Content-Type says)",
            reason="not-an-image",
        )


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(
        f"the fetched content is over the limit of {limit} bytes", limit=limit, unit="bytes"
    )


def _slow(url: httpx.URL, policy: FetchPolicy) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"{where(url)}: the fetch took more than {policy.timeout:g} s",
        reason="timeout",
    )


def fetch_image(url: str, policy: FetchPolicy) -> Fetched:
    """GET ``url`` through the guard, following at most ``policy.max_redirects`` redirects
    (each checked again), and return the image it serves (module docstring for the rules)."""
    deadline = time.monotonic() + policy.timeout
    current: str | httpx.URL = url
    for _ in range(policy.max_redirects + 1):
        target = check_target(current, policy)
        if time.monotonic() > deadline:
            raise _slow(target.url, policy)
        with (
            pinned_client(target, policy) as client,
            client.stream("GET", target.url, headers={"Accept": "image/*"}) as response,
        ):
            if response.is_redirect:
                current = target.url.join(response.headers["location"])
                continue
            if response.status_code != 200:
                raise UpstreamError(
                    f"{where(target.url)} answered {response.status_code} {response.reason_phrase}",
                    reason="status",
                    upstream_status=response.status_code,
                )
            data = _read_capped(response, policy, deadline)
        media_type = sniff_image(data) or "application/octet-stream"
        return Fetched(data=data, url=str(target.url), media_type=media_type)
    raise UpstreamError(
        f"more than {policy.max_redirects} redirects from {url}", reason="too-many-redirects"
    )


def send(
    url: str,
    content: bytes,
    policy: FetchPolicy,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    tls_hint: str | None = None,
) -> int:
    """Send ``content`` to ``url`` (a callback or webhook target) through the guard and return
    the HTTP status it answered. Redirects are not followed: a 3xx is the answer. ``tls_hint``
    is added to the error of a failed TLS handshake (why the target is https, when the caller
    chose that)."""
    target = check_target(url, policy)
    deadline = time.monotonic() + policy.timeout
    with (
        pinned_client(target, policy, tls_hint=tls_hint) as client,
        client.stream(method, target.url, content=content, headers=dict(headers or {})) as answer,
    ):
        read = 0
        for chunk in answer.iter_raw():  # read (a bounded part of) the answer, then drop it
            read += len(chunk)
            if read > _CALLBACK_ANSWER_BYTES or time.monotonic() > deadline:
                break
        return answer.status_code
