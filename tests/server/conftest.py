"""Fixtures of the service tests: real servers on loopback ports, test images and model files.

``server`` is the facefaas app on uvicorn in a background thread (real HTTP over loopback) with a
temporary data folder and small limits, so every limit is cheap to hit. ``start_server`` starts
more of them with other settings. Face images come from ``../shared`` (the ``shared`` fixture);
everything else is synthetic. Model files are the built-in weights zipped as a bundle, or nudged
so that each is a new model with its own id.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra is not installed")

from facefaas.models.builtin import builtin_path
from facefaas.models.bundle import read_bundle
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.server import create_app
from facefaas.settings import Settings

STARTUP_TIMEOUT_S = 60.0
MiB = 1024 * 1024

# Small limits: a 413 costs a few kilobytes, not 32 MiB.
TEST_LIMITS: dict[str, Any] = {
    "max_body_bytes": 1 * MiB,
    "max_pixels": 1_000_000,
    "max_model_bytes": 8 * MiB,
    "max_batch_items": 4,
    "rate_limit": "",
    "inference_threads": 2,
    "queue_size": 2,
    # Every test of a session uploads as 127.0.0.1: quotas get servers of their own.
    "upload_quota_models": 100_000,
    "log_format": "text",
    "log_level": "warning",
}


class LiveServer:
    """A uvicorn server running one facefaas app in a background thread."""

    def __init__(self, settings: Settings, app: Any = None) -> None:
        import uvicorn

        self.settings = settings
        self.app = app if app is not None else create_app(settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def service(self) -> Any:
        return self.app.state.service

    def start(self, *, ready: bool = True) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped during startup")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.05)
        raise RuntimeError(f"{self.url}{path} did not answer 200 in {STARTUP_TIMEOUT_S} s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start a server: ``start_server(rate_limit="2/minute", data_dir=..., ready=True)``."""
    started: list[LiveServer] = []

    def start(*, ready: bool = True, **overrides: Any) -> LiveServer:
        values = {**TEST_LIMITS, **overrides}
        values.setdefault("data_dir", tmp_path_factory.mktemp("facefaas-data"))
        server = LiveServer(Settings(**values))
        started.append(server)
        return server.start(ready=ready)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: ServerFactory) -> LiveServer:
    """The shared test server (see :data:`TEST_LIMITS`)."""
    return start_server()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


# -- images ----------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    """A 64x48 grey PNG: no faces."""
    return encode(Image.new("RGB", (64, 48), (128, 128, 128)))


@pytest.fixture(scope="session")
def hopper(shared: Path) -> bytes:
    """Pillow's hopper photo, 128x128 JPEG, one face (public domain)."""
    return (shared / "eval" / "photos" / "pillow__hopper_gray.jpg").read_bytes()


@pytest.fixture(scope="session")
def hopper_rotated(shared: Path) -> bytes:
    """Hopper stored sideways with EXIF orientation 6 (one face once turned upright)."""
    return (shared / "eval" / "photos" / "pillow__hopper_orientation_6.jpg").read_bytes()


@pytest.fixture(scope="session")
def solvay(shared: Path) -> bytes:
    """The seed's test photo (960x661, about 30 faces)."""
    return (shared / "data" / "solvay.jpg").read_bytes()


# -- models ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], bytes]:
    """``make_model(n)``: a bundle zip of the built-in weights with one O-Net bias nudged by
    ``n * 1e-3`` (``n=0``: the built-in weights themselves). Each ``n`` is a distinct model."""
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle
    from facefaas.models.export import bundle_zip
    from facefaas.models.weights import MtcnnWeights

    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    cache: dict[int, bytes] = {}

    def make(n: int) -> bytes:
        if n not in cache:
            weights = bundle.weights()
            onet = dict(weights.onet)
            onet["fc6_1.bias"] = onet["fc6_1.bias"] + np.float32(n * 1e-3)
            nudged = MtcnnWeights(pnet=dict(weights.pnet), rnet=dict(weights.rnet), onet=onet)
            cache[n] = bundle_zip(nudged, bundle.manifest)
        return cache[n]

    return make


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def new_model(make_model: Callable[[int], bytes]) -> bytes:
    """A bundle zip no test has uploaded yet."""
    return make_model(next(_counter))


def upload(http: httpx.Client, model: bytes, **fields: Any) -> dict[str, Any]:
    """Upload ``model`` as multipart and return the 201 body."""
    data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    response = http.post("/api/models", files={"file": ("model.zip", model)}, data=data)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """``response`` is a problem+json of ``status`` (and ``code``), without a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:facefaas:problem:")
    assert body["detail"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture(scope="module")
def weights() -> tuple[MtcnnWeights, ModelManifest]:
    """The built-in model's weights and manifest, to make other models from."""
    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    return bundle.weights(), bundle.manifest


def nudged(weights: MtcnnWeights, n: int) -> MtcnnWeights:
    """Other weights (a new digest) whose faces differ from the built-in's by ``n`` x 1e-3."""
    onet = dict(weights.onet)
    onet["fc6_2.bias"] = onet["fc6_2.bias"] + np.float32(n * 1e-3)
    return MtcnnWeights(pnet=dict(weights.pnet), rnet=dict(weights.rnet), onet=onet)
