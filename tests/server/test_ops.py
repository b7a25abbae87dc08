"""Operations: health, readiness, metrics, OpenAPI, info, the page at /, CORS."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from facefaas.server import create_app
from facefaas.settings import Settings

from .conftest import TEST_LIMITS, LiveServer, ServerFactory, assert_problem

pytestmark = pytest.mark.timeout(120)


def test_healthz_and_readyz_answer_without_auth(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["default_model"] == "mtcnn"
    assert ready["provider"] == "CPUExecutionProvider"


def test_readyz_is_503_until_the_default_model_is_loaded(tmp_path: Path, hopper: bytes) -> None:
    settings = Settings(**{**TEST_LIMITS, "data_dir": tmp_path})
    app = create_app(settings)
    release = threading.Event()
    detectors = app.state.service.detectors
    load = detectors._factory

    def slow_load(path: Path, pool: Any) -> Any:
        release.wait(30)
        return load(path, pool)

    detectors._factory = slow_load
    server = LiveServer(settings, app=app).start(ready=False)
    try:
        response = httpx.get(f"{server.url}/readyz")
        assert_problem(response, 503, "not-ready")
        assert response.headers["retry-after"] == "1"
        release.set()
        # The first run waits for the load in progress rather than loading a second copy.
        run = httpx.post(f"{server.url}/api/run/mtcnn/detect", content=hopper, timeout=30)
        assert run.status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        release.set()
        server.stop()


def test_missing_execution_provider_fails_the_startup(tmp_path: Path) -> None:
    from facefaas.errors import ProviderError

    app = create_app(Settings(**{**TEST_LIMITS, "data_dir": tmp_path, "providers": ["cuda"]}))
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here")
    service = app.state.service
    import asyncio

    with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
        asyncio.run(service.start(reconcile=False))


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def test_metrics_count_latency_faces_errors_and_memory(
    start_server: ServerFactory, hopper: bytes
) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(3):
            http.post("/api/run/mtcnn/detect", content=hopper)
        http.post("/api/run/mtcnn/annotate", content=hopper)
        http.post("/api/run/mtcnn/detect", content=b"junk")
        http.get("/api/models/nope")
        response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    count = "facefaas_inference_seconds_count"
    assert _metric(text, count, model="mtcnn", function="detect") == 3
    assert _metric(text, count, model="mtcnn", function="annotate") == 1
    assert _metric(text, "facefaas_faces_per_image_sum", model="mtcnn") == 4
    assert _metric(text, "facefaas_http_errors_total", status="400") == 1
    assert _metric(text, "facefaas_http_errors_total", status="404") == 1
    assert _metric(text, "facefaas_http_responses_total", status="200") >= 4
    assert _metric(text, "facefaas_requests_in_flight") == 1  # this scrape
    assert _metric(text, "facefaas_inference_pending") == 0
    assert _metric(text, "facefaas_process_resident_memory_bytes") > 10e6
    assert _metric(text, "process_resident_memory_bytes") > 10e6


def test_openapi_documents_the_routes(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/run/{model_id}/{function}",
        "/api/batch/{model_id}/detect",
        "/api/models",
        "/api/models/{model_id}",
        "/api/models/{model_id}/config",
        "/api/executables",
        "/api/run/{model_id}/{function}/bytes",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    run = paths["/api/run/{model_id}/{function}"]["post"]
    assert {p["name"] for p in run["parameters"]} >= {"min_size", "thresholds", "max_faces"}
    assert "multipart/form-data" in run["requestBody"]["content"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_info_tells_limits_and_functions(http: httpx.Client) -> None:
    info = http.get("/api/info").json()
    assert info["default_model"] == "mtcnn"
    assert info["max_body_bytes"] == TEST_LIMITS["max_body_bytes"]
    assert {"detect", "annotate", "blur", "pixelate", "crops"} <= set(info["functions"])
    assert info["upload_token_required"] is False


def test_the_web_page_is_served_at_the_root(http: httpx.Client) -> None:
    from facefaas.server.app import STATIC_DIR

    if not (STATIC_DIR / "index.html").is_file():
        pytest.skip("the web page is not built yet")
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (STATIC_DIR / "index.html").read_text()


def test_cors_allows_only_configured_origins(start_server: ServerFactory) -> None:
    server = start_server(cors_origins=["https://app.example"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    with httpx.Client(base_url=server.url) as http:
        allowed = http.options(
            "/api/run/mtcnn/detect", headers={"Origin": "https://app.example", **preflight}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
        denied = http.options(
            "/api/run/mtcnn/detect", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in denied.headers


def test_access_log_is_json_with_the_request_id_and_no_secrets(
    http: httpx.Client, hopper: bytes
) -> None:
    import json
    import logging

    from facefaas.server.requestlog import JsonFormatter

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("facefaas.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        http.post(
            "/api/run/mtcnn/detect",
            content=hopper,
            params={"min_size": 20, "api_key": "leaky"},
            headers={"X-Request-ID": "trace-42", "X-API-Key": "ffa_supersecret"},
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    entries = [json.loads(line) for line in lines]
    mine = [e for e in entries if e.get("request_id") == "trace-42"]
    assert len(mine) == 1
    entry = mine[0]
    assert (entry["method"], entry["path"], entry["status"]) == (
        "POST",
        "/api/run/mtcnn/detect",
        422,
    )
    assert entry["duration_ms"] > 0 and entry["level"] == "info"
    text = "\n".join(lines)
    assert "supersecret" not in text and "leaky" not in text and "JFIF" not in text
