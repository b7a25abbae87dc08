"""Model identity: random ids, replacement that touches one model, idempotent creation.

One user's upload can never change, hide or block what another gets: the same weights uploaded
twice are two models, a replacement changes only its own model, and an ``Idempotency-Key`` makes
a retried upload find the model it created, even across a SIGKILL between commit and answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import LiveServer, assert_problem, upload
from .test_persistence import _free_port

pytestmark = pytest.mark.timeout(240)


def _post(http: httpx.Client, model: bytes, key: str | None = None, **data: str) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post("/api/models", files={"file": ("m.zip", model)}, data=data, headers=headers)


def _runs(http: httpx.Client, model_id: str, image: bytes) -> list[Any]:
    response = http.post(f"/api/run/{model_id}/detect", content=image)
    assert response.status_code == 200, response.text
    faces: list[Any] = response.json()["faces"]
    return faces


def test_the_same_weights_from_two_uploaders_are_two_models(
    http: httpx.Client, new_model: bytes, hopper: bytes
) -> None:
    mine, theirs = upload(http, new_model, name="mine"), upload(http, new_model, name="theirs")
    assert mine["model_id"] != theirs["model_id"] and mine["sha256"] == theirs["sha256"]
    assert mine["admin_key"] != theirs["admin_key"]
    gone = http.delete(f"/api/models/{mine['model_id']}", headers={"X-API-Key": mine["admin_key"]})
    assert gone.status_code == 204
    assert len(_runs(http, theirs["model_id"], hopper)) == 1  # shared files kept for theirs


def test_replacing_a_model_changes_no_other_and_blocks_no_later_upload(
    http: httpx.Client, make_model: Callable[[int], bytes], hopper: bytes
) -> None:
    original, other = make_model(9001), make_model(9002)
    mine, theirs = upload(http, original), upload(http, original)
    replaced = http.put(
        f"/api/models/{mine['model_id']}",
        files={"file": ("other.zip", other)},
        headers={"X-API-Key": mine["admin_key"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == mine["model_id"]
    assert replaced.json()["sha256"] != mine["sha256"]
    shown = http.get(f"/api/models/{theirs['model_id']}").json()
    assert shown["sha256"] == theirs["sha256"]  # theirs untouched
    assert len(_runs(http, theirs["model_id"], hopper)) == 1
    later = upload(http, original)  # the original weights are no one's to block
    assert later["sha256"] == theirs["sha256"] and later["model_id"] not in (
        mine["model_id"],
        theirs["model_id"],
    )


def test_a_retry_with_the_same_idempotency_key_gets_the_same_model_with_new_keys(
    server: LiveServer, http: httpx.Client, new_model: bytes
) -> None:
    key = str(uuid.uuid4())
    first = _post(http, new_model, key, name="once", private="true")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = _post(http, new_model, key, name="once", private="true")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    created, replayed = first.json(), again.json()
    assert replayed["model_id"] == created["model_id"] and replayed["name"] == "once"
    assert replayed["admin_key"] != created["admin_key"]
    config = f"/api/models/{created['model_id']}/config"
    old = http.put(config, json={"max_faces": 2}, headers={"X-API-Key": created["admin_key"]})
    assert_problem(old, 403)  # the keys of the lost answer no longer work
    new = http.put(config, json={"max_faces": 2}, headers={"X-API-Key": replayed["admin_key"]})
    assert new.status_code == 200
    run = f"/api/run/{created['model_id']}/detect"
    usage = http.post(run, content=b"", headers={"X-API-Key": replayed["usage_key"]})
    assert usage.status_code == 400  # authorised (the body is what is wrong)
    twins = [r.id for r in server.service.registry.list() if r.sha256 == created["sha256"]]
    assert twins == [created["model_id"]]  # the retry created nothing


def test_the_seed_upload_takes_an_idempotency_key_too(http: httpx.Client, new_model: bytes) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4()), "SSVM_Description": "seed"}
    first = http.post("/api/executables", content=new_model, headers=headers)
    again = http.post("/api/executables", content=new_model, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["wasm_id"] == again.json()["wasm_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["SSVM_Admin_Key"] != again.json()["SSVM_Admin_Key"]


@pytest.mark.parametrize("key", ["short", "x" * 256, "has space in it 1234"])
def test_an_idempotency_key_that_is_not_16_to_255_visible_characters_is_422(
    http: httpx.Client, new_model: bytes, key: str
) -> None:
    assert_problem(_post(http, new_model, key), 422, "invalid-parameter")


# -- a crash between commit and answer ---------------------------------------------------------

# The server, with Registry.create stalled after its commit when told to: the window in which a
# SIGKILL loses the answer of a model that exists.
_SERVER = textwrap.dedent(
    """
    import sys, time


    def create_then_stall(self, *args, **kwargs):
        created = committed(self, *args, **kwargs)
        print("COMMITTED", flush=True)
        time.sleep(600)
        return created


    if __name__ == "__main__":
        import uvicorn
        from facefaas.registry import Registry
        from facefaas.server import create_app
        from facefaas.settings import Settings

        data_dir, port = sys.argv[1], int(sys.argv[2])
        if sys.argv[3] == "stall":
            committed = Registry.create
            Registry.create = create_then_stall
        settings = Settings(data_dir=data_dir, port=port, rate_limit="", log_level="warning")
        uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    """
)


def _start(script: Path, data_dir: Path, stall: bool) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFAAS_")}
    command = [sys.executable, str(script), str(data_dir), str(port), "stall" if stall else "-"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def test_a_sigkill_between_commit_and_answer_strands_no_model(
    tmp_path: Path, new_model: bytes
) -> None:
    script, data_dir = tmp_path / "server.py", tmp_path / "data"
    script.write_text(_SERVER)
    key = str(uuid.uuid4())
    proc, url = _start(script, data_dir, stall=True)
    lost: list[BaseException] = []

    def post() -> None:
        try:
            with httpx.Client(base_url=url, timeout=120) as http:
                _post(http, new_model, key, name="durable")
        except httpx.TransportError as exc:
            lost.append(exc)

    sender = threading.Thread(target=post)
    try:
        sender.start()
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "COMMITTED"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sender.join(timeout=30)
        assert lost, "the answer should have been lost with the process"
    finally:
        if proc.poll() is None:
            proc.kill()

    proc, url = _start(script, data_dir, stall=False)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            uploaded = [m for m in http.get("/api/models").json() if not m["builtin"]]
            assert [m["name"] for m in uploaded] == ["durable"]  # committed before the kill
            retry = _post(http, new_model, key, name="durable")
            assert retry.status_code == 201, retry.text
            assert retry.headers["Idempotent-Replayed"] == "true"
            created = retry.json()
            assert created["model_id"] == uploaded[0]["id"]
            config = http.put(
                f"/api/models/{created['model_id']}/config",
                json={"max_faces": 1},
                headers={"X-API-Key": created["admin_key"]},
            )
            assert config.status_code == 200  # the retry's admin key holds the model
            twin = _post(http, new_model, name="durable")  # no key: a new model, not a 409
            assert twin.status_code == 201 and twin.json()["model_id"] != created["model_id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
