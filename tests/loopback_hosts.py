"""Small HTTP servers on 127.0.0.1 for the fetch and callback tests: an image host and a
receiver. Each runs in a daemon thread, answers only loopback, and stops when its context ends.

Image host paths:

* ``/img.png``: the image given (``image/png``); ``/img-typeless``: the same, no Content-Type;
* ``/redirect/N``: a chain of N redirects ending at ``/img.png``; ``/to?url=U``: a redirect to U;
* ``/html``: HTML sent as ``image/png``; ``/status/N``: status N;
* ``/big?n=N``: a PNG signature then N bytes, no Content-Length (the cap bites while streaming);
  ``/declared?n=N``: a Content-Length of N and nothing sent;
* ``/slow``: headers, then nothing for ``slow_seconds`` (a read timeout).

The receiver keeps every request it gets (method, path, headers, body) and answers ``status``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer (over its byte cap, timed out) is expected here


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Host:
    """A running server: its base URL and what it saw."""

    url: str
    port: int
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    stop: threading.Event = field(default_factory=threading.Event)


def _handler(host: Host, image: bytes, slow_seconds: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            host.requests.append(
                Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                         body)
            )  # fmt: skip

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self._record()
            if self.path.startswith("/to?"):
                self._send(302, Location=parse_qs(urlsplit(self.path).query)["url"][0])
            else:
                self._send(host.status, b"ok", Content_Type="text/plain")

        do_PUT = do_POST

        def do_GET(self) -> None:
            self._record()
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            path = parts.path
            if path == "/img.png":
                self._send(200, image, Content_Type="image/png")
            elif path == "/img-typeless":
                self._send(200, image)
            elif path.startswith("/redirect/"):
                left = int(path.rsplit("/", 1)[1])
                target = "/img.png" if left <= 1 else f"/redirect/{left - 1}"
                self._send(302, Location=target)
            elif path == "/to":
                self._send(302, Location=query["url"])
            elif path == "/html":
                self._send(200, b"<!doctype html><html><body>not an image</body></html>",
                           Content_Type="image/png")  # fmt: skip
            elif path.startswith("/status/"):
                self._send(int(path.rsplit("/", 1)[1]), b"no")
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(PNG_SIGNATURE)
                left = int(query["n"])
                try:
                    while left > 0 and not host.stop.is_set():
                        chunk = min(left, 64 * 1024)
                        self.wfile.write(b"\0" * chunk)
                        left -= chunk
                except OSError:
                    pass  # the client hung up once over its cap
                self.close_connection = True
            elif path == "/declared":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", query["n"])
                self.end_headers()
                self.wfile.write(PNG_SIGNATURE)
                self.close_connection = True
            elif path == "/slow":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.flush()
                host.stop.wait(slow_seconds)
                with suppress(OSError):
                    self.wfile.write(image)
            else:
                self._send(404, b"unknown")

    return Handler


@contextmanager
def serve(image: bytes = PNG_SIGNATURE, *, slow_seconds: float = 5.0) -> Iterator[Host]:
    """A server on 127.0.0.1 (a free port) for as long as the block runs."""
    server = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    host = Host(url=f"http://127.0.0.1:{port}", port=port)
    server.RequestHandlerClass = _handler(host, image, slow_seconds)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield host
    finally:
        host.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
