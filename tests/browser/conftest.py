"""Fixtures of the browser tests: the real service on a loopback port and headless Chromium.

The service runs in-process (uvicorn in a thread) with a temporary data directory, no rate limit
and a small image-body limit (:data:`MAX_BODY_BYTES`) so a 413 is cheap to provoke. The browser is
Debian's ``/usr/bin/chromium`` driven by Playwright; the tests skip, saying why, when it is absent
(``.ci/install-browser.sh`` installs it). Nothing is downloaded: Playwright's own browsers are not
used, and Chromium's background networking is switched off.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_BODY_BYTES = 1024 * 1024
STARTUP_TIMEOUT_S = 60.0


class LiveServer:
    """A uvicorn server running the facefaas app in a background thread."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        import uvicorn

        self.max_body_bytes = max_body_bytes
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped during startup")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        raise RuntimeError(f"the server at {self.url} was not ready in {STARTUP_TIMEOUT_S} s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The facefaas service with a fresh data directory, at ``live_server.url``."""
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from facefaas.server import create_app
    from facefaas.settings import Settings

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("facefaas-data"),
        max_body_bytes=MAX_BODY_BYTES,
        rate_limit="",
        log_format="text",
        log_level="warning",
        inference_threads=2,
    )
    server = LiveServer(create_app(settings), MAX_BODY_BYTES)
    server.start()
    yield server
    server.stop()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, which would break asyncio.run() in the tests collected after these.
@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (Debian's) with a fresh profile, as a Playwright browser context."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: run .ci/install-browser.sh (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any, live_server: LiveServer) -> Iterator[Any]:
    """A new tab on the service's page, loaded and scripted; fails the test on page errors."""
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{live_server.url}/")
    tab.wait_for_selector("html[data-ready=true]")
    yield tab
    tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def astronaut(shared: Path) -> Path:
    """The public-domain astronaut photo (one face) from ``../shared``."""
    return shared / "eval" / "photos" / "scikit-image__astronaut.png"


@pytest.fixture(scope="session")
def new_bundle_zip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``make(name)``: a bundle zip of the built-in weights with one O-Net bias nudged by an
    amount derived from ``name`` -- a new, working model whose id no other name shares."""
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle
    from facefaas.models.export import bundle_zip
    from facefaas.models.weights import MtcnnWeights

    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    weights = bundle.weights()
    root = tmp_path_factory.mktemp("bundles")
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            onet = dict(weights.onet)
            nudge = np.float32(1e-3 * (1 + len(made)))
            onet["fc6_1.bias"] = onet["fc6_1.bias"] + nudge
            nudged = MtcnnWeights(pnet=dict(weights.pnet), rnet=dict(weights.rnet), onet=onet)
            made[name] = root / f"{name}.zip"
            made[name].write_bytes(bundle_zip(nudged, bundle.manifest))
        return made[name]

    return make


@pytest.fixture
def register(
    live_server: LiveServer, new_bundle_zip: Callable[[str], Path]
) -> Iterator[Callable[..., dict[str, Any]]]:
    """``register(name, **fields)``: a new model (``new_bundle_zip(name)``) uploaded through the
    API with that name and the multipart ``fields`` (e.g. ``private="true"``); the answer
    (model_id, admin_key, usage_key, ...). Every model registered is deleted after the test."""
    created: list[dict[str, Any]] = []

    def register(name: str, **fields: str) -> dict[str, Any]:
        bundle = new_bundle_zip(name)
        response = httpx.post(
            f"{live_server.url}/api/models",
            files={"file": (bundle.name, bundle.read_bytes())},
            data={"name": name, **fields},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
        return created[-1]

    yield register
    for model in created:
        httpx.delete(
            f"{live_server.url}/api/models/{model['model_id']}",
            headers={"X-API-Key": model["admin_key"]},
            timeout=30,
        )
