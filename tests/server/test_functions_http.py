"""The function table over HTTP: every entry a route, OpenAPI and /api/info list it, redact
works like any picture function, a model uploads as several files, /docs works offline."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from facefaas import functions
from facefaas.client import Client

from .conftest import LiveServer, ServerFactory, assert_problem, decode

pytestmark = pytest.mark.timeout(120)


def test_info_lists_the_function_table(http: httpx.Client) -> None:
    info = http.get("/api/info").json()
    assert info["functions"] == functions.names()
    details = {d["name"]: d for d in info["function_details"]}
    assert list(details) == functions.names()
    assert details["redact"] == {
        "name": "redact",
        "summary": functions.get_function("redact").summary,
        "output": "image",
        "aliases": [],
        "media_types": ["image/jpeg", "image/png"],
        "options": ["color", "margin", "format", "quality"],
        "anonymizes": True,
    }
    assert details["annotate"]["aliases"] == ["box"]
    assert details["infer"]["media_types"] == ["image/jpeg"]


def test_openapi_enumerates_the_functions_of_each_route(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    def enum_of(path: str) -> list[str]:
        (param,) = [p for p in paths[path]["post"]["parameters"] if p["name"] == "function"]
        schema = param["schema"]
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = http.get("/openapi.json").json()["components"]["schemas"][name]
        return list(schema["enum"])

    assert enum_of("/api/run/{model_id}/{function}") == functions.names(aliases=True)
    pictures = enum_of("/api/run/{model_id}/{function}/bytes")
    assert set(pictures) == {"annotate", "box", "blur", "pixelate", "redact", "infer"}


@pytest.mark.parametrize("route", ["/api/run/mtcnn/redact", "/api/run/mtcnn/redact/bytes"])
def test_redact_fills_the_detected_face_with_the_colour_asked_for(
    http: httpx.Client, hopper: bytes, route: str
) -> None:
    faces = http.post("/api/run/mtcnn/detect", content=hopper).json()["faces"]
    assert len(faces) == 1
    x1, y1, x2, y2 = (int(v) for v in faces[0]["box"])
    response = http.post(route, content=hopper, params={"color": "#ff0000", "format": "png"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-face-count"] == "1"
    pixels = np.asarray(decode(response.content).convert("RGB"))
    assert (pixels[y1:y2, x1:x2] == (255, 0, 0)).all()
    original = np.asarray(decode(hopper).convert("RGB"))
    np.testing.assert_array_equal(pixels[:, : max(x1 - 1, 0)], original[:, : max(x1 - 1, 0)])


def test_a_bad_colour_is_a_422_naming_the_field(http: httpx.Client, hopper: bytes) -> None:
    response = http.post("/api/run/mtcnn/redact", content=hopper, params={"color": "red"})
    body = assert_problem(response, 422)
    assert "color" in response.text, body


def test_an_unknown_function_is_a_422_listing_the_functions(
    http: httpx.Client, hopper: bytes
) -> None:
    response = http.post("/api/run/mtcnn/sharpen", content=hopper)
    assert_problem(response, 422)
    assert "redact" in response.text


def test_the_client_draws_every_picture_function_of_the_table(
    server: LiveServer, hopper: bytes
) -> None:
    with Client(server.url) as client:
        for function in functions.picture_functions():
            picture = client.picture(function.name, hopper, format="png")
            assert decode(picture).size == (128, 128), function.name
        redacted = client.anonymize(hopper, method="redact", color=(0, 255, 0), format="png")
        faces = client.detect(hopper)
        x1, y1, x2, y2 = (int(v) for v in faces.boxes[0])
        assert (np.asarray(decode(redacted))[y1:y2, x1:x2] == (0, 255, 0)).all()


def test_a_model_uploads_as_its_several_caffe_files(
    start_server: ServerFactory, shared: Path
) -> None:
    server = start_server()
    folder = shared / "models" / "caffe-original"
    parts = [
        ("file", (f"det{i}.caffemodel", (folder / f"det{i}.caffemodel").read_bytes()))
        for i in (1, 2, 3)
    ]
    response = httpx.post(f"{server.url}/api/models", files=parts, timeout=60)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["format"] == "caffe"
    assert created["model_id"] != created["sha256"][:16]  # ids are random, sha256 the digest
    assert created["sha256"].startswith("17a79f64")  # the seed's weights, from Caffe
    assert re.fullmatch(r"caffe-[0-9a-f]{12}", created["name"])


def test_the_client_uploads_a_model_as_several_files(
    start_server: ServerFactory, shared: Path
) -> None:
    server = start_server()
    folder = shared / "models" / "facenet-pytorch"
    with Client(server.url) as client:
        created = client.upload_model([folder / f"{n}.pt" for n in ("pnet", "rnet", "onet")])
    assert created["format"] == "facenet-pytorch"
    assert created["sha256"].startswith("17a79f64")


def test_two_model_files_with_one_name_are_a_400(http: httpx.Client) -> None:
    parts = [("file", ("det1.caffemodel", b"x")), ("file", ("det1.caffemodel", b"y"))]
    assert_problem(http.post("/api/models", files=parts), 400)


def test_docs_load_swagger_ui_from_this_server_only(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "<script>" not in page.text  # no inline script: a strict CSP can cover it
    for source in sources:
        asset = http.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 0
    bundle = http.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 500_000
    assert "/openapi.json" in http.get("/docs/start.js").text
