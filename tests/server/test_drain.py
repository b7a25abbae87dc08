"""SIGTERM with work in flight: it may finish within the drain period, else it is answered 503
(a problem saying why), never a 500 or a dropped connection, and the process then exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import encode
from .test_persistence import _free_port

pytestmark = pytest.mark.timeout(180)


def test_sigterm_drains_then_answers_what_it_cannot_finish_with_503(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFAAS_")}
    env |= {"FACEFAAS_DRAIN_SECONDS": "1", "FACEFAAS_RATE_LIMIT": "", "FACEFAAS_QUEUE_SIZE": "8",
            "FACEFAAS_INFERENCE_THREADS": "2"}  # fmt: skip
    command = [sys.executable, "-m", "facefaas", "serve", "--port", str(port),
               "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        noise = np.random.default_rng(5).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
        data = encode(Image.fromarray(noise), "JPEG", quality=90)
        answers: list[httpx.Response | BaseException] = []

        def call() -> None:
            try:
                answers.append(httpx.post(f"{url}/api/run/mtcnn/detect?min_size=8&factor=0.9",
                                          content=data, timeout=60))  # fmt: skip
            except BaseException as exc:  # reported by the assertion below
                answers.append(exc)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.8)  # all four sent: two running, two waiting
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
        assert proc.wait(30) in (0, -signal.SIGTERM)
        exited = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
    statuses = [a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers]
    assert len(statuses) == 4 and set(statuses) <= {200, 503}, statuses
    refused = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 503]
    assert refused, "the drain period was long enough for everything: nothing tested"
    for response in refused:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "cancelled"
        assert "shutting down" in response.json()["detail"]
    assert exited < 1 + 5 + 5
