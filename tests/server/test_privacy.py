"""Privacy: private models' metadata only with their keys, paginated listings, /metrics without
private ids, security headers, no CORS by default, private files, no secret on a command line."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import LiveServer, ServerFactory, assert_problem, upload
from .served import start_serve, stop_serve

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def fresh(start_server: ServerFactory) -> LiveServer:
    """A server of this module's own: the listings here count every model on it."""
    return start_server()


@pytest.fixture(scope="module")
def models(fresh: LiveServer, make_model: Callable[[int], bytes]) -> dict[str, dict[str, Any]]:
    """One private and two public models on ``fresh``."""
    with httpx.Client(base_url=fresh.url, timeout=60) as http:
        return {
            "private": upload(http, make_model(9001), name="secret-name", private=True),
            "other": upload(http, make_model(9002), name="other-secret", private=True),
            "public": upload(http, make_model(9003), name="open-name"),
        }


@pytest.mark.parametrize("listing", ["/api/models", "/api/executables"])
def test_a_private_model_is_listed_only_to_holders_of_its_keys(
    fresh: LiveServer, models: dict[str, dict[str, Any]], listing: str
) -> None:
    private, public = models["private"], models["public"]
    id_key = "id" if listing == "/api/models" else "wasm_id"

    def listed(key: str | None) -> set[str]:
        headers = {"X-API-Key": key} if key else {}
        response = httpx.get(f"{fresh.url}{listing}", headers=headers, params={"limit": 200})
        assert response.status_code == 200
        return {item[id_key] for item in response.json()}

    anonymous = listed(None)
    assert public["id"] in anonymous and "mtcnn" in anonymous
    assert private["id"] not in anonymous and models["other"]["id"] not in anonymous
    assert private["id"] in listed(private["usage_key"])
    assert private["id"] in listed(private["admin_key"])
    with_other_key = listed(models["other"]["usage_key"])
    assert private["id"] not in with_other_key and models["other"]["id"] in with_other_key
    assert private["id"] not in listed("ffu_not-a-key-of-anything")
    anonymous_text = httpx.get(f"{fresh.url}{listing}").text
    assert "secret-name" not in anonymous_text and "other-secret" not in anonymous_text


@pytest.mark.parametrize("show", ["/api/models/{}", "/api/executables/{}"])
def test_showing_a_private_model_needs_one_of_its_keys(
    fresh: LiveServer, models: dict[str, dict[str, Any]], show: str
) -> None:
    private = models["private"]
    url = fresh.url + show.format(private["id"])
    assert "secret-name" not in assert_problem(httpx.get(url), 401, "unauthorized")["detail"]
    wrong = httpx.get(url, headers={"X-API-Key": models["other"]["usage_key"]})
    assert_problem(wrong, 403, "forbidden")
    for key in (private["usage_key"], private["admin_key"]):
        shown = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        assert shown.status_code == 200 and "secret-name" in shown.text
    public = httpx.get(fresh.url + show.format(models["public"]["id"]))
    assert public.status_code == 200 and "open-name" in public.text


def test_metrics_label_private_models_private(
    fresh: LiveServer, models: dict[str, dict[str, Any]], hopper: bytes
) -> None:
    private, public = models["private"], models["public"]
    for model, key in ((private, private["usage_key"]), (public, None)):
        headers = {"X-API-Key": key} if key else {}
        run = httpx.post(
            f"{fresh.url}/api/run/{model['id']}/detect", content=hopper, headers=headers, timeout=60
        )
        assert run.status_code == 200, run.text
    metrics = httpx.get(f"{fresh.url}/metrics").text
    assert private["id"] not in metrics and models["other"]["id"] not in metrics
    assert 'model="private"' in metrics
    assert f'model="{public["id"]}"' in metrics


def test_listings_come_in_pages_with_a_next_link(
    fresh: LiveServer, models: dict[str, dict[str, Any]]
) -> None:
    with httpx.Client(base_url=fresh.url) as http:
        everything = http.get("/api/models").json()
        assert len(everything) >= 2  # the built-in model(s) and the public one
        seen: list[str] = []
        url: str | None = "/api/models?limit=1"
        while url is not None:
            page = http.get(url)
            assert page.status_code == 200 and len(page.json()) == 1
            seen += [m["id"] for m in page.json()]
            url = page.links.get("next", {}).get("url")
        assert seen == [m["id"] for m in everything]
        last = http.get(f"/api/executables?limit={len(everything)}")
        assert "link" not in last.headers and len(last.json()) == len(everything)
        assert_problem(http.get("/api/models?limit=0"), 422)
        assert_problem(http.get("/api/models?limit=100000"), 422)
        assert_problem(http.get("/api/models?cursor=abc"), 422)


def test_the_client_reads_every_page(fresh: LiveServer, models: dict[str, dict[str, Any]]) -> None:
    from facefaas.client import Client

    with Client(fresh.url) as client:
        ids = [m["id"] for m in client.models(page_size=1)]
        mine = [m["id"] for m in client.models(key=models["private"]["usage_key"], page_size=1)]
        assert ids == [m["id"] for m in client.models()]
    assert models["public"]["id"] in ids and models["private"]["id"] not in ids
    assert models["private"]["id"] in mine and len(mine) == len(ids) + 1


@pytest.mark.parametrize("path", ["/", "/docs", "/api/models", "/api/no-such-route", "/healthz"])
def test_every_response_carries_the_security_headers(http: httpx.Client, path: str) -> None:
    from facefaas.server.security_headers import SECURITY_HEADERS

    response = http.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy


def test_no_cross_origin_access_unless_origins_are_configured(http: httpx.Client) -> None:
    preflight = http.options(
        "/api/run/mtcnn/detect",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = http.get("/api/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def _modes(root: Path) -> dict[str, int]:
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        modes[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return modes


def test_registry_files_are_private_after_an_upload(
    start_server: ServerFactory, tmp_path: Path, new_model: bytes
) -> None:
    data_dir = tmp_path / "data"  # made by the server
    server = start_server(data_dir=data_dir)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        upload(http, new_model)
    modes = _modes(data_dir)
    assert {"registry.sqlite3", "models"} <= set(modes)
    assert any(name.startswith("models/") and name.endswith(".onnx") for name in modes)
    for name, mode in modes.items():
        if (data_dir / name).is_dir():
            assert mode == 0o700, f"{name}: {mode:o}"
        elif name.startswith(("registry.sqlite3", "models")):
            assert mode == 0o600, f"{name}: {mode:o}"


def test_the_upload_token_is_never_on_a_command_line(tmp_path: Path) -> None:
    token = "t0ken-from-a-file-" + os.urandom(8).hex()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    served = start_serve(
        tmp_path / "data",
        {"FACEFAAS_INFERENCE_THREADS": "1"},
        "--workers", "2", "--upload-token-file", str(token_file),
    )  # fmt: skip
    try:
        processes = _tree(served.process.pid)
        assert len(processes) >= 3, processes  # the supervisor and two workers
        for pid in processes:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert token.encode() not in command, command
        info = httpx.get(f"{served.url}/api/info").json()
        assert info["upload_token_required"] is True
        refused = httpx.post(f"{served.url}/api/models", content=b"x")
        assert_problem(refused, 401, "unauthorized")
        accepted = httpx.post(
            f"{served.url}/api/models", content=b"not a model", headers={"X-API-Key": token}
        )
        assert accepted.status_code not in (401, 403), accepted.text  # past the token check
    finally:
        stop_serve(served)


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            todo += [int(p) for p in children.read_text().split()]
    return found
