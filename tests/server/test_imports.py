"""Imports in confined child processes: hostile files neither stall detection nor take memory."""

from __future__ import annotations

import asyncio
import pickle
import statistics
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from facefaas.errors import ModelFormatError, OverloadedError, TooLargeError
from facefaas.server.imports import ImportJob, ImportLimits, ImportWorkers

from .conftest import LiveServer, ServerFactory, assert_problem

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def slow_legacy_pt(size: int = 3_000_000) -> bytes:
    """A legacy ``torch.save`` file whose object pickle is ``size`` ``None`` opcodes in one list.

    Every byte is one opcode for the pure-Python restricted unpickler, and the result is then
    walked again by its checker, so the file takes seconds of CPU before it is refused (it holds
    a list, not a state dict): the "slow to refuse" upload of issue 12.
    """
    header = b"".join(
        pickle.dumps(part, protocol=2) for part in (_LEGACY_MAGIC, 1001, {"little_endian": True})
    )
    body = b"\x80\x02]q\x00(" + b"N" * size + b"e."
    return header + body + pickle.dumps([], protocol=2)


def _p50_detect(url: str, image: bytes, count: int) -> float:
    times = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(count):
            start = time.perf_counter()
            response = http.post("/api/run/mtcnn/detect", content=image)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    return statistics.median(times)


def test_detect_keeps_its_latency_while_hostile_imports_run(
    start_server: ServerFactory, solvay: bytes
) -> None:
    hostile, uploads = slow_legacy_pt(), 10
    server = start_server(import_workers=2, import_queue_size=uploads)
    _p50_detect(server.url, solvay, 3)  # warm-up
    quiet = _p50_detect(server.url, solvay, 15)
    statuses: list[int] = []

    def post() -> None:
        files = {"file": ("pnet.pt", hostile)}
        response = httpx.post(f"{server.url}/api/models", files=files, timeout=240)
        statuses.append(response.status_code)

    senders = [threading.Thread(target=post) for _ in range(uploads)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 30
    while server.service.imports.pending < uploads and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = _p50_detect(server.url, solvay, 15)
    running = server.service.imports.pending
    for sender in senders:
        sender.join(timeout=240)
    print(
        f"\ndetect p50: {quiet * 1000:.0f} ms quiet, {busy * 1000:.0f} ms with {uploads} hostile "
        f"imports admitted ({running} still in flight at the end)"
    )
    assert running > 0, "the imports ended before detection was measured"
    assert sorted(statuses) == [422] * uploads  # each refused, as a model-format problem
    assert busy < 2 * quiet + 0.1


def test_an_import_over_the_cpu_limit_is_413_and_the_server_stays_up(
    start_server: ServerFactory, hopper: bytes
) -> None:
    server = start_server(import_cpu_seconds=1)
    response = httpx.post(
        f"{server.url}/api/models", files={"file": ("pnet.pt", slow_legacy_pt())}, timeout=120
    )
    problem = assert_problem(response, 413, "too-large")
    assert (problem["limit"], problem["unit"]) == (1, "CPU seconds")
    assert httpx.post(f"{server.url}/api/run/mtcnn/detect", content=hopper).status_code == 200


def test_an_import_over_the_memory_limit_is_413_and_the_server_stays_up(
    start_server: ServerFactory, make_model: Callable[[int], bytes], hopper: bytes
) -> None:
    # The forkserver's child starts at about 210 MB of address space (numpy, onnx, ONNX
    # Runtime); reading and smoke-testing a model needs about 100 MB more.
    limit = 240 * MiB
    server = start_server(import_memory_bytes=limit)
    response = httpx.post(
        f"{server.url}/api/models", files={"file": ("m.zip", make_model(8001))}, timeout=120
    )
    problem = assert_problem(response, 413, "too-large")
    assert (problem["limit"], problem["unit"]) == (limit, "bytes of memory")
    assert httpx.post(f"{server.url}/api/run/mtcnn/detect", content=hopper).status_code == 200


def test_imports_past_the_workers_and_queue_are_503_with_retry_after(
    start_server: ServerFactory, new_model: bytes
) -> None:
    server: LiveServer = start_server(import_workers=1, import_queue_size=0)
    done: list[int] = []

    def slow() -> None:
        files = {"file": ("pnet.pt", slow_legacy_pt())}
        done.append(httpx.post(f"{server.url}/api/models", files=files, timeout=120).status_code)

    sender = threading.Thread(target=slow)
    sender.start()
    deadline = time.monotonic() + 30
    while server.service.imports.pending < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    refused = httpx.post(f"{server.url}/api/models", files={"file": ("m.zip", new_model)})
    problem = assert_problem(refused, 503, "overloaded")
    assert refused.headers["Retry-After"] and problem["retry_after"] >= 1
    sender.join(timeout=120)
    assert done == [422]
    again = httpx.post(f"{server.url}/api/models", files={"file": ("m.zip", new_model)}, timeout=60)
    assert again.status_code == 201, again.text


def _import(job: ImportJob, limits: ImportLimits) -> object:
    async def run() -> object:
        workers = ImportWorkers(1, 0, limits)
        try:
            with workers.admit():
                return await workers.run(job)
        finally:
            workers.close()

    return asyncio.run(run())


def test_the_worker_returns_checked_weights_and_the_manifest_without_pickle(
    make_model: Callable[[int], bytes],
) -> None:
    from facefaas.models.importing import import_model

    model = make_model(8101)
    limits = ImportLimits(cpu_seconds=30, memory_bytes=1024 * MiB, wall_seconds=120)
    imported = _import(ImportJob(model, "named", None, None, 8 * MiB), limits)
    local = import_model(model, name="named")
    assert imported.weights.digest() == local.weights.digest()  # type: ignore[attr-defined]
    assert imported.manifest == local.manifest  # type: ignore[attr-defined]
    assert imported.format == "onnx-bundle"  # type: ignore[attr-defined]


def test_the_worker_passes_the_importers_own_errors_and_kills_at_the_wall_clock() -> None:
    limits = ImportLimits(cpu_seconds=30, memory_bytes=1024 * MiB, wall_seconds=60)
    with pytest.raises(ModelFormatError, match="no supported model"):
        _import(ImportJob(b"not a model at all", None, None, None, MiB), limits)
    with pytest.raises(TooLargeError):
        _import(ImportJob(b"x" * 4096, None, None, None, 1024), limits)
    hurried = ImportLimits(cpu_seconds=30, memory_bytes=1024 * MiB, wall_seconds=0.5)
    start = time.monotonic()
    with pytest.raises(OverloadedError, match=r"did not finish within 0\.5 s"):
        _import(ImportJob({"pnet.pt": slow_legacy_pt()}, None, None, None, 8 * MiB), hurried)
    assert time.monotonic() - start < 10
