"""Running the built-in model over HTTP: inputs, outputs, parameters, negotiation."""

from __future__ import annotations

import base64
import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from facefaas.faces import LANDMARK_NAMES, Faces

from .conftest import decode, encode

pytestmark = pytest.mark.timeout(120)


def test_detect_json_echoes_image_model_parameters_and_timings(
    http: httpx.Client, hopper: bytes
) -> None:
    response = http.post(
        "/api/run/mtcnn/detect",
        content=hopper,
        headers={"Content-Type": "image/jpeg"},
        params={"min_size": 24, "thresholds": "0.6,0.7,0.75"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == "mtcnn"
    assert (body["width"], body["height"]) == (128, 128)
    assert body["image"] == {
        "width": 128, "height": 128, "format": "JPEG", "orientation": 1,
        "orientation_applied": False,
    }  # fmt: skip
    assert body["parameters"] == {
        "min_size": 24.0, "thresholds": [0.6, 0.7, 0.75], "factor": 0.709,
        "max_faces": None, "score_threshold": 0.0,
    }  # fmt: skip
    assert set(body["timings_ms"]) == {"decode", "detect", "total"}
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    assert set(face) == {"box", "box_normalized", "score", "landmarks"}
    assert list(face["landmarks"]) == list(LANDMARK_NAMES)
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
    assert face["score"] > 0.9


def test_detect_matches_the_library(http: httpx.Client, hopper: bytes) -> None:
    from facefaas.detector import Detector

    expected = Detector()(hopper)
    body = http.post("/api/run/mtcnn/detect", content=hopper).json()
    got = Faces.from_dict(body)
    np.testing.assert_allclose(got.boxes, expected.boxes, atol=0.01)
    np.testing.assert_allclose(got.landmarks, expected.landmarks, atol=0.01)


def _as_multipart(data: bytes) -> dict[str, object]:
    return {"files": {"file": ("photo.jpg", data, "image/jpeg")}}


def _as_json(data: bytes) -> dict[str, object]:
    return {"json": {"image": base64.b64encode(data).decode()}}


def _as_data_uri(data: bytes) -> dict[str, object]:
    return {"json": {"image": "data:image/jpeg;base64," + base64.b64encode(data).decode()}}


def _as_octet_stream(data: bytes) -> dict[str, object]:
    return {"content": data, "headers": {"Content-Type": "application/octet-stream"}}


def _as_curl_default(data: bytes) -> dict[str, object]:
    # curl --data-binary without -H sends this type
    return {"content": data, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


@pytest.mark.parametrize(
    "carrier", [_as_octet_stream, _as_multipart, _as_json, _as_data_uri, _as_curl_default]
)
def test_every_way_of_sending_the_image_finds_the_same_face(
    http: httpx.Client, hopper: bytes, carrier: object
) -> None:
    response = http.post("/api/run/mtcnn/detect", **carrier(hopper))  # type: ignore[operator]
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 1


def test_parameters_in_json_body_and_multipart_fields_are_used(
    http: httpx.Client, hopper: bytes
) -> None:
    as_json = http.post(
        "/api/run/mtcnn/detect",
        json={"image": base64.b64encode(hopper).decode(), "thresholds": [0.5, 0.6, 0.7]},
    ).json()
    assert as_json["parameters"]["thresholds"] == [0.5, 0.6, 0.7]
    as_form = http.post(
        "/api/run/mtcnn/detect",
        files={"file": ("h.jpg", hopper)},
        data={"min_size": "30", "max_faces": "1"},
    ).json()
    assert as_form["parameters"]["min_size"] == 30.0
    assert as_form["parameters"]["max_faces"] == 1


def test_no_faces_is_200_with_an_empty_list(http: httpx.Client, blank_png: bytes) -> None:
    response = http.post("/api/run/mtcnn/detect", content=blank_png)
    assert response.status_code == 200
    assert response.json()["faces"] == []


def test_score_threshold_above_every_face_leaves_none(http: httpx.Client, hopper: bytes) -> None:
    found = http.post("/api/run/mtcnn/detect", content=hopper).json()["faces"]
    assert len(found) == 1 and found[0]["score"] < 1.0
    body = http.post("/api/run/mtcnn/detect", content=hopper, params={"score_threshold": 1}).json()
    assert body["parameters"]["score_threshold"] == 1.0
    assert body["faces"] == []


def test_max_faces_keeps_the_largest(http: httpx.Client, solvay: bytes) -> None:
    everything = http.post("/api/run/mtcnn/detect", content=solvay).json()["faces"]
    two = http.post("/api/run/mtcnn/detect", content=solvay, params={"max_faces": 2}).json()
    assert len(everything) > 20 and len(two["faces"]) == 2

    def area(face: dict[str, list[float]]) -> float:
        x1, y1, x2, y2 = face["box"]
        return (x2 - x1) * (y2 - y1)

    largest = sorted((area(f) for f in everything), reverse=True)[:2]
    assert sorted((area(f) for f in two["faces"]), reverse=True) == pytest.approx(largest)


def test_exif_orientation_is_applied_and_reported(
    http: httpx.Client, hopper_rotated: bytes
) -> None:
    body = http.post("/api/run/mtcnn/detect", content=hopper_rotated).json()
    assert body["image"]["orientation"] == 6
    assert body["image"]["orientation_applied"] is True
    assert len(body["faces"]) == 1


def test_exif_orientation_swaps_width_and_height(http: httpx.Client) -> None:
    img = Image.new("RGB", (60, 30), (90, 90, 90))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(img, "JPEG", exif=exif.tobytes())
    body = http.post("/api/run/mtcnn/detect", content=data).json()
    assert (body["width"], body["height"]) == (30, 60)


@pytest.mark.parametrize(
    ("query", "accept", "media_type", "pil_format"),
    [
        ({}, None, "image/jpeg", "JPEG"),
        ({"format": "png"}, None, "image/png", "PNG"),
        ({"format": "jpeg"}, "image/png", "image/jpeg", "JPEG"),
        ({}, "image/png", "image/png", "PNG"),
        ({}, "image/png;q=0.5, image/jpeg", "image/jpeg", "JPEG"),
        ({}, "image/*", "image/jpeg", "JPEG"),
    ],
)
def test_annotate_format_from_parameter_or_accept(
    http: httpx.Client,
    hopper: bytes,
    query: dict[str, str],
    accept: str | None,
    media_type: str,
    pil_format: str,
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = http.post("/api/run/mtcnn/annotate", content=hopper, params=query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["x-face-count"] == "1"
    img = decode(response.content)
    assert img.format == pil_format and img.size == (128, 128)


def test_annotate_draws_green_boxes_and_nothing_else(http: httpx.Client, hopper: bytes) -> None:
    from facefaas.decode import load_image

    original = load_image(hopper).pixels.astype(int)
    drawn = np.asarray(
        decode(http.post("/api/run/mtcnn/annotate?format=png", content=hopper).content)
    ).astype(int)
    changed = np.any(drawn != original, axis=2)
    assert changed.any()
    assert (drawn[changed] == [0, 255, 0]).all()


@pytest.mark.parametrize("function", ["blur", "pixelate"])
def test_anonymize_changes_the_face_and_keeps_the_rest(
    http: httpx.Client, hopper: bytes, function: str
) -> None:
    from facefaas.decode import load_image

    face = http.post("/api/run/mtcnn/detect", content=hopper).json()["faces"][0]
    x1, y1, x2, y2 = (int(v) for v in face["box"])
    response = http.post(f"/api/run/mtcnn/{function}", content=hopper, params={"format": "png"})
    assert response.status_code == 200
    out = np.asarray(decode(response.content)).astype(int)
    original = load_image(hopper).pixels.astype(int)
    inside = np.abs(out[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean()
    outside = out.copy()
    outside[max(y1, 0) : y2, max(x1, 0) : x2] = original[max(y1, 0) : y2, max(x1, 0) : x2]
    assert inside > 3.0
    assert (outside == original).all()


def test_crops_json_has_one_chip_per_face(http: httpx.Client, hopper: bytes) -> None:
    body = http.post("/api/run/mtcnn/crops", content=hopper, params={"size": 64}).json()
    assert len(body["crops"]) == len(body["faces"]) == 1
    chip = body["crops"][0]
    assert chip["media_type"] == "image/png" or chip["media_type"] == "image/jpeg"
    assert (
        decode(base64.b64decode(chip["data"])).size == (64, 64) == (chip["width"], chip["height"])
    )


@pytest.mark.parametrize(("query", "accept"), [({"zip": "true"}, None), ({}, "application/zip")])
def test_crops_zip_holds_chips_and_faces_json(
    http: httpx.Client, hopper: bytes, query: dict[str, str], accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    params = {**query, "format": "png", "size": 32}
    response = http.post("/api/run/mtcnn/crops", content=hopper, params=params, headers=headers)
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["face_000.png", "faces.json"]
    assert decode(archive.read("face_000.png")).size == (32, 32)


def test_batch_reports_each_image_on_its_own(
    http: httpx.Client, hopper: bytes, blank_png: bytes
) -> None:
    files = [
        ("file", ("a.jpg", hopper)),
        ("file", ("b.png", blank_png)),
        ("file", ("c.bin", b"not an image")),
    ]
    response = http.post("/api/batch/mtcnn/detect", files=files, params={"min_size": 20})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    statuses = [(r["filename"], r["status"]) for r in body["results"]]
    assert statuses == [("a.jpg", 200), ("b.png", 200), ("c.bin", 400)]
    assert len(body["results"][0]["result"]["faces"]) == 1
    assert body["results"][1]["result"]["faces"] == []
    assert body["results"][2]["error"]["code"] == "undecodable-image"


def test_batch_takes_json_base64_images(http: httpx.Client, hopper: bytes) -> None:
    images = [base64.b64encode(hopper).decode()] * 2
    body = http.post("/api/batch/mtcnn/detect", json={"images": images, "max_faces": 1}).json()
    assert [len(r["result"]["faces"]) for r in body["results"]] == [1, 1]
    assert body["results"][0]["result"]["parameters"]["max_faces"] == 1


def test_request_id_is_echoed_or_made(http: httpx.Client, blank_png: bytes) -> None:
    echoed = http.post("/api/run/mtcnn/detect", content=blank_png, headers={"X-Request-ID": "ab-1"})
    assert echoed.headers["x-request-id"] == "ab-1"
    made = http.post(
        "/api/run/mtcnn/detect", content=blank_png, headers={"X-Request-ID": "bad id!"}
    )
    assert made.headers["x-request-id"] != "bad id!" and len(made.headers["x-request-id"]) == 32
