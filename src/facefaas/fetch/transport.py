"""Connections to the checked address only: an httpx transport pinned to one IP.

The URL keeps the name, so the ``Host`` header, TLS SNI and the certificate check are the
name's; only the TCP connection goes to the address :func:`~facefaas.fetch.guard.check_target`
checked, so a second DNS answer (rebinding) is never asked for. Errors of the other server become
:class:`~facefaas.errors.UpstreamError` (502) and :class:`~facefaas.errors.UpstreamTimeoutError`
(504).
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from facefaas.errors import UpstreamError, UpstreamTimeoutError
from facefaas.fetch.guard import FetchPolicy, Target, where

__all__ = ["PinnedTransport", "pinned_client"]

_USER_AGENT = "facefaas-fetch"


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to one address whatever the host asked for; TLS still names the host."""

    def __init__(self, host: str, address: str) -> None:
        self._host = host
        self._address = address
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host != self._host:
            raise httpcore.ConnectError(f"{host} is not the checked host {self._host}")
        return self._backend.connect_tcp(
            self._address, port, timeout, local_address, socket_options
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for fetches")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS client context per process: building one loads the CA bundle (~10 ms of CPU,
    a fifth of a job image's time when made per fetch); contexts are safe to share between
    threads."""
    return httpx.create_ssl_context(trust_env=False)


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport whose connections all go to ``target.address``.

    The URL keeps the name, so the ``Host`` header, TLS SNI and the certificate check are the
    name's; only the TCP connection is made to the checked address.
    """

    def __init__(self, target: Target) -> None:
        host = target.url.raw_host.decode("ascii")
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_PinnedBackend(host, target.address),
            max_connections=1,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        answer = self._pool.handle_request(core)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


@contextmanager
def pinned_client(
    target: Target, policy: FetchPolicy, *, tls_hint: str | None = None
) -> Iterator[httpx.Client]:
    """An httpx client whose connections go to ``target.address``, with the policy's timeouts,
    no content decoding, no proxies from the environment, and the other server's failures
    raised as facefaas errors. ``tls_hint`` is added to the message of a TLS handshake that
    fails other than on the certificate (the caller's word on why https was used)."""
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.connect_timeout,
    )
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    with (
        httpx.Client(
            transport=PinnedTransport(target), timeout=timeout, headers=headers, trust_env=False
        ) as client,
        _upstream_errors(target.url, tls_hint),
    ):
        yield client


def _tls_failure(exc: Exception, hint: str | None) -> str | None:
    """What to say of ``exc`` when it is a failed TLS handshake (the backend's ``ConnectError``
    made of an ``ssl.SSLError``: its argument, and its context once the pool re-raises it
    ``from None``), else ``None``."""
    if not isinstance(exc, httpcore.ConnectError):
        return None
    cause = next((e for e in (*exc.args[:1], exc.__context__) if isinstance(e, ssl.SSLError)), None)
    if cause is None:
        return None
    said = f"TLS handshake failed ({cause})"
    if hint and not isinstance(cause, ssl.SSLCertVerificationError):
        said += f"; {hint}"
    return said


@contextmanager
def _upstream_errors(url: httpx.URL, tls_hint: str | None = None) -> Iterator[None]:
    shown = where(url)
    try:
        yield
    except (httpcore.TimeoutException, httpx.TimeoutException) as exc:
        raise UpstreamTimeoutError(f"{shown} did not answer in time ({type(exc).__name__})",
                                   reason="timeout") from None  # fmt: skip
    except (httpcore.NetworkError, httpx.NetworkError) as exc:
        said = _tls_failure(exc, tls_hint) or f"cannot connect ({exc or type(exc).__name__})"
        raise UpstreamError(f"{shown}: {said}", reason="connect") from None
    except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpx.HTTPError) as exc:
        raise UpstreamError(f"{shown}: a broken HTTP answer ({exc or type(exc).__name__})",
                            reason="protocol") from None  # fmt: skip
