"""Every request's cost bounded: estimates refuse or scale what would take the machine, a batch
costs the sum of its images, deadlines and hang-ups stop the work, and all of it is a 4xx/5xx
problem (503/504), never a 500."""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import LiveServer, ServerFactory, assert_problem, encode

pytestmark = pytest.mark.timeout(180)
MiB = 1024 * 1024


def _png(width: int, height: int) -> bytes:
    """A small file that decodes large: one flat colour compresses to almost nothing."""
    return encode(Image.new("RGB", (width, height), (120, 130, 140)), "PNG", optimize=True)


def test_a_costly_request_is_a_422_stating_its_estimate_and_the_limit(
    start_server: ServerFactory, shared: Path
) -> None:
    server = start_server(max_pixels=20_000_000, max_body_bytes=4 * MiB)
    photo = (shared / "eval" / "photos" / "deepface__img40.jpg").read_bytes()
    start = time.perf_counter()
    response = httpx.post(
        f"{server.url}/api/run/mtcnn/detect",
        content=photo,
        params={"min_size": 6, "factor": 0.95},
        timeout=30,
    )
    assert time.perf_counter() - start < 5  # refused from the header, not after minutes
    body = assert_problem(response, 422, "over-cost-limit")
    assert body["limit"] == 1024 * MiB and body["unit"] == "bytes"
    estimate = body["estimate"]
    assert (estimate["width"], estimate["height"], estimate["levels"]) == (3061, 4600, 122)
    assert estimate["peak_bytes"] > 10 * 1024 * MiB
    assert "fit=true" in body["detail"]


