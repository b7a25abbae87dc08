"""The HTTP edge against slow and stalled clients: `facefaas serve` in a process of its own.

The server runs as ``facefaas serve`` (the real uvicorn configuration, :mod:`http_protocol` and
:mod:`edge_limits`) under ``prlimit --as`` with short timeouts and a small body budget, so that
each case costs a second or two. Clients are raw sockets on loopback that send their head or
body slowly; every one is bounded in time and the number of them is small.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import MiB, assert_problem
from .served import Served, start_serve, stop_serve

pytestmark = pytest.mark.timeout(180)

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
BODY_MIN_RATE = 4096
BODY_BUFFER = 16 * MiB
MAX_CONNECTIONS = 32


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {
        "FACEFAAS_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "FACEFAAS_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "FACEFAAS_BODY_MIN_RATE": str(BODY_MIN_RATE),
        "FACEFAAS_BODY_BUFFER_BYTES": str(BODY_BUFFER),
        "FACEFAAS_BODY_BUFFER_WAIT": "1",
        "FACEFAAS_MAX_BODY_BYTES": str(8 * MiB),
        "FACEFAAS_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    served = start_serve(tmp_path_factory.mktemp("edge-data"), env)
    yield served
    stop_serve(served)


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one response on ``sock``, read until it closes."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_raw_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["status"] == expected


def test_a_stalled_header_is_answered_408_and_closed_within_the_timeout(edge: Served) -> None:
    sock = edge.connect()
    started = time.monotonic()
    sock.sendall(b"POST /api/run/mtcnn/detect HTTP/1.1\r\nHost: x\r\nContent-Le")
    status, headers, body = read_response(sock, timeout=HEADER_TIMEOUT + 5)
    elapsed = time.monotonic() - started
    sock.close()
    assert_raw_problem(status, headers, body, 408)
    assert json.loads(body)["code"] == "request-timeout"
    assert headers["connection"] == "close"
    assert HEADER_TIMEOUT * 0.9 <= elapsed < HEADER_TIMEOUT + 2


def test_a_connection_that_sends_nothing_is_closed_within_the_header_timeout(
    edge: Served,
) -> None:
    sock = edge.connect()
    started = time.monotonic()
    status, _, _ = read_response(sock, timeout=HEADER_TIMEOUT + 5)
    assert status == 408
    assert time.monotonic() - started < HEADER_TIMEOUT + 2
    sock.close()


def test_a_trickling_body_is_answered_408_problem(edge: Served) -> None:
    sock = edge.connect()
    head = (
        b"POST /api/run/mtcnn/detect HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    )
    sock.sendall(head)
    started = time.monotonic()
    sock.settimeout(0.5)
    try:  # 20 bytes every 0.1 s: 200 bytes/s, far under the minimum rate
        while time.monotonic() - started < BODY_TIMEOUT + 5:
            sock.sendall(b"x" * 20)
            time.sleep(0.1)
    except OSError:
        pass  # the server answered and closed
    status, headers, body = read_response(sock, timeout=5)
    elapsed = time.monotonic() - started
    sock.close()
    assert_raw_problem(status, headers, body, 408)
    problem = json.loads(body)
    assert problem["code"] == "request-timeout" and "too slowly" in problem["detail"]
    assert headers["connection"] == "close"
    assert elapsed < BODY_TIMEOUT + 3


def test_a_body_that_stalls_after_a_fast_start_is_cut_by_the_pause_limit(edge: Served) -> None:
    sock = edge.connect()
    sock.sendall(
        b"POST /api/run/mtcnn/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
        + b"x" * 1_000_000
    )
    started = time.monotonic()
    status, _, body = read_response(sock, timeout=BODY_TIMEOUT + 5)
    sock.close()
    assert status == 408, body
    assert time.monotonic() - started < BODY_TIMEOUT + 2


def test_a_steady_upload_is_not_cut(edge: Served, hopper: bytes) -> None:
    # Longer than body_timeout, but never slower than the minimum rate.
    chunk = BODY_MIN_RATE // 2
    padded = hopper + b"\0" * (3 * BODY_MIN_RATE)  # JPEG decoders ignore trailing bytes

    def slowly() -> Iterator[bytes]:
        for start in range(0, len(padded), chunk):
            yield padded[start : start + chunk]
            time.sleep(0.4)

    started = time.monotonic()
    response = httpx.post(
        f"{edge.url}/api/run/mtcnn/detect",
        content=slowly(),
        headers={"Content-Type": "image/jpeg", "Content-Length": str(len(padded))},
        timeout=30,
    )
    assert time.monotonic() - started > BODY_TIMEOUT
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 1


def test_past_max_connections_the_answer_is_a_503_problem(edge: Served) -> None:
    idle = [edge.connect() for _ in range(MAX_CONNECTIONS + 4)]
    time.sleep(HEADER_TIMEOUT / 4)  # the server accepts them (they are cut at HEADER_TIMEOUT)
    try:
        with httpx.Client(base_url=edge.url, timeout=5) as http:
            response = http.get("/healthz")
        assert_problem(response, 503, "overloaded")
        assert response.headers["retry-after"] == "1"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{edge.url}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the cap did not lift once the connections closed"
        time.sleep(0.1)


def _upload_and_stall(edge: Served, size: int, results: list[int | str]) -> None:
    """POST ``size`` - 1 bytes of a ``size``-byte body as fast as the server reads, then stall."""
    try:
        sock = edge.connect()
    except OSError as exc:
        results.append(type(exc).__name__)
        return
    try:
        sock.sendall(
            b"POST /api/run/mtcnn/detect HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/octet-stream\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        sock.settimeout(BODY_TIMEOUT + 4)
        sock.sendall(b"\xff" * (size - 1))
        status, _, _ = read_response(sock, timeout=BODY_TIMEOUT + 4)
        results.append(status)
    except OSError as exc:  # refused mid-body: the server answered and closed
        results.append(type(exc).__name__)
    finally:
        sock.close()


def test_slow_uploads_hold_no_more_memory_than_the_body_budget(edge: Served) -> None:
    clients, size = 24, 6 * MiB  # 144 MiB if every body were held
    before = edge.rss()
    peak = before
    healthz: list[float] = []
    results: list[int | str] = []
    threads = [
        threading.Thread(target=_upload_and_stall, args=(edge, size, results), daemon=True)
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=edge.url, timeout=5) as http:
        while any(t.is_alive() for t in threads):
            peak = max(peak, edge.rss())
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            healthz.append(time.monotonic() - started)
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=1)
    growth = peak - before
    print(f"server RSS {before / MiB:.0f} MiB before, peak +{growth / MiB:.0f} MiB; {results}")
    print(f"/healthz meanwhile: max {max(healthz) * 1000:.0f} ms over {len(healthz)} calls")
    assert len(results) == clients
    assert set(results) <= {408, 503, "BrokenPipeError", "ConnectionResetError"}, results
    assert 503 in results or "BrokenPipeError" in results or "ConnectionResetError" in results
    assert growth < BODY_BUFFER + 40 * MiB
    assert max(healthz) < 1.0
