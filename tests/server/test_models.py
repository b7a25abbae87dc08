"""The registry over HTTP: upload, list, show, replace, delete, keys, config, download."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import httpx
import pytest

from .conftest import LiveServer, assert_problem, upload

pytestmark = pytest.mark.timeout(120)


def _weights_sha(model_zip: bytes) -> str:
    from facefaas.models.manifest import ModelManifest

    manifest = zipfile.ZipFile(io.BytesIO(model_zip)).read("manifest.json")
    return ModelManifest.from_json(manifest).weights_sha256


def test_upload_returns_a_random_id_the_weights_digest_and_keys_once(
    http: httpx.Client, new_model: bytes
) -> None:
    created = upload(http, new_model, name="nudged", description="a test model")
    sha = _weights_sha(new_model)
    assert created["sha256"] == sha
    assert created["model_id"] == created["id"]
    assert re.fullmatch(r"[0-9a-f]{16}", created["model_id"]) and not sha.startswith(created["id"])
    assert created["admin_key"].startswith("ffa_") and created["usage_key"] is None
    assert (created["name"], created["description"]) == ("nudged", "a test model")
    assert created["format"] == "onnx-bundle" and created["private"] is False
    shown = http.get(f"/api/models/{created['model_id']}").json()
    assert "admin_key" not in shown and "usage_key" not in shown
    assert shown["sha256"] == sha


def test_upload_as_raw_body_with_query_fields(http: httpx.Client, new_model: bytes) -> None:
    response = http.post(
        "/api/models",
        content=new_model,
        params={"name": "raw", "private": "true"},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "raw" and body["private"] is True
    assert body["usage_key"].startswith("ffu_")


def test_upload_of_the_seed_tf_graph_runs_like_the_builtin(
    http: httpx.Client, shared: object, hopper: bytes
) -> None:
    from pathlib import Path

    pb = (Path(str(shared)) / "data" / "mtcnn.pb").read_bytes()
    response = http.post("/api/models", files={"file": ("mtcnn.pb", pb)})
    assert response.status_code == 201, response.text
    model_id = response.json()["model_id"]
    assert response.json()["format"].startswith("tensorflow")
    builtin = http.post("/api/run/mtcnn/detect", content=hopper).json()["faces"]
    uploaded = http.post(f"/api/run/{model_id}/detect", content=hopper).json()
    assert uploaded["model_id"] == model_id
    assert uploaded["faces"] == builtin


def test_list_shows_builtin_first_and_uploads(http: httpx.Client, new_model: bytes) -> None:
    created = upload(http, new_model)
    models = http.get("/api/models").json()
    assert models[0]["id"] == "mtcnn" and models[0]["builtin"] is True
    assert created["model_id"] in {m["id"] for m in models}


def test_usage_counts_calls_faces_errors_and_latency(
    http: httpx.Client, new_model: bytes, hopper: bytes
) -> None:
    model_id = upload(http, new_model)["model_id"]
    for _ in range(2):
        assert http.post(f"/api/run/{model_id}/detect", content=hopper).status_code == 200
    assert http.post(f"/api/run/{model_id}/detect", content=b"junk").status_code == 400
    usage = http.get(f"/api/models/{model_id}").json()["usage"]
    assert (usage["calls"], usage["faces"], usage["errors"]) == (2, 2, 1)
    assert usage["mean_latency_ms"] > 0 and usage["last_used_at"]


def test_replace_keeps_the_id_and_changes_the_weights(
    http: httpx.Client, make_model: Callable[[int], bytes], hopper: bytes
) -> None:
    first, second = make_model(101), make_model(102)
    created = upload(http, first)
    model_id, admin = created["model_id"], created["admin_key"]
    path = f"/api/models/{model_id}"
    assert_problem(http.put(path, files={"file": ("m.zip", second)}), 401)
    denied = http.put(path, files={"file": ("m.zip", second)}, headers={"X-API-Key": "ffa_x"})
    assert_problem(denied, 403)
    replaced = http.put(
        path, files={"file": ("m.zip", second)}, data={"name": "v2"},
        headers={"Authorization": f"Bearer {admin}"},
    )  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == model_id and replaced.json()["name"] == "v2"
    assert replaced.json()["sha256"] == _weights_sha(second) != created["sha256"]
    assert http.post(f"/api/run/{model_id}/detect", content=hopper).status_code == 200


def test_delete_needs_the_admin_key_and_removes_the_files(
    server: LiveServer, http: httpx.Client, new_model: bytes
) -> None:
    created = upload(http, new_model)
    model_id = created["model_id"]
    folder = server.settings.data_dir / "models" / created["sha256"]
    assert folder.is_dir()
    assert_problem(http.delete(f"/api/models/{model_id}"), 401)
    assert_problem(http.delete(f"/api/models/{model_id}", headers={"X-API-Key": "no"}), 403)
    deleted = http.delete(f"/api/models/{model_id}", headers={"X-API-Key": created["admin_key"]})
    assert deleted.status_code == 204
    assert not folder.exists()
    assert_problem(http.get(f"/api/models/{model_id}"), 404)
    assert_problem(http.post(f"/api/run/{model_id}/detect", content=b"x"), 404)


def test_private_model_runs_with_usage_or_admin_key_and_can_go_public(
    http: httpx.Client, new_model: bytes, blank_png: bytes
) -> None:
    created = upload(http, new_model, private=True)
    model_id, admin, usage = created["model_id"], created["admin_key"], created["usage_key"]
    run = f"/api/run/{model_id}/detect"
    for key in (usage, admin):
        assert http.post(run, content=blank_png, headers={"X-API-Key": key}).status_code == 200
    shown = http.get(f"/api/models/{model_id}", headers={"X-API-Key": usage})
    assert shown.json()["private"] is True
    # A new usage key replaces the old one.
    rotated = http.put(f"/api/models/{model_id}/usage_key", headers={"X-API-Key": admin})
    new_usage = rotated.json()["usage_key"]
    assert new_usage != usage
    assert_problem(http.post(run, content=blank_png, headers={"X-API-Key": usage}), 403)
    assert http.post(run, content=blank_png, headers={"X-API-Key": new_usage}).status_code == 200
    # The usage key may run but not administer.
    assert_problem(http.delete(f"/api/models/{model_id}/usage_key",
                               headers={"X-API-Key": new_usage}), 403)  # fmt: skip
    public = http.delete(f"/api/models/{model_id}/usage_key", headers={"X-API-Key": admin})
    assert public.status_code == 204
    assert http.post(run, content=blank_png).status_code == 200


def test_config_sets_run_defaults_that_requests_override(
    http: httpx.Client, new_model: bytes, solvay: bytes
) -> None:
    created = upload(http, new_model)
    model_id, admin = created["model_id"], created["admin_key"]
    path = f"/api/models/{model_id}/config"
    assert http.get(path).json() == {
        "min_size": None, "thresholds": None, "factor": None, "threshold": None,
        "nms_threshold": None, "input_size": None, "max_faces": None, "score_threshold": None,
    }  # fmt: skip
    assert_problem(http.put(path, json={"max_faces": 3}), 401)
    assert_problem(http.put(path, json={"max_faces": 0}, headers={"X-API-Key": admin}), 422)
    assert_problem(http.put(path, json={"bogus": 1}, headers={"X-API-Key": admin}), 422)
    saved = http.put(path, json={"max_faces": 3, "min_size": 24}, headers={"X-API-Key": admin})
    assert saved.status_code == 200 and saved.json()["max_faces"] == 3
    body = http.post(f"/api/run/{model_id}/detect", content=solvay).json()
    assert len(body["faces"]) == 3 and body["parameters"]["min_size"] == 24.0
    override = http.post(f"/api/run/{model_id}/detect", content=solvay, params={"max_faces": 5})
    assert len(override.json()["faces"]) == 5
    assert http.get(f"/api/models/{model_id}").json()["config"] == {"max_faces": 3, "min_size": 24}


def test_downloaded_bundle_reuploads_as_a_new_model_with_the_same_digest(
    http: httpx.Client, new_model: bytes, hopper: bytes
) -> None:
    created = upload(http, new_model, name="exported")
    response = http.get(f"/api/models/{created['model_id']}/bundle")
    assert response.headers["content-type"] == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert names == ["manifest.json", "onet.onnx", "pnet.onnx", "rnet.onnx"]
    again = upload(http, response.content)
    assert again["model_id"] != created["model_id"] and again["sha256"] == created["sha256"]
    assert again["name"] == "exported"
    first = http.post(f"/api/run/{created['model_id']}/detect", content=hopper).json()["faces"]
    second = http.post(f"/api/run/{again['model_id']}/detect", content=hopper).json()["faces"]
    assert first == second and len(first) == 1


def test_builtin_bundle_downloads(http: httpx.Client) -> None:
    response = http.get("/api/models/mtcnn/bundle")
    assert response.status_code == 200 and response.content[:2] == b"PK"
