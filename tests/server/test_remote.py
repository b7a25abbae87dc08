"""The seed's asynchronous half on a real server: ``SSVM_Fetch``, multipart ``fetch_*`` fields,
``SSVM_Callback`` and ephemeral storage, as the seed's own curl examples make them.

The image host and the callback receiver are small servers on 127.0.0.1, admitted by the
server's ``fetch_allow``; nothing is sent anywhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from loopback_hosts import Host, serve

from facefaas.registry.ephemeral import ephemeral_values

from .conftest import LiveServer, ServerFactory, assert_problem

pytestmark = pytest.mark.timeout(120)

LOOPBACK = ["127.0.0.1/32"]


@pytest.fixture(scope="module")
def remote_server(start_server: ServerFactory) -> LiveServer:
    return start_server(fetch_allow=LOOPBACK, fetch_read_timeout=2.0)


@pytest.fixture
def api(remote_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=remote_server.url, timeout=60.0) as client:
        yield client


@pytest.fixture
def images(hopper: bytes) -> Iterator[Host]:
    with serve(hopper) as host:
        yield host


@pytest.fixture
def receiver() -> Iterator[Host]:
    with serve() as host:
        yield host


def _callback(host: Host, path: str = "/hook", **extra: Any) -> str:
    # The seed's object: Node's https.request options; "protocol" switches to plain http.
    options = {"hostname": "127.0.0.1", "port": host.port, "path": path, "method": "POST",
               "protocol": "http:", "headers": {"X-Seed": "yes"}, **extra}  # fmt: skip
    return json.dumps(options)


def _without_timings(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timings_ms"}


# -- SSVM_Fetch and fetch_* fields --------------------------------------------------------------


def test_ssvm_fetch_header_on_the_seed_bytes_route(
    api: httpx.Client, images: Host, hopper: bytes
) -> None:
    # curl -X POST -H 'SSVM_Fetch: URL' .../api/run/{id}/infer/bytes
    fetched = api.post(
        "/api/run/mtcnn/infer/bytes", headers={"SSVM_Fetch": f"{images.url}/img.png"}
    )
    direct = api.post("/api/run/mtcnn/infer/bytes", content=hopper)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == direct.content
    assert fetched.headers["x-face-count"] == "1"


def test_ssvm_fetch_with_text_plain_and_no_body(api: httpx.Client, images: Host) -> None:
    # The seed's issue template: --header 'Content-Type: text/plain' --header 'SSVM_Fetch: ...'
    response = api.post("/api/run/mtcnn/detect", headers={
        "Content-Type": "text/plain", "SSVM_Fetch": f"{images.url}/img.png"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 1


def test_ssvm_fetch_detect_equals_the_upload(
    api: httpx.Client, images: Host, hopper: bytes
) -> None:
    url = f"{images.url}/redirect/2"
    fetched = api.post("/api/run/mtcnn/detect?min_size=24", headers={"SSVM-Fetch": url})
    direct = api.post("/api/run/mtcnn/detect?min_size=24", content=hopper)
    assert _without_timings(fetched.json()) == _without_timings(direct.json())


def test_multipart_fetch_field_on_the_seed_multipart_route(
    api: httpx.Client, images: Host, hopper: bytes
) -> None:
    # curl --form 'fetch_input_1=URL' .../api/multipart/run/{id}/infer/bytes
    response = api.post("/api/multipart/run/mtcnn/infer/bytes",
                        files={"fetch_input_1": (None, f"{images.url}/img.png")})  # fmt: skip
    direct = api.post("/api/run/mtcnn/infer/bytes", content=hopper)
    assert response.status_code == 200, response.text
    assert response.content == direct.content


def test_multipart_file_field_may_be_a_url_with_parameters(
    api: httpx.Client, images: Host, hopper: bytes
) -> None:
    form = {"file": (None, f"{images.url}/img.png"), "min_size": (None, "30")}
    response = api.post("/api/run/mtcnn/detect", files=form)
    direct = api.post("/api/run/mtcnn/detect?min_size=30", content=hopper)
    assert response.status_code == 200, response.text
    assert _without_timings(response.json()) == _without_timings(direct.json())


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://169.254.169.254/latest/meta-data/", "address"), ("http://10.0.0.1/x.jpg", "address"),
     ("http://2130706434/x.jpg", "address"), ("file:///etc/passwd", "scheme")],
    ids=["metadata", "private", "loopback-decimal", "scheme"],
)  # fmt: skip
def test_refused_fetch_is_a_422_problem(
    api: httpx.Client, url: str, reason: str, loopback_only: None
) -> None:
    body = assert_problem(api.post("/api/run/mtcnn/detect", headers={"SSVM_Fetch": url}), 422,
                          "fetch-refused")  # fmt: skip
    assert body["reason"] == reason


def test_fetched_non_image_is_refused(api: httpx.Client, images: Host) -> None:
    response = api.post("/api/run/mtcnn/detect", headers={"SSVM_Fetch": f"{images.url}/html"})
    assert assert_problem(response, 422, "fetch-refused")["reason"] == "not-an-image"


def test_failing_image_host_is_a_502_problem(api: httpx.Client, images: Host) -> None:
    response = api.post("/api/run/mtcnn/detect", headers={"SSVM_Fetch": f"{images.url}/status/500"})
    body = assert_problem(response, 502, "upstream-failed")
    assert body["upstream_status"] == 500


def test_fetch_over_the_upload_limit_is_413(api: httpx.Client, images: Host) -> None:
    response = api.post("/api/run/mtcnn/detect",
                        headers={"SSVM_Fetch": f"{images.url}/big?n=3000000"})  # fmt: skip
    assert_problem(response, 413, "too-large")


def test_fetch_and_a_body_together_are_refused(
    api: httpx.Client, images: Host, hopper: bytes
) -> None:
    headers = {"SSVM_Fetch": f"{images.url}/img.png"}
    assert_problem(api.post("/api/run/mtcnn/detect", headers=headers, content=hopper), 400)
    two: dict[str, Any] = {"file": ("a.jpg", hopper),
                           "fetch_input_2": (None, f"{images.url}/img.png")}  # fmt: skip
    assert_problem(api.post("/api/run/mtcnn/detect", files=two), 400)


# -- SSVM_Callback ------------------------------------------------------------------------------


def test_callback_header_delivers_the_synchronous_answer(
    api: httpx.Client, receiver: Host, hopper: bytes
) -> None:
    headers = {"SSVM_Callback": _callback(receiver, "/api/run/42/next")}
    response = api.post("/api/run/mtcnn/infer/bytes", content=hopper, headers=headers)
    direct = api.post("/api/run/mtcnn/infer/bytes", content=hopper)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["callback"] == {"url": f"{receiver.url}/api/run/42/next", "method": "POST",
                                  "status": 200}  # fmt: skip
    assert answer["media_type"] == "image/jpeg" and answer["face_count"] == 1
    delivered = receiver.requests[-1]
    assert (delivered.method, delivered.path) == ("POST", "/api/run/42/next")
    assert delivered.body == direct.content
    assert delivered.headers["content-type"] == "image/jpeg"
    assert delivered.headers["x-seed"] == "yes"


def test_callback_of_json_equals_the_synchronous_json(
    api: httpx.Client, receiver: Host, hopper: bytes
) -> None:
    response = api.post("/api/run/mtcnn/detect", content=hopper,
                        headers={"SSVM_Callback": _callback(receiver)})  # fmt: skip
    direct = api.post("/api/run/mtcnn/detect", content=hopper)
    assert response.status_code == 200, response.text
    sent = json.loads(receiver.requests[-1].body)
    assert _without_timings(sent) == _without_timings(direct.json())


def test_seed_multipart_with_fetch_and_callback(
    api: httpx.Client, images: Host, receiver: Host, hopper: bytes
) -> None:
    # curl --form 'fetch_input_1=URL' --form 'SSVM_Callback={...}' .../api/multipart/run/...
    form = {"fetch_input_1": (None, f"{images.url}/img.png"),
            "SSVM_Callback": (None, _callback(receiver, "/next"))}  # fmt: skip
    response = api.post("/api/multipart/run/mtcnn/infer/bytes", files=form)
    assert response.status_code == 200, response.text
    assert response.json()["callback"]["status"] == 200
    direct = api.post("/api/run/mtcnn/infer/bytes", content=hopper)
    assert receiver.requests[-1].body == direct.content


def test_refused_callback_costs_no_inference(
    api: httpx.Client, hopper: bytes, loopback_only: None
) -> None:
    target = json.dumps({"hostname": "169.254.169.254", "path": "/", "port": 80})
    before = api.get("/api/models/mtcnn").json()["usage"]["calls"]
    response = api.post("/api/run/mtcnn/detect", content=hopper,
                        headers={"SSVM_Callback": target})  # fmt: skip
    assert assert_problem(response, 422, "fetch-refused")["reason"] == "address"
    assert api.get("/api/models/mtcnn").json()["usage"]["calls"] == before


@pytest.mark.parametrize(
    "options",
    ['{"hostname": "127.0.0.1", "path": "no-slash"}', "not json", '["a"]',
     '{"hostname": "127.0.0.1", "method": "GET"}', '{"hostname": "a b"}',
     '{"hostname": "127.0.0.1", "headers": {"Host": "x"}}'],
    ids=["path", "not-json", "not-object", "method", "hostname", "host-header"],
)  # fmt: skip
def test_malformed_callback_is_a_422(api: httpx.Client, hopper: bytes, options: str) -> None:
    response = api.post("/api/run/mtcnn/detect", content=hopper,
                        headers={"SSVM_Callback": options})  # fmt: skip
    assert assert_problem(response, 422, "fetch-refused")["reason"] == "callback"


def test_callback_target_failing_is_a_502_with_its_status(
    api: httpx.Client, receiver: Host, hopper: bytes
) -> None:
    receiver.status = 503
    response = api.post("/api/run/mtcnn/detect", content=hopper,
                        headers={"SSVM_Callback": _callback(receiver)})  # fmt: skip
    assert assert_problem(response, 502, "upstream-failed")["upstream_status"] == 503


def test_callback_without_protocol_to_a_plain_http_receiver_says_https_was_assumed(
    api: httpx.Client, receiver: Host, hopper: bytes
) -> None:
    # The seed's rule: https unless port 80 or "protocol" says http. A plain-HTTP receiver on
    # another port then fails the TLS handshake; the message says why https was used.
    target = json.dumps({"hostname": "127.0.0.1", "port": receiver.port, "path": "/hook?t=s3cret"})
    response = api.post("/api/run/mtcnn/detect", content=hopper,
                        headers={"SSVM_Callback": target})  # fmt: skip
    body = assert_problem(response, 502, "upstream-failed")
    assert body["reason"] == "connect"
    detail = body["detail"]
    assert detail.startswith(f"https://127.0.0.1:{receiver.port}: TLS handshake failed ("), detail
    assert detail.endswith(
        '; the callback has no "protocol", so https was assumed: '
        'add "protocol": "http" for a plain-HTTP receiver'
    )
    assert "s3cret" not in detail
    assert receiver.requests == []


def test_callback_asking_for_https_gets_no_protocol_hint(
    api: httpx.Client, receiver: Host, hopper: bytes
) -> None:
    headers = {"SSVM_Callback": _callback(receiver, protocol="https:")}
    response = api.post("/api/run/mtcnn/detect", content=hopper, headers=headers)
    detail = assert_problem(response, 502, "upstream-failed")["detail"]
    assert detail.startswith(f"https://127.0.0.1:{receiver.port}: TLS handshake failed ("), detail
    assert "protocol" not in detail


@pytest.mark.parametrize(
    ("fetch", "detail", "reason"),
    [("http://0177.0.0.1:8766/x.jpg", "http://0177.0.0.1:8766: 0177.0.0.1 is 127.0.0.1 written "
      "in a form URLs do not take: write 127.0.0.1", "address"),
     ("http://10.0.0.1:8766/x.jpg", "http://10.0.0.1:8766: 10.0.0.1 is a private address (not "
      "admitted by the fetch allowlist)", "address"),
     ("not a url", "'not a url' is not an absolute http or https URL", "scheme")],
    ids=["octal-admitted-address", "private", "not-a-url"],
)  # fmt: skip
def test_refused_fetch_messages(
    api: httpx.Client, fetch: str, detail: str, reason: str, loopback_only: None
) -> None:
    body = assert_problem(api.post("/api/run/mtcnn/detect", headers={"SSVM_Fetch": fetch}), 422,
                          "fetch-refused")  # fmt: skip
    assert (body["detail"], body["reason"]) == (detail, reason)


def test_failing_image_host_message_names_its_port(api: httpx.Client, images: Host) -> None:
    response = api.post("/api/run/mtcnn/detect",
                        headers={"SSVM_Fetch": f"{images.url}/status/404?t=s3cret"})  # fmt: skip
    detail = assert_problem(response, 502, "upstream-failed")["detail"]
    assert detail == f"http://127.0.0.1:{images.port} answered 404 Not Found"


# -- ephemeral storage --------------------------------------------------------------------------


def test_seed_ephemeral_storage_sequence(api: httpx.Client) -> None:
    # The seed's tests: add {"asdf": 25}, read, update to 88888888, read, delete, read again.
    added = api.post("/api/ephemeral_storage", json={"asdf": 25})
    assert added.status_code == 201, added.text
    key = added.json()["key"]
    assert len(key) >= 32 and added.headers["location"] == f"/api/ephemeral_storage/{key}"
    assert api.get(f"/api/ephemeral_storage/{key}").json() == {"asdf": 25}
    assert api.put(f"/api/ephemeral_storage/{key}", json={"asdf": 88888888}).status_code == 200
    assert api.get(f"/api/ephemeral_storage/{key}").json() == {"asdf": 88888888}
    assert api.delete(f"/api/ephemeral_storage/{key}").status_code == 204
    gone = assert_problem(api.get(f"/api/ephemeral_storage/{key}"), 404, "value-not-found")
    assert "key not found" in gone["detail"].lower()


def test_value_comes_back_as_sent(api: httpx.Client) -> None:
    text = b'[1.50, "\xc3\xa9", {"nested": null}, 1e3]'
    key = api.post("/api/ephemeral_storage", content=text,
                   headers={"Content-Type": "application/json"}).json()["key"]  # fmt: skip
    answer = api.get(f"/api/ephemeral_storage/{key}")
    assert answer.content == text
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_key_is_404(api: httpx.Client, method: str) -> None:
    kwargs: dict[str, Any] = {"json": 1} if method == "put" else {}
    response = getattr(api, method)("/api/ephemeral_storage/nosuchkey", **kwargs)
    assert_problem(response, 404, "value-not-found")


def test_non_json_value_is_400(api: httpx.Client) -> None:
    assert_problem(api.post("/api/ephemeral_storage", content=b"{not json"), 400)


def _rows(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(ephemeral_values)).scalar())


def test_values_expire(start_server: ServerFactory) -> None:
    server = start_server(ephemeral_ttl=0.5, ephemeral_sweep_interval=0.2)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        key = client.post("/api/ephemeral_storage", json={"a": 1}).json()["key"]
        assert client.get(f"/api/ephemeral_storage/{key}").status_code == 200
        time.sleep(0.7)
        assert_problem(client.get(f"/api/ephemeral_storage/{key}"), 404)
        assert client.put(f"/api/ephemeral_storage/{key}", json=2).status_code == 404
        store = server.app.state.ephemeral_store
        deadline = time.monotonic() + 5
        while _rows(store.engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _rows(store.engine) == 0  # the periodic sweep removed the row itself


def test_size_and_count_bounds(start_server: ServerFactory) -> None:
    server = start_server(ephemeral_max_value_bytes=64, ephemeral_max_values=3)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        too_big = client.post("/api/ephemeral_storage", json={"x": "y" * 100})
        assert assert_problem(too_big, 413, "too-large")["limit"] == 64
        keys = [client.post("/api/ephemeral_storage", json=i).json()["key"] for i in range(3)]
        full = assert_problem(client.post("/api/ephemeral_storage", json=3), 507, "storage-full")
        assert (full["limit"], full["unit"]) == (3, "values")
        assert_problem(client.put(f"/api/ephemeral_storage/{keys[0]}", json="z" * 80), 413)
        assert client.delete(f"/api/ephemeral_storage/{keys[0]}").status_code == 204
        assert client.post("/api/ephemeral_storage", json=3).status_code == 201


def test_values_survive_a_restart(start_server: ServerFactory, tmp_path: Path) -> None:
    first = start_server(data_dir=tmp_path)
    with httpx.Client(base_url=first.url, timeout=30) as client:
        key = client.post("/api/ephemeral_storage", json={"kept": True}).json()["key"]
    first.stop()
    second = start_server(data_dir=tmp_path)
    with httpx.Client(base_url=second.url, timeout=30) as client:
        assert client.get(f"/api/ephemeral_storage/{key}").json() == {"kept": True}
