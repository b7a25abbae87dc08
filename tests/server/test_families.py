"""Detector families over HTTP: CenterFace built in beside MTCNN, its own parameters, uploads of
CenterFace ONNX files recognised by their graph, and every function working on its faces."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from facefaas.centerface import builtin_onnx
from facefaas.detector import Detector
from facefaas.faces import Faces

from .conftest import ServerFactory, assert_problem, decode

pytestmark = pytest.mark.timeout(180)


def test_info_lists_the_families_and_their_parameters(http: httpx.Client) -> None:
    families = {f["name"]: f for f in http.get("/api/info").json()["families"]}
    assert list(families) == ["mtcnn", "centerface"]
    assert families["mtcnn"]["parameters"] == ["min_size", "thresholds", "factor"]
    assert families["centerface"]["parameters"] == ["threshold", "nms_threshold", "input_size"]
    assert families["centerface"]["defaults"] == {
        "threshold": 0.5, "nms_threshold": 0.3, "input_size": None
    }  # fmt: skip


def test_centerface_is_a_built_in_model_of_its_family(http: httpx.Client) -> None:
    shown = http.get("/api/models/centerface").json()
    assert (shown["family"], shown["builtin"]) == ("centerface", True)
    assert shown["parameters"] == {"threshold": 0.5, "nms_threshold": 0.3, "input_size": None}
    assert http.get("/api/models/mtcnn").json()["family"] == "mtcnn"


def test_centerface_over_http_equals_the_library(http: httpx.Client, solvay: bytes) -> None:
    body = http.post("/api/run/centerface/detect", content=solvay,
                     params={"threshold": 0.4}).json()  # fmt: skip
    with Detector("centerface") as detector:
        expected = detector(solvay, threshold=0.4)
    got = Faces.from_dict(body)
    assert len(got) == len(expected) > 20
    np.testing.assert_allclose(got.boxes, expected.boxes, atol=0.01)
    np.testing.assert_allclose(got.landmarks, expected.landmarks, atol=0.01)
    assert body["parameters"]["threshold"] == 0.4


def test_another_familys_parameter_is_a_422_naming_the_right_ones(
    http: httpx.Client, solvay: bytes
) -> None:
    response = http.post("/api/run/centerface/detect", content=solvay, params={"min_size": 30})
    body = assert_problem(response, 422)
    assert "min_size" in body["detail"] and "threshold, nms_threshold, input_size" in body["detail"]
    response = http.post("/api/run/mtcnn/detect", content=solvay, params={"threshold": 0.3})
    assert "min_size, thresholds, factor" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize("function", ["blur", "pixelate", "redact", "annotate"])
def test_pictures_work_with_centerface_faces(
    http: httpx.Client, solvay: bytes, function: str
) -> None:
    faces = http.post("/api/run/centerface/detect", content=solvay).json()["faces"]
    response = http.post(f"/api/run/centerface/{function}", content=solvay,
                         params={"format": "png", "color": "#ff00ff"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert int(response.headers["x-face-count"]) == len(faces) > 10
    picture = np.asarray(decode(response.content).convert("RGB")).astype(int)
    original = np.asarray(decode(solvay).convert("RGB")).astype(int)
    x1, y1, x2, y2 = (int(v) for v in faces[0]["box"])
    inside = np.abs(picture[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean()
    assert inside > 5  # the face was drawn on or hidden


def test_aligned_crops_come_from_centerface_landmarks(http: httpx.Client, solvay: bytes) -> None:
    response = http.post("/api/run/centerface/crops", content=solvay,
                         params={"size": 64, "align": "true", "zip": "true"})  # fmt: skip
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        chips = [n for n in archive.namelist() if n.endswith(".jpg")]
        assert len(chips) > 10
        assert decode(archive.read(chips[0])).size == (64, 64)


def test_a_centerface_onnx_upload_is_recognised_and_runs(
    start_server: ServerFactory, solvay: bytes
) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=120) as http:
        response = http.post(
            "/api/models", files={"file": ("retrained.onnx", builtin_onnx())},
            data={"name": "my centerface"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["family"], created["format"]) == ("centerface", "centerface-onnx")
        assert created["sha256"].startswith("09189dea")
        assert created["name"] == "my centerface"
        mine = http.post(f"/api/run/{created['model_id']}/detect", content=solvay).json()
        builtin = http.post("/api/run/centerface/detect", content=solvay).json()
        assert mine["faces"] == builtin["faces"]
        config = f"/api/models/{created['model_id']}/config"
        admin = {"X-API-Key": created["admin_key"]}
        assert http.put(config, json={"threshold": 0.8}, headers=admin).status_code == 200
        strict = http.post(f"/api/run/{created['model_id']}/detect", content=solvay).json()
        assert 0 < len(strict["faces"]) < len(mine["faces"])
        assert_problem(http.put(config, json={"min_size": 30}, headers=admin), 422)
        bundle = http.get(f"/api/models/{created['model_id']}/bundle")
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
            assert sorted(archive.namelist()) == ["centerface.onnx", "manifest.json"]
        # New weights of another family are another model: its config, its callers'
        # parameters and its running jobs are CenterFace's.
        mtcnn = http.get("/api/models/mtcnn/bundle").content
        refused = http.put(f"/api/models/{created['model_id']}",
                           files={"file": ("mtcnn.zip", mtcnn)}, headers=admin)  # fmt: skip
        problem = assert_problem(refused, 409)
        assert problem["detail"] == (
            f"model {created['model_id']!r} is a centerface model and these are mtcnn weights: "
            "upload them as a new model instead"
        )
        after = http.get(f"/api/models/{created['model_id']}").json()
        assert (after["family"], after["sha256"]) == ("centerface", created["sha256"])


def _tiny_onnx() -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])],
    )  # fmt: skip
    return onnx.helper.make_model(graph).SerializeToString()


def test_an_onnx_file_of_no_known_family_is_refused_naming_the_families(
    http: httpx.Client,
) -> None:
    response = http.post("/api/models", files={"file": ("other.onnx", _tiny_onnx())})
    body = assert_problem(response, 422)
    assert "mtcnn" in body["detail"] and "centerface" in body["detail"]


def test_a_registry_from_before_families_gains_the_column(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from facefaas.registry import Registry

    registry = Registry.open(tmp_path)
    registry.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    with engine.begin() as conn:  # as an older facefaas made it: no family column
        conn.execute(sa.text("ALTER TABLE models DROP COLUMN family"))
        conn.execute(sa.text("DELETE FROM models WHERE id = 'centerface'"))
    engine.dispose()
    reopened = Registry.open(tmp_path)
    try:
        assert reopened.get("mtcnn").family == "mtcnn"
        assert reopened.get("centerface").family == "centerface"
    finally:
        reopened.close()
