"""``facefaas serve`` as a real process: restarts, kills, several workers on one registry."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import upload

pytestmark = pytest.mark.timeout(240)

STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """``python -m facefaas serve`` on a free port with ``data_dir``."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFAAS_")}
        command = [
            sys.executable, "-m", "facefaas", "serve", "--port", str(self.port),
            "--data-dir", str(data_dir), "--log-level", "warning", "--rate-limit", "", *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"facefaas serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"facefaas serve was not ready in {STARTUP_TIMEOUT_S} s")

    def stop(self) -> str:
        """Stop gracefully (SIGTERM); returns what it printed on stdout."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(*args: str, data_dir: Path = tmp_path / "data") -> ServeProcess:
        process = ServeProcess(data_dir, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.kill()


def test_serve_prints_its_url_and_a_restart_keeps_every_model(
    serve: Callable[..., ServeProcess], new_model: bytes, hopper: bytes
) -> None:
    first = serve()
    with httpx.Client(base_url=first.url, timeout=60) as http:
        created = upload(http, new_model, name="kept", private=True)
        model_id, usage = created["model_id"], created["usage_key"]
        run = http.post(f"/api/run/{model_id}/detect", content=hopper, headers={"X-API-Key": usage})
        assert run.status_code == 200
        http.put(f"/api/models/{model_id}/config", json={"max_faces": 1},
                 headers={"X-API-Key": created["admin_key"]})  # fmt: skip
    printed = first.stop()
    assert f"facefaas serving at {first.url}" in printed

    second = serve()
    with httpx.Client(base_url=second.url, timeout=60) as http:
        info = http.get(f"/api/models/{model_id}", headers={"X-API-Key": usage}).json()
        assert (info["name"], info["private"], info["config"]) == ("kept", True, {"max_faces": 1})
        assert info["usage"]["calls"] == 1  # flushed at shutdown
        assert http.post(f"/api/run/{model_id}/detect", content=hopper).status_code == 401
        again = http.post(f"/api/run/{model_id}/detect", content=hopper,
                          headers={"X-API-Key": usage})  # fmt: skip
        assert again.status_code == 200 and len(again.json()["faces"]) == 1
    second.stop()


def _assert_consistent(data_dir: Path, url: str) -> set[str]:
    """Every listed model has its files and runs; every stored folder belongs to a model."""
    models = httpx.get(f"{url}/api/models").json()
    uploaded = {m["sha256"] for m in models if not m["builtin"]}
    stored = {p.name for p in (data_dir / "models").iterdir()}
    assert stored == uploaded
    return {m["id"] for m in models}


def test_a_kill_during_uploads_leaves_the_registry_consistent(
    serve: Callable[..., ServeProcess], tmp_path: Path, make_model: Callable[[int], bytes]
) -> None:
    data_dir = tmp_path / "data"
    first = serve(data_dir=data_dir)
    with httpx.Client(base_url=first.url, timeout=60) as http:
        kept = upload(http, make_model(301))

    acknowledged: list[str] = []

    def keep_uploading() -> None:
        for n in range(302, 320):
            try:
                files = {"file": ("m.zip", make_model(n))}
                response = httpx.post(f"{first.url}/api/models", files=files, timeout=60)
            except httpx.TransportError:
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["model_id"])

    uploader = threading.Thread(target=keep_uploading)
    uploader.start()
    deadline = time.monotonic() + 60
    while not acknowledged and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.15)  # somewhere inside a later upload
    first.kill()
    uploader.join(timeout=60)
    # Also what a kill inside write_bundle leaves: a hidden temporary folder, and a complete
    # folder whose row was never committed.
    models_dir = data_dir / "models"
    (models_dir / ".0123abc.tmp").mkdir()
    (models_dir / ".0123abc.tmp" / "pnet.onnx").write_bytes(b"partial")
    orphan = models_dir / ("f" * 64)
    shutil.copytree(models_dir / kept["sha256"], orphan)

    second = serve(data_dir=data_dir)
    ids = _assert_consistent(data_dir, second.url)
    assert not orphan.exists() and not (models_dir / ".0123abc.tmp").exists()
    assert {kept["model_id"], *acknowledged} <= ids
    for model_id in ids:
        response = httpx.post(f"{second.url}/api/run/{model_id}/detect", content=b"x")
        assert response.status_code == 400  # found and runnable: the image is what is wrong
    second.stop()


def test_two_workers_share_one_registry_and_metrics(
    serve: Callable[..., ServeProcess], new_model: bytes, hopper: bytes
) -> None:
    server = serve("--workers", "2")
    created = upload(httpx.Client(base_url=server.url, timeout=60), new_model)
    model_id = created["model_id"]
    # New connections land on either worker; every one of them knows the model.
    statuses = [
        httpx.post(f"{server.url}/api/run/{model_id}/detect", content=hopper, timeout=60)
        for _ in range(8)
    ]
    assert [r.status_code for r in statuses] == [200] * 8
    metrics = httpx.get(f"{server.url}/metrics").text
    line = next(
        line for line in metrics.splitlines()
        if line.startswith("facefaas_inference_seconds_count") and model_id in line
    )  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == 8
    # Each worker writes its usage counts to the shared database every 2 s.
    deadline, calls = time.monotonic() + 20, 0
    while calls < 8 and time.monotonic() < deadline:
        time.sleep(0.5)
        calls = httpx.get(f"{server.url}/api/models/{model_id}").json()["usage"]["calls"]
    assert calls == 8
    server.stop()
