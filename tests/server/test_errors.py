"""Every error status as application/problem+json, with the right code, headers and no trace."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from facefaas.server import create_app
from facefaas.settings import Settings

from .conftest import (
    TEST_LIMITS,
    LiveServer,
    MiB,
    ServerFactory,
    assert_problem,
    encode,
    upload,
)

pytestmark = pytest.mark.timeout(120)

Request = Callable[[httpx.Client], httpx.Response]


def _garbage(http: httpx.Client) -> httpx.Response:
    return http.post("/api/run/mtcnn/detect", content=b"\x00not an image at all")


def _empty(http: httpx.Client) -> httpx.Response:
    return http.post("/api/run/mtcnn/detect", content=b"")


def _bad_base64(http: httpx.Client) -> httpx.Response:
    return http.post("/api/run/mtcnn/detect", json={"image": "@@@not base64@@@"})


def _json_without_image(http: httpx.Client) -> httpx.Response:
    return http.post("/api/run/mtcnn/detect", json={"min_size": 20})


def _bad_json(http: httpx.Client) -> httpx.Response:
    return http.post(
        "/api/run/mtcnn/detect", content=b"{nope", headers={"Content-Type": "application/json"}
    )


def _multipart_without_file(http: httpx.Client) -> httpx.Response:
    return http.post("/api/run/mtcnn/detect", files={"other": (None, "x")})


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (_garbage, "undecodable-image"),
        (_empty, "undecodable-image"),
        (_bad_base64, "undecodable-image"),
        (_json_without_image, "bad-input"),
        (_bad_json, "bad-input"),
        (_multipart_without_file, "bad-input"),
    ],
)
def test_unusable_input_is_400(http: httpx.Client, call: Request, code: str) -> None:
    assert_problem(call(http), 400, code)


@pytest.mark.parametrize(
    "query",
    [
        {"min_size": "2"},
        {"min_size": "big"},
        {"thresholds": "0.6,0.7"},
        {"thresholds": "0.6,0.7,1.5"},
        {"factor": "0.99"},
        {"max_faces": "0"},
        {"score_threshold": "2"},
        {"quality": "0"},
        {"format": "gif"},
        {"no_such_parameter": "1"},
    ],
)
def test_bad_parameters_are_422(
    http: httpx.Client, blank_png: bytes, query: dict[str, str]
) -> None:
    body = assert_problem(
        http.post("/api/run/mtcnn/detect", content=blank_png, params=query),
        422,
        "invalid-parameter",
    )
    assert body["errors"] and "input" not in body["errors"][0]


def test_bad_parameter_in_json_body_is_422(http: httpx.Client, blank_png: bytes) -> None:
    image = base64.b64encode(blank_png).decode()
    assert_problem(http.post("/api/run/mtcnn/detect", json={"image": image, "factor": 5}), 422)


def test_unknown_function_is_422(http: httpx.Client, blank_png: bytes) -> None:
    assert_problem(http.post("/api/run/mtcnn/explode", content=blank_png), 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "video/mp4"])
def test_unsupported_content_type_is_415(
    http: httpx.Client, blank_png: bytes, content_type: str
) -> None:
    response = http.post(
        "/api/run/mtcnn/detect", content=blank_png, headers={"Content-Type": content_type}
    )
    assert_problem(response, 415, "unsupported-media-type")


def test_model_upload_as_json_is_415(http: httpx.Client) -> None:
    assert_problem(http.post("/api/models", json={"model": "x"}), 415)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/run/nosuchmodel/detect"),
        ("POST", "/api/run/ab..%2F..%2Fetc/detect"),
        ("POST", "/api/run/UPPER/detect"),
        ("GET", "/api/models/0123456789abcdef"),
        ("DELETE", "/api/models/0123456789abcdef"),
        ("GET", "/api/no/such/route"),
        ("GET", "/no-such-page.html"),
    ],
)
def test_unknown_model_or_route_is_404(http: httpx.Client, method: str, path: str) -> None:
    assert_problem(http.request(method, path, content=b"x"), 404)


def test_wrong_method_is_405(http: httpx.Client) -> None:
    assert_problem(http.get("/api/run/mtcnn/detect"), 405)


def test_body_over_the_limit_is_413_with_the_limit(http: httpx.Client) -> None:
    body = assert_problem(
        http.post("/api/run/mtcnn/detect", content=b"\xff" * (MiB + 1)), 413, "too-large"
    )
    assert (body["limit"], body["unit"]) == (MiB, "bytes")


def test_streamed_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"\xff" * (128 * 1024)

    body = assert_problem(http.post("/api/run/mtcnn/detect", content=chunks()), 413)
    assert body["limit"] == MiB


def test_image_over_the_pixel_limit_is_413(http: httpx.Client) -> None:
    data = encode(Image.new("L", (1001, 1000)), "PNG")  # 1,001,000 px, a few kB
    body = assert_problem(http.post("/api/run/mtcnn/detect", content=data), 413, "too-large")
    assert (body["limit"], body["unit"]) == (1_000_000, "pixels")


def test_model_over_the_size_limit_is_413(http: httpx.Client) -> None:
    response = http.post("/api/models", content=b"\x00" * (8 * MiB + 1))
    assert assert_problem(response, 413)["limit"] == 8 * MiB


def test_too_many_images_in_a_batch_is_413(http: httpx.Client, blank_png: bytes) -> None:
    files = [("file", (f"{i}.png", blank_png)) for i in range(5)]
    body = assert_problem(http.post("/api/batch/mtcnn/detect", files=files), 413)
    assert (body["limit"], body["unit"]) == (4, "images")


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"this is not a model", "model-format"), (b"PK\x03\x04broken zip", "model-format")],
)
def test_unreadable_model_is_422(http: httpx.Client, data: bytes, code: str) -> None:
    response = http.post("/api/models", files={"file": ("model.pb", data)})
    assert assert_problem(response, 422)["code"].startswith("model")


def test_idempotency_key_reused_for_another_upload_is_422(
    http: httpx.Client, new_model: bytes, make_model: Callable[[int], bytes]
) -> None:
    key = {"Idempotency-Key": "reused-key-" + "0" * 16}
    http.post("/api/models", files={"file": ("a.zip", new_model)}, headers=key)
    other = http.post("/api/models", files={"file": ("b.zip", make_model(0))}, headers=key)
    assert_problem(other, 422, "idempotency-key-reused")


def test_private_model_without_a_key_is_401_and_with_a_wrong_key_403(
    http: httpx.Client, new_model: bytes, blank_png: bytes
) -> None:
    created = upload(http, new_model, private=True)
    path = f"/api/run/{created['model_id']}/detect"
    assert_problem(http.post(path, content=blank_png), 401, "unauthorized")
    wrong = http.post(path, content=blank_png, headers={"X-API-Key": "ffu_wrong"})
    assert_problem(wrong, 403, "forbidden")


def test_changing_the_builtin_model_is_403(http: httpx.Client) -> None:
    assert_problem(http.delete("/api/models/mtcnn", headers={"X-API-Key": "x"}), 403)
    assert_problem(http.delete("/api/models/mtcnn"), 403)


def test_upload_token_missing_is_401_and_wrong_is_403(
    start_server: ServerFactory, new_model: bytes
) -> None:
    guarded = start_server(upload_token="s3cret")
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        files = {"file": ("m.zip", new_model)}
        assert_problem(http.post("/api/models", files=files), 401)
        wrong = http.post("/api/models", files=files, headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 403)
        right = http.post("/api/models", files=files, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 201, right.text
        assert http.get("/api/info").json()["upload_token_required"] is True


def test_rate_limit_is_429_with_retry_after(
    start_server: ServerFactory, blank_png: bytes, new_model: bytes, counter_store: str | None
) -> None:
    # Counted in this process's memory, then in Redis (tests/server/test_shared_limits.py).
    limited = start_server(rate_limit="4/minute", redis_url=counter_store)
    with httpx.Client(base_url=limited.url, timeout=30) as http:
        created = upload(http, new_model, private=True)  # the address's first request
        statuses = [
            http.post("/api/run/mtcnn/detect", content=blank_png).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        response = http.post("/api/run/mtcnn/detect", content=blank_png)
        body = assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60 and body["retry_after"] >= 1
        # An invented key identifies nobody: it is the same address, still limited.
        for key in ("k", "ffu_" + "x" * 43):
            invented = http.post(
                "/api/run/mtcnn/detect", content=blank_png, headers={"X-API-Key": key}
            )
            assert_problem(invented, 429, "rate-limited")
        # A key verified for the model it calls has an allowance of its own.
        own = http.post(
            f"/api/run/{created['model_id']}/detect",
            content=blank_png,
            headers={"X-API-Key": created["usage_key"]},
        )
        assert own.status_code == 200, own.text
        # ...which another model's key does not share: for mtcnn it is no identity.
        foreign = http.post(
            "/api/run/mtcnn/detect", content=blank_png,
            headers={"X-API-Key": created["usage_key"]},
        )  # fmt: skip
        assert_problem(foreign, 429, "rate-limited")
        assert http.get("/healthz").status_code == 200  # operations are never limited


def test_full_inference_queue_is_503_with_retry_after(
    server: LiveServer, http: httpx.Client, blank_png: bytes
) -> None:
    pool = server.service.pool
    queue_size = pool.queue_size
    pool.running, pool.queue_size = pool.threads, 0  # every thread busy, no place to wait
    try:
        response = http.post("/api/run/mtcnn/detect", content=blank_png)
    finally:
        pool.running, pool.queue_size = 0, queue_size
    body = assert_problem(response, 503, "overloaded")
    assert response.headers["retry-after"] == "1" and body["retry_after"] == 1
    assert 0 < body["retry_after_ms"] == int(response.headers["retry-after-ms"])
    assert http.post("/api/run/mtcnn/detect", content=blank_png).status_code == 200


def test_unexpected_error_is_a_bare_500(tmp_path: Any, blank_png: bytes) -> None:
    app: FastAPI = create_app(Settings(**{**TEST_LIMITS, "data_dir": tmp_path}))

    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/boom", boom)
    app.router.routes.insert(0, app.router.routes.pop())  # before the page mounted at /

    server = LiveServer(Settings(**{**TEST_LIMITS, "data_dir": tmp_path}), app=app).start()
    try:
        response = httpx.get(f"{server.url}/boom")
    finally:
        server.stop()
    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
