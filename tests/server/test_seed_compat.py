"""The seed's own calls (second-state's FaaS API and web page) work unchanged against the server."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import ServerFactory, assert_problem

pytestmark = pytest.mark.timeout(120)

SEED_PUBLIC_KEY = "00000000-0000-0000-0000-000000000000"


def test_infer_bytes_is_the_seed_picture(http: httpx.Client, solvay: bytes, shared: Path) -> None:
    from facefaas.detector import Detector
    from facefaas.render import annotate, encode_image

    # Exactly what the seed's web page sends.
    response = http.post(
        "/api/run/mtcnn/infer/bytes",
        content=solvay,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    # 1-px green boxes on the image, JPEG quality 80: the library's rendering of the seed.
    faces = Detector()(solvay)
    assert response.content == encode_image(annotate(solvay, faces), "jpeg", 80)
    assert 27 <= int(response.headers["x-face-count"]) <= 31
    got = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    seed = np.asarray(Image.open(shared / "data" / "mtcnn_faas_output_tmp.jpg")).astype(int)
    assert got.shape == seed.shape
    assert np.abs(got - seed).mean() < 4.0  # two JPEG encoders, boxes within a pixel


def test_infer_bytes_with_seed_public_usage_key_header(http: httpx.Client, hopper: bytes) -> None:
    response = http.post(
        "/api/run/mtcnn/infer/bytes",
        content=hopper,
        headers={"Content-Type": "application/octet-stream", "SSVM_Usage_Key": SEED_PUBLIC_KEY},
    )
    assert response.status_code == 200


def test_multipart_run_takes_the_first_file_part(http: httpx.Client, hopper: bytes) -> None:
    response = http.post("/api/multipart/run/mtcnn/infer/bytes", files={"input_1": ("h", hopper)})
    assert response.status_code == 200 and response.headers["x-face-count"] == "1"


@pytest.mark.parametrize("header", ["SSVM_Description", "SSVM-Description"])
def test_executables_upload_answers_like_the_seed(
    http: httpx.Client, new_model: bytes, hopper: bytes, header: str
) -> None:
    response = http.post(
        "/api/executables",
        content=new_model,
        headers={"Content-Type": "application/octet-stream", header: "MTCNN"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"wasm_id", "wasm_sha256", "SSVM_Usage_Key", "SSVM_Admin_Key"}
    assert body["wasm_sha256"].startswith("0x") and len(body["wasm_sha256"]) == 66
    assert body["SSVM_Usage_Key"] == SEED_PUBLIC_KEY
    wasm_id, admin = body["wasm_id"], body["SSVM_Admin_Key"]
    shown = http.get(f"/api/executables/{wasm_id}").json()
    assert shown["wasm_description"] == "MTCNN"
    assert wasm_id in {e["wasm_id"] for e in http.get("/api/executables").json()}
    run = http.post(
        f"/api/run/{wasm_id}/infer/bytes",
        content=hopper,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert run.status_code == 200 and run.content[:2] == b"\xff\xd8"
    # The seed's admin calls, with its header spelling.
    assert_problem(http.delete(f"/api/executables/{wasm_id}"), 401)
    deleted = http.delete(f"/api/executables/{wasm_id}", headers={"SSVM_Admin_Key": admin})
    assert deleted.json() == {"wasm_id": wasm_id}
    assert_problem(http.get(f"/api/executables/{wasm_id}"), 404)


def test_seed_key_state_and_update_calls(
    http: httpx.Client, make_model: object, hopper: bytes
) -> None:
    first, second = make_model(201), make_model(202)  # type: ignore[operator]
    body = http.post("/api/executables", content=first, headers={"SSVM_Description": "x"}).json()
    wasm_id, admin = body["wasm_id"], body["SSVM_Admin_Key"]
    admin_header = {"SSVM_Admin_Key": admin}
    usage = http.put(f"/api/keys/{wasm_id}/usage_key", headers=admin_header).json()
    usage_key = usage["SSVM_Usage_Key"]
    assert usage_key != SEED_PUBLIC_KEY
    run = f"/api/run/{wasm_id}/infer/bytes"
    assert_problem(http.post(run, content=hopper), 401)
    ok = http.post(run, content=hopper, headers={"SSVM_Usage_Key": usage_key})
    assert ok.status_code == 200
    assert http.delete(f"/api/keys/{wasm_id}/usage_key", headers=admin_header).json() == {
        "SSVM_Usage_Key": SEED_PUBLIC_KEY
    }
    state = http.put(f"/api/state/{wasm_id}", content=b'{"max_faces": 1}', headers=admin_header)
    assert state.status_code == 200
    assert http.get(f"/api/state/{wasm_id}").json() == {"max_faces": 1}
    updated = http.put(
        f"/api/update_wasm_binary/{wasm_id}",
        content=second,
        headers={"Content-Type": "application/octet-stream", **admin_header},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["wasm_id"] == wasm_id
    assert updated.json()["wasm_sha256"] != body["wasm_sha256"]


def test_the_seed_page_may_call_from_another_origin_once_cors_allows_it(
    start_server: ServerFactory, hopper: bytes
) -> None:
    # No CORS by default: the operator opens it (--cors-origin '*', or the page's origin).
    http = httpx.Client(base_url=start_server(cors_origins=["*"]).url, timeout=30)
    preflight = http.options(
        "/api/run/mtcnn/infer/bytes",
        headers={
            "Origin": "https://seed-page.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    response = http.post(
        "/api/run/mtcnn/infer/bytes",
        content=hopper,
        headers={"Origin": "https://seed-page.example", "Content-Type": "application/octet-stream"},
    )
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-face-count" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("function", ["annotate", "blur", "pixelate"])
def test_other_pictures_have_bytes_routes_too(
    http: httpx.Client, hopper: bytes, function: str
) -> None:
    response = http.post(
        f"/api/run/mtcnn/{function}/bytes", content=hopper, params={"format": "png"}
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (128, 128)