def test_fit_scales_down_and_answers_in_the_original_coordinates(
    start_server: ServerFactory, shared: Path
) -> None:
    server = start_server(max_pixels=20_000_000, max_body_bytes=4 * MiB)
    photo = (shared / "eval" / "photos" / "deepface__img40.jpg").read_bytes()
    start = time.perf_counter()
    response = httpx.post(
        f"{server.url}/api/run/mtcnn/detect",
        content=photo,
        params={"min_size": 6, "factor": 0.95, "fit": "true"},
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (3061, 4600)
    assert 0.05 < body["scale"] < 0.5
    assert len(body["faces"]) >= 1
    for face in body["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert -50 < x1 < x2 < 3061 + 50 and -50 < y1 < y2 < 4600 + 50
    assert elapsed < 60, f"took {elapsed:.1f} s"


def test_a_small_png_that_decodes_large_is_refused_before_decoding(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_pixels=60_000_000, max_body_bytes=4 * MiB)
    data = _png(7500, 7500)
    assert len(data) < 400_000
    start = time.perf_counter()
    response = httpx.post(f"{server.url}/api/run/mtcnn/blur", content=data, timeout=30)
    assert time.perf_counter() - start < 3
    body = assert_problem(response, 422, "over-cost-limit")
    assert body["estimate"]["width"] == 7500


def test_a_batch_costs_the_sum_of_its_images(start_server: ServerFactory) -> None:
    # Each image fits alone (about 130 MiB), three together are over the 300 MiB budget.
    server = start_server(
        memory_budget=400 * MiB, reserve_bytes=100 * MiB, max_request_bytes=200 * MiB,
        max_pixels=20_000_000, max_batch_items=4, max_body_bytes=4 * MiB,
    )  # fmt: skip
    image = _png(2000, 1500)
    one = httpx.post(f"{server.url}/api/batch/mtcnn/detect", files=[("file", ("a.png", image))],
                     timeout=60)  # fmt: skip
    assert one.status_code == 200 and one.json()["succeeded"] == 1
    parts = [("file", (f"{i}.png", image)) for i in range(3)]
    three = httpx.post(f"{server.url}/api/batch/mtcnn/detect", files=parts, timeout=60)
    body = assert_problem(three, 422, "over-cost-limit")
    assert body["limit"] == 300 * MiB


def test_a_request_past_its_deadline_is_a_504_and_stops(start_server: ServerFactory) -> None:
    server = start_server(request_timeout=0.3, max_pixels=20_000_000, max_body_bytes=16 * MiB)
    noise = np.random.default_rng(3).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    start = time.perf_counter()
    response = httpx.post(
        f"{server.url}/api/run/mtcnn/detect", content=data,
        params={"min_size": 8, "factor": 0.9}, timeout=60,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert_problem(response, 504, "deadline-exceeded")
    assert elapsed < 2.5, f"answered after {elapsed:.1f} s"
    _wait_idle(server)


def _wait_idle(server: LiveServer, limit: float = 5.0) -> float:
    start = time.perf_counter()
    while server.service.pool.pending and time.perf_counter() - start < limit:
        time.sleep(0.02)
    assert server.service.pool.pending == 0, "the work did not stop"
    return time.perf_counter() - start


def test_a_client_that_hangs_up_stops_its_work(start_server: ServerFactory) -> None:
    server = start_server(max_pixels=20_000_000, max_body_bytes=16 * MiB, request_timeout=120)
    noise = np.random.default_rng(4).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    params = "min_size=8&factor=0.9"
    start = time.perf_counter()  # how long the whole detection takes, for comparison
    full = httpx.post(f"{server.url}/api/run/mtcnn/detect?{params}", content=data, timeout=120)
    assert full.status_code == 200
    whole = time.perf_counter() - start
    assert whole > 1.5
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST /api/run/mtcnn/detect?{params} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: image/png\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data)
        deadline = time.perf_counter() + 10
        while not server.service.pool.running and time.perf_counter() < deadline:
            time.sleep(0.01)
        assert server.service.pool.running == 1
    hung_up = time.perf_counter()
    _wait_idle(server, limit=whole)
    stopped = time.perf_counter() - hung_up
    assert stopped < whole / 2, f"stopped {stopped:.2f} s after the hang-up (whole: {whole:.2f})"


def test_the_pool_admits_by_memory_and_refuses_when_its_queue_is_full() -> None:
    import asyncio
    import threading

    from facefaas.errors import OverloadedError
    from facefaas.server.pool import InferencePool

    pool = InferencePool(threads=2, queue_size=1, memory_budget=100)
    release = threading.Event()
    order: list[str] = []

    def work(name: str) -> str:
        release.wait(10)
        order.append(name)
        return name

    async def scenario() -> list[str]:
        big = asyncio.ensure_future(pool.run(work, "big", cost=80))
        await asyncio.sleep(0.05)
        assert pool.running == 1 and pool.memory_in_use == 80
        small = asyncio.ensure_future(pool.run(work, "small", cost=30))  # a thread is free...
        await asyncio.sleep(0.05)
        assert pool.running == 1 and pool.pending == 2  # ...but not the memory: it waits
        with pytest.raises(OverloadedError) as refused:
            await pool.run(work, "third", cost=1)  # the one queue place is taken
        assert refused.value.retry_after_ms > 0
        release.set()
        return list(await asyncio.gather(big, small))

    assert asyncio.run(scenario()) == ["big", "small"]
    assert pool.pending == 0 and pool.memory_in_use == 0
    pool.shutdown()


def test_a_queued_request_whose_deadline_passes_gives_its_place_back() -> None:
    import asyncio
    import threading

    from facefaas.deadline import Deadline
    from facefaas.errors import DeadlineExceededError
    from facefaas.server.pool import InferencePool

    pool = InferencePool(threads=1, queue_size=2)
    release = threading.Event()

    async def scenario() -> None:
        running = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(DeadlineExceededError):
            await pool.run(lambda: None, deadline=Deadline(0.2))
        assert pool.pending == 1
        release.set()
        await running

    asyncio.run(scenario())
    assert pool.pending == 0
    pool.shutdown()


def test_scaling_keeps_faces_where_they_are(http: httpx.Client, solvay: bytes) -> None:
    """fit on a request that fits changes nothing; the scaled path maps boxes back exactly."""
    plain = http.post("/api/run/mtcnn/detect", content=solvay).json()
    fitted = http.post("/api/run/mtcnn/detect", content=solvay, params={"fit": "true"}).json()
    assert "scale" not in fitted and fitted["faces"] == plain["faces"]
    from facefaas.detector import Detector
    from facefaas.request import DetectionRequest
    from facefaas.server.runner import _detect_scaled

    img = Image.open(io.BytesIO(solvay)).convert("RGB")
    from facefaas.decode import load_image
    from facefaas.functions import get_function

    decoded = load_image(solvay)
    with Detector() as detector:
        half = _detect_scaled(detector, decoded, DetectionRequest(get_function("detect")), 0.5,
                              None)  # fmt: skip
        direct = detector(img.resize((img.width // 2, img.height // 2), Image.Resampling.BILINEAR))
    assert (half.width, half.height) == (960, 661) and len(half) == len(direct) > 10
    factor = np.array([960 / 480, 661 / 330], np.float32)
    np.testing.assert_allclose(half.boxes, direct.boxes * np.tile(factor, 2), rtol=1e-5)
    np.testing.assert_allclose(half.landmarks, direct.landmarks * factor, rtol=1e-5)
