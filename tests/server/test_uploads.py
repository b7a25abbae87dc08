"""Governed uploads: who may upload, quotas per uploader, the storage cap, bounded texts."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from facefaas.server.uploads import bound_to_loopback

from .conftest import ServerFactory, assert_problem, upload

pytestmark = pytest.mark.timeout(180)

TOKEN = "upload-token-for-tests"


def _post(url: str, model: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/api/models", files={"file": ("m.zip", model)}, headers=headers)


def _bundle_bytes(model_zip: bytes, tmp_path: Path) -> int:
    """What the registry stores for ``model_zip``: its bundle folder's bytes."""
    from facefaas.models.bundle import read_bundle, write_bundle

    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(model_zip)).extractall(folder)
    bundle = read_bundle(folder)
    written = write_bundle(tmp_path / "bundle", bundle.weights(), bundle.manifest)
    return sum(f.stat().st_size for f in written.iterdir())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.7", False), ("example.org", False)],
)  # fmt: skip
def test_which_bind_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert bound_to_loopback(host) is loopback


def test_a_server_on_a_public_address_without_a_token_refuses_uploads(
    start_server: ServerFactory, new_model: bytes
) -> None:
    server = start_server(host="0.0.0.0")
    detail = assert_problem(_post(server.url, new_model), 403, "forbidden")["detail"]
    assert "upload token" in detail and "open_uploads" in detail


def test_a_token_server_needs_the_token_and_open_uploads_opens_it(
    start_server: ServerFactory, new_model: bytes, make_model: Callable[[int], bytes]
) -> None:
    closed = start_server(host="0.0.0.0", upload_token=TOKEN)
    assert_problem(_post(closed.url, new_model), 401, "unauthorized")
    assert_problem(_post(closed.url, new_model, **{"X-API-Key": "not-it"}), 403)
    assert _post(closed.url, new_model, **{"X-API-Key": TOKEN}).status_code == 201
    opened = start_server(host="0.0.0.0", open_uploads=True)
    assert _post(opened.url, make_model(7001)).status_code == 201


def test_an_uploader_keeps_at_most_its_quota_of_models(
    start_server: ServerFactory, make_model: Callable[[int], bytes]
) -> None:
    server = start_server(upload_quota_models=2)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        first = upload(http, make_model(7101))
        upload(http, make_model(7102))
        over = http.post("/api/models", files={"file": ("m.zip", make_model(7103))})
        problem = assert_problem(over, 403, "quota-exceeded")
        assert (problem["limit"], problem["unit"]) == (2, "models")
        admin = {"X-API-Key": first["admin_key"]}
        assert http.delete(f"/api/models/{first['model_id']}", headers=admin).status_code == 204
        upload(http, make_model(7103))  # room again


def test_an_uploader_keeps_at_most_its_quota_of_bytes_and_a_replacement_counts_once(
    start_server: ServerFactory, make_model: Callable[[int], bytes], tmp_path: Path
) -> None:
    size = _bundle_bytes(make_model(7201), tmp_path)
    server = start_server(upload_quota_bytes=size + size // 2)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        first = upload(http, make_model(7201))
        over = http.post("/api/models", files={"file": ("m.zip", make_model(7202))})
        problem = assert_problem(over, 403, "quota-exceeded")
        assert (problem["limit"], problem["unit"]) == (size + size // 2, "bytes")
        replaced = http.put(
            f"/api/models/{first['model_id']}",
            files={"file": ("m.zip", make_model(7202))},
            headers={"X-API-Key": first["admin_key"]},
        )
        assert replaced.status_code == 200, replaced.text  # its old size is given back


def test_the_storage_cap_of_all_uploads_is_507_whoever_uploads(
    start_server: ServerFactory, make_model: Callable[[int], bytes], tmp_path: Path
) -> None:
    size = _bundle_bytes(make_model(7301), tmp_path)
    server = start_server(upload_token=TOKEN, open_uploads=True, storage_bytes=size + size // 2)
    assert _post(server.url, make_model(7301), **{"X-API-Key": TOKEN}).status_code == 201
    full = _post(server.url, make_model(7302))  # another uploader (its address)
    problem = assert_problem(full, 507, "storage-full")
    assert (problem["limit"], problem["unit"]) == (size + size // 2, "bytes")
    assert httpx.get(f"{server.url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("where", "field", "length"),
    [("form", "name", 201), ("form", "description", 10_001), ("query", "name", 201),
     ("query", "description", 10_001), ("form", "format", 65)],
)  # fmt: skip
def test_upload_fields_over_their_limit_are_422(
    http: httpx.Client, new_model: bytes, where: str, field: str, length: int
) -> None:
    value = "x" * length
    files = {"file": ("m.zip", new_model)}
    if where == "form":
        response = http.post("/api/models", files=files, data={field: value})
    else:
        response = http.post("/api/models", files=files, params={field: value})
    assert_problem(response, 422, "invalid-parameter")


def test_the_seed_description_header_over_its_limit_is_422(
    http: httpx.Client, new_model: bytes
) -> None:
    headers = {"SSVM_Description": "d" * 10_001}
    assert_problem(http.post("/api/executables", content=new_model, headers=headers), 422)
    headers = {"SSVM_Description": "d" * 10_000}
    assert http.post("/api/executables", content=new_model, headers=headers).status_code == 200


def _with_manifest(model_zip: bytes, **changes: object) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(model_zip))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "manifest.json":
                data = json.dumps({**json.loads(data), **changes}).encode()
            target.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "changes",
    [{"name": "n" * 201}, {"description": "d" * 10_001}, {"license": "l" * 10_001},
     {"source_format": "s" * 65}, {"extra": {"notes": "e" * 10_001}}],
    ids=["name", "description", "license", "source_format", "extra"],
)  # fmt: skip
def test_texts_inside_an_uploaded_manifest_are_bounded_as_the_fields(
    http: httpx.Client, make_model: Callable[[int], bytes], changes: dict[str, object]
) -> None:
    model = _with_manifest(make_model(7401), **changes)
    response = http.post("/api/models", files={"file": ("m.zip", model)})
    detail = assert_problem(response, 422)["detail"]
    assert "manifest.json" in detail and next(iter(changes)) in detail


def test_a_manifest_within_the_limits_is_kept_as_written(
    http: httpx.Client, make_model: Callable[[int], bytes]
) -> None:
    model = _with_manifest(make_model(7402), name="n" * 200, description="d" * 10_000)
    created = upload(http, model)
    assert (created["name"], created["description"]) == ("n" * 200, "d" * 10_000)
