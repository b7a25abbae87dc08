"""Jobs over real HTTP: a loopback image host serves WIDER images (``../shared``) and generated
ones, a loopback receiver takes the webhooks, and every connection stays on 127.0.0.1."""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from loopback_hosts import serve as receiver
from PIL import Image

from facefaas.faces import Faces
from facefaas.jobs.webhooks import verify

from .conftest import LiveServer, ServerFactory, encode

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024
JOB_SETTINGS: dict[str, Any] = {
    "fetch_allow": ["127.0.0.1"],
    "max_pixels": 50_000_000,
    "max_body_bytes": 8 * MiB,
    "job_poll_interval": 0.05,
    "job_sweep_interval": 0.2,
    "inference_threads": 2,
}
N_WIDER = 24


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def images(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``N_WIDER`` WIDER validation images and two generated ones, by file name."""
    wider = sorted((shared / "eval" / "wider-val" / "images").rglob("*.jpg"))[:N_WIDER]
    found = {path.name: path.read_bytes() for path in wider}
    rng = np.random.default_rng(7)
    found["blank.png"] = encode(Image.new("RGB", (96, 64), (128, 128, 128)))
    noise = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    found["noise.jpg"] = encode(Image.fromarray(noise), "JPEG")
    return found


@pytest.fixture(scope="module")
def image_host(images: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static file server on 127.0.0.1 holding ``images``; its base URL."""
    folder = tmp_path_factory.mktemp("image-host")
    for name, data in images.items():
        (folder / name).write_bytes(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def jobs_server(start_server: ServerFactory) -> LiveServer:
    return start_server(**JOB_SETTINGS)


def submit(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/jobs", json=body, timeout=30)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/jobs/{created['job_id']}"
    return created


def wait_ended(url: str, job: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}{job['status_url']}", headers=_auth(job), timeout=30)
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job['job_id']} did not end in {timeout} s")


def wait_done(url: str, job: dict[str, Any], at_least: int, timeout: float = 120) -> None:
    """Wait until at least ``at_least`` of the job's images are done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}{job['status_url']}", headers=_auth(job), timeout=30).json()
        if status["counts"]["done"] >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"job {job['job_id']}: {at_least} images not done in {timeout} s")


def results(url: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}{job['results_url']}", headers=_auth(job), timeout=180)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in response.text.splitlines()]


def _auth(job: dict[str, Any]) -> dict[str, str]:
    return {"X-Job-Token": job["token"]}


def test_a_job_of_wider_images_equals_the_library_and_its_webhook_verifies(
    jobs_server: LiveServer, image_host: str, images: dict[str, bytes], loopback_only: None
) -> None:
    from facefaas.detector import Detector

    names = sorted(images)
    inputs = [f"{image_host}/{name}" for name in names]
    inputs += [f"{image_host}/missing.jpg", "http://10.0.0.1/private.jpg"]
    with receiver() as hook:
        job = submit(
            jobs_server.url,
            {"model": "mtcnn", "function": "detect", "inputs": inputs,
             "webhook": f"{hook.url}/hook"},
        )  # fmt: skip
        assert job["webhook_secret"].startswith("whsec_")
        lines = results(jobs_server.url, job)  # streamed in input order as items end
        status = wait_ended(jobs_server.url, job)
        deadline = time.monotonic() + 30
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.requests, "the webhook did not arrive"
        delivery = hook.requests[0]

    assert [line["index"] for line in lines] == list(range(len(inputs)))
    assert [line["source"] for line in lines] == inputs
    with Detector() as detector:
        for name, line in zip(names, lines, strict=False):
            assert line["status"] == "done", line
            expected = detector(images[name])
            got = Faces.from_dict(line["result"])
            assert len(got) == len(expected), name
            np.testing.assert_allclose(got.boxes, expected.boxes, atol=0.01)
            np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4)
    missing, refused = lines[-2:]
    assert missing["status"] == "failed"
    assert missing["error"]["code"] == "upstream-failed"
    assert missing["error"]["upstream_status"] == 404
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "fetch-refused"
    assert status["state"] == "done"
    assert status["counts"] == {
        "total": len(inputs), "done": len(names), "failed": 2, "cancelled": 0, "pending": 0
    }  # fmt: skip
    assert status["progress"] == 1.0
    assert [e["index"] for e in status["errors"]] == [len(names), len(names) + 1]

    assert delivery.method == "POST" and delivery.path == "/hook"
    assert verify(job["webhook_secret"], delivery.headers, delivery.body)
    assert not verify("whsec_" + "A" * 32, delivery.headers, delivery.body)
    assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 120
    event = json.loads(delivery.body)
    assert event["type"] == "job.completed"
    assert event["data"]["job_id"] == job["job_id"]
    assert event["data"]["counts"]["done"] == len(names)


def test_uploads_and_a_zip_make_jobs_of_pictures(
    jobs_server: LiveServer, images: dict[str, bytes]
) -> None:
    import zipfile

    names = sorted(images)[:3]
    files = [("file", (name, images[name])) for name in names]
    response = httpx.post(
        f"{jobs_server.url}/api/jobs", files=files,
        data={"function": "blur", "params": json.dumps({"format": "png"})}, timeout=30,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job = response.json()
    assert wait_ended(jobs_server.url, job)["counts"]["done"] == 3
    lines = results(jobs_server.url, job)
    assert [line["source"] for line in lines] == names
    first = httpx.get(f"{jobs_server.url}{lines[0]['result']['url']}", headers=_auth(job))
    assert first.headers["content-type"] == "image/png"
    assert (
        Image.open(io.BytesIO(first.content)).size == Image.open(io.BytesIO(images[names[0]])).size
    )
    archive = httpx.get(
        f"{jobs_server.url}{job['results_url']}?format=zip", headers=_auth(job), timeout=30
    )
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert sorted(zipped.namelist()) == ["0.png", "1.png", "2.png", "results.jsonl"]

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in names:
            zipped.writestr(f"photos/{name}", images[name])
        zipped.writestr("photos/readme.txt", b"not an image")
    response = httpx.post(
        f"{jobs_server.url}/api/jobs", content=buffer.getvalue(),
        headers={"Content-Type": "application/zip"}, timeout=30,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["total"] == 3
    assert job["skipped"] == {"count": 1, "files": ["photos/readme.txt"]}  # said, not dropped
    assert wait_ended(jobs_server.url, job)["counts"]["done"] == 3

    only_text = io.BytesIO()
    with zipfile.ZipFile(only_text, "w") as zipped:
        zipped.writestr("README.md", b"# photos")
        zipped.writestr(".DS_Store", b"\0")
    refused = httpx.post(
        f"{jobs_server.url}/api/jobs", content=only_text.getvalue(),
        headers={"Content-Type": "application/zip"}, timeout=30,
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["detail"] == "the zip holds no images, only 1 other file (README.md)"


def test_urls_files_and_zips_keep_their_input_order(
    jobs_server: LiveServer, image_host: str, images: dict[str, bytes]
) -> None:
    import zipfile

    from facefaas import Client

    first, second, third, fourth = sorted(name for name in images if name.endswith(".jpg"))[:4]
    with Client(jobs_server.url) as client:  # a URL, an upload, a URL: in that order
        job = client.submit([f"{image_host}/{first}", images[second], f"{image_host}/{third}"])
        job.wait(timeout=120)
        lines = job.results()
    assert [line["source"] for line in lines] == [f"{image_host}/{first}", "image",
                                                  f"{image_host}/{third}"]  # fmt: skip
    assert [line["status"] for line in lines] == ["done"] * 3

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("y/img.jpg", images[third])  # one name in two folders
        zipped.writestr("x/img.jpg", images[second])
    parts = [  # raw multipart: URL fields and files interleaved, URL-only fields too
        ("file", (None, f"{image_host}/{first}")),  # the seed's way: a URL in place of a file
        ("file", (fourth, images[fourth])),
        ("file", ("photos.zip", buffer.getvalue())),
        ("inputs", (None, f"{image_host}/{second}\n{image_host}/{third}")),
    ]
    response = httpx.post(f"{jobs_server.url}/api/jobs", files=parts, timeout=30)
    assert response.status_code == 202, response.text
    job = response.json()
    assert wait_ended(jobs_server.url, job)["counts"]["done"] == 6
    sources = [line["source"] for line in results(jobs_server.url, job)]
    assert sources == [
        f"{image_host}/{first}", fourth, "photos.zip/x/img.jpg", "photos.zip/y/img.jpg",
        f"{image_host}/{second}", f"{image_host}/{third}",
    ]  # fmt: skip

    urls_only = httpx.post(
        f"{jobs_server.url}/api/jobs",
        files=[("inputs", (None, json.dumps([f"{image_host}/{first}"])))],
        data={"function": "detect"}, timeout=30,
    )  # fmt: skip
    assert urls_only.status_code == 202, urls_only.text
    assert wait_ended(jobs_server.url, urls_only.json())["counts"]["done"] == 1


def test_a_job_needs_its_token(jobs_server: LiveServer, image_host: str) -> None:
    job = submit(jobs_server.url, {"inputs": [f"{image_host}/blank.png"]})
    url = f"{jobs_server.url}{job['status_url']}"
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{url}/results").status_code == 401
    assert httpx.delete(url).status_code == 401
    wrong = {"X-Job-Token": "not-the-token"}
    assert httpx.get(url, headers=wrong).status_code == 404
    assert httpx.get(f"{url}/results", headers=wrong).status_code == 404
    assert httpx.delete(url, headers=wrong).status_code == 404
    other = f"{jobs_server.url}/api/jobs/nosuchjob"
    assert httpx.get(other, headers=_auth(job)).status_code == 404
    bearer = {"Authorization": f"Bearer {job['token']}"}
    assert httpx.get(url, headers=bearer).status_code == 200


def test_bad_submissions_are_refused_before_anything_is_stored(
    jobs_server: LiveServer, image_host: str, loopback_only: None
) -> None:
    url = f"{jobs_server.url}/api/jobs"
    good = [f"{image_host}/blank.png"]
    cases: list[tuple[dict[str, Any], int]] = [
        ({"inputs": []}, 400),
        ({"inputs": good, "function": "nosuch"}, 422),
        ({"inputs": good, "params": {"min_size": 1}}, 422),
        ({"inputs": good, "model": "nosuchmodel"}, 404),
        ({"inputs": good, "webhook": "http://169.254.169.254/latest"}, 422),
        ({"inputs": good, "lifetime": -1}, 422),
    ]
    for body, expected in cases:
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == expected, (body, response.text)


def test_cancel_ends_a_job_and_its_queued_items(
    start_server: ServerFactory, image_host: str
) -> None:
    idle = start_server(**JOB_SETTINGS, job_worker=False)  # nothing runs: all stay queued
    with receiver() as hook:
        job = submit(
            idle.url,
            {"inputs": [f"{image_host}/blank.png"] * 5, "webhook": f"{hook.url}/hook"},
        )
        cancelled = httpx.delete(f"{idle.url}{job['status_url']}", headers=_auth(job))
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert body["state"] == "cancelled"
        assert body["counts"]["cancelled"] == 5 and body["counts"]["pending"] == 0
        lines = results(idle.url, job)
        assert [line["status"] for line in lines] == ["cancelled"] * 5
    # Cancelling again changes nothing.
    again = httpx.delete(f"{idle.url}{job['status_url']}", headers=_auth(job))
    assert again.json()["state"] == "cancelled"


def test_a_job_cancelled_while_images_run_ends_when_they_have(
    jobs_server: LiveServer, image_host: str, images: dict[str, bytes]
) -> None:
    wider = [name for name in sorted(images) if name.endswith(".jpg")]
    with receiver() as hook:
        job = submit(jobs_server.url, {"inputs": [f"{image_host}/{name}" for name in wider],
                                       "webhook": f"{hook.url}/hook"})  # fmt: skip
        wait_done(jobs_server.url, job, 1)
        cancelled = httpx.delete(f"{jobs_server.url}{job['status_url']}", headers=_auth(job))
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert body["counts"]["cancelled"] > 0
        # Images the worker had claimed still run: the job has not ended, so no zip yet.
        assert body["state"] == "running", body
        zipped = httpx.get(f"{jobs_server.url}{job['results_url']}?format=zip",
                           headers=_auth(job))  # fmt: skip
        assert zipped.status_code == 409
        ended = wait_ended(jobs_server.url, job)
        deadline = time.monotonic() + 30
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a second event would come now
        deliveries = list(hook.requests)
    assert ended["state"] == "cancelled" and ended["counts"]["pending"] == 0
    counts = ended["counts"]
    assert counts["done"] + counts["cancelled"] == len(wider) and counts["done"] >= 1
    # Of the images claimed at the cancel, only those already running (2 threads) finished:
    # the ones fetched ahead were cancelled too.
    assert counts["done"] <= body["counts"]["done"] + 2, (body["counts"], counts)
    lines = results(jobs_server.url, job)
    assert {line["status"] for line in lines} == {"done", "cancelled"}
    assert len(deliveries) == 1  # one event, with the final counts
    event = json.loads(deliveries[0].body)
    assert event["type"] == "job.cancelled" and event["data"]["counts"] == counts


def test_results_expire_with_their_lifetime(jobs_server: LiveServer, image_host: str) -> None:
    job = submit(jobs_server.url, {"inputs": [f"{image_host}/blank.png"], "lifetime": 0.5})
    assert wait_ended(jobs_server.url, job)["state"] == "done"
    folder = jobs_server.settings.data_dir / "jobs" / job["job_id"]
    deadline = time.monotonic() + 20
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()
    response = httpx.get(f"{jobs_server.url}{job['status_url']}", headers=_auth(job))
    assert response.status_code == 404


def test_two_services_on_one_database_share_the_queue(
    start_server: ServerFactory, image_host: str, tmp_path: Path, images: dict[str, bytes]
) -> None:
    import sqlalchemy as sa

    from facefaas.jobs.tables import job_items

    data_dir = tmp_path / "shared-data"
    first = start_server(**JOB_SETTINGS, data_dir=data_dir)
    second = start_server(**JOB_SETTINGS, data_dir=data_dir)
    names = sorted(images)
    job = submit(first.url, {"inputs": [f"{image_host}/{name}" for name in names]})
    assert wait_ended(second.url, job)["counts"]["done"] == len(names)
    store = first.service.jobs.store
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(job_items.c.idx, job_items.c.claimed_by, job_items.c.attempts).where(
                job_items.c.job_id == job["job_id"]
            )
        ).all()
    assert sorted(row.idx for row in rows) == list(range(len(names)))
    assert all(row.attempts == 1 for row in rows)  # no item claimed twice
    workers = {row.claimed_by for row in rows}
    assert workers == {first.service.jobs.worker_id, second.service.jobs.worker_id}


def test_synchronous_calls_keep_a_free_thread_while_a_job_runs(
    start_server: ServerFactory, image_host: str, images: dict[str, bytes], hopper: bytes
) -> None:
    server = start_server(**JOB_SETTINGS)
    assert server.service.jobs.gate.reserved_limit == 1  # inference_threads 2: one stays free
    url = f"{server.url}/api/run/mtcnn/detect"

    def timed() -> float:
        start = time.perf_counter()
        assert httpx.post(url, content=hopper, timeout=60).status_code == 200
        return time.perf_counter() - start

    baseline = sorted(timed() for _ in range(5))[2]
    wider = [name for name in sorted(images) if name.endswith(".jpg")]
    job = submit(server.url, {"inputs": [f"{image_host}/{name}" for name in wider] * 2})
    busy: list[float] = []
    peak = 0
    while len(busy) < 7:
        busy.append(timed())
        peak = max(peak, server.service.pool.running)
    status = httpx.get(f"{server.url}{job['status_url']}", headers=_auth(job)).json()
    assert status["counts"]["pending"] > 0, "the job ended before the synchronous calls"
    p50 = sorted(busy)[3]
    assert p50 < max(1.5, 10 * baseline), (baseline, busy)
    httpx.delete(f"{server.url}{job['status_url']}", headers=_auth(job))


def test_a_job_borrows_the_free_thread_only_while_no_synchronous_call_comes(
    start_server: ServerFactory, image_host: str, images: dict[str, bytes], hopper: bytes
) -> None:
    server = start_server(**JOB_SETTINGS, job_borrow_after=0.3)
    gate = server.service.jobs.gate
    wider = [name for name in sorted(images) if name.endswith(".jpg")]
    job = submit(server.url, {"inputs": [f"{image_host}/{name}" for name in wider] * 3})
    seen: list[int] = []
    deadline = time.monotonic() + 20
    while 2 not in seen and time.monotonic() < deadline:  # no synchronous call yet: borrow
        seen.append(gate.running)
        time.sleep(0.005)
    assert max(seen) == 2, "the job never used the thread kept for synchronous calls"

    # While synchronous calls keep coming, a job image starts only if it leaves a thread free.
    admitted: list[tuple[int, int]] = []  # (job images running, limit) as each one starts
    enter = type(gate).__aenter__

    async def recording_enter(self: Any) -> None:
        await enter(self)
        admitted.append((self.running, self.limit()))

    url = f"{server.url}/api/run/mtcnn/detect"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(gate), "__aenter__", recording_enter)
        for _ in range(6):
            assert httpx.post(url, content=hopper, timeout=60).status_code == 200
    during = [running for running, limit in admitted if limit == 1]
    assert during, "no job image started while the synchronous calls were made"
    assert max(during) == 1, admitted
    assert wait_ended(server.url, job)["counts"]["done"] == len(wider) * 3


# -- SIGKILL and restart -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(data_dir: Path, lease_seconds: float = 2) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFAAS_")}
    env.update(
        FACEFAAS_FETCH_ALLOW="127.0.0.1", FACEFAAS_JOB_LEASE_SECONDS=str(lease_seconds),
        FACEFAAS_JOB_POLL_INTERVAL="0.1", FACEFAAS_INFERENCE_THREADS="2",
        FACEFAAS_RATE_LIMIT="", FACEFAAS_LOG_LEVEL="warning",
    )  # fmt: skip
    command = [sys.executable, "-m", "facefaas", "serve", "--port", str(port),
               "--data-dir", str(data_dir)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"facefaas serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("facefaas serve was not ready")


def test_sigkill_in_the_middle_of_a_job_then_restart_completes_it_once(
    image_host: str, images: dict[str, bytes], tmp_path: Path
) -> None:
    names = [name for name in sorted(images) if name.endswith(".jpg")]
    inputs = [f"{image_host}/{name}" for name in names]
    data_dir = tmp_path / "data"
    lease = 120  # the restarted worker must not wait for the killed one's leases to run out
    with receiver() as hook:
        proc, url = _serve(data_dir, lease)
        try:
            job = submit(url, {"inputs": inputs, "webhook": f"{hook.url}/hook"})
            wait_done(url, job, 3)
            status = httpx.get(f"{url}{job['status_url']}", headers=_auth(job)).json()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert status["state"] == "running" and status["counts"]["pending"] > 0
        done_before = status["counts"]["done"]

        restarted = time.monotonic()
        proc, url = _serve(data_dir, lease)
        try:
            final = wait_ended(url, job)
            finished_in = time.monotonic() - restarted
            lines = results(url, job)
            deadline = time.monotonic() + 30
            while not hook.requests and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert final["state"] == "done"
    assert finished_in < lease / 2, "the killed worker's items waited for their leases"
    assert final["counts"]["done"] == len(names) >= done_before
    assert [line["index"] for line in lines] == list(range(len(names)))
    assert all(line["status"] == "done" for line in lines)
    assert hook.requests, "the webhook was not delivered after the restart"
    assert len({request.headers["webhook-id"] for request in hook.requests}) == 1
    assert all(verify(job["webhook_secret"], r.headers, r.body) for r in hook.requests)
    results_dir = data_dir / "jobs" / job["job_id"] / "results"
    assert sorted(p.name for p in results_dir.iterdir()) == sorted(
        f"{i}.json" for i in range(len(names))
    )


# -- the client and the CLI --------------------------------------------------------------------


def test_client_submit_wait_results(
    jobs_server: LiveServer, image_host: str, images: dict[str, bytes], tmp_path: Path
) -> None:
    from facefaas import Client

    path = tmp_path / "blank.png"
    path.write_bytes(images["blank.png"])
    name = sorted(images)[0]
    with Client(jobs_server.url) as client:
        job = client.submit([path, f"{image_host}/{name}"], min_size=24)
        final = job.wait(timeout=120, poll=0.1)
        assert final["state"] == "done" and job.progress == 1.0
        lines = job.results()
        assert [line["source"] for line in lines] == ["blank.png", f"{image_host}/{name}"]
        assert all(line["result"]["parameters"]["min_size"] == 24 for line in lines)
        again = client.job(job.id, job.token)
        assert again.status()["counts"]["done"] == 2


def test_cli_jobs_submit_wait_status_cancel(
    start_server: ServerFactory, jobs_server: LiveServer, image_host: str
) -> None:
    from click.testing import CliRunner

    from facefaas.cli import cli

    runner = CliRunner()
    url = f"{image_host}/blank.png"
    ran = runner.invoke(
        cli, ["jobs", "submit", url, url, "--server", jobs_server.url, "--param", "min_size=30",
              "--wait"],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    results_ = [json.loads(line) for line in ran.stdout.splitlines()]  # stdout: JSON Lines
    created = json.loads(ran.stderr.splitlines()[0])  # the id and token go to stderr
    assert [line["status"] for line in results_] == ["done", "done"]
    status = runner.invoke(
        cli, ["jobs", "status", created["job_id"], "--token", created["token"],
              "--server", jobs_server.url],
    )  # fmt: skip
    assert status.exit_code == 0 and json.loads(status.stdout)["state"] == "done"

    idle = start_server(**JOB_SETTINGS, job_worker=False)
    ran = runner.invoke(cli, ["jobs", "submit", url, "--server", idle.url])
    created = json.loads(ran.stdout)
    cancelled = runner.invoke(
        cli, ["jobs", "cancel", created["job_id"], "--token", created["token"],
              "--server", idle.url],
    )  # fmt: skip
    assert cancelled.exit_code == 0 and json.loads(cancelled.stdout)["state"] == "cancelled"
    wrong = runner.invoke(
        cli, ["jobs", "status", created["job_id"], "--token", "wrong", "--server", idle.url]
    )
    assert wrong.exit_code != 0 and "job not found" in wrong.output


def test_a_private_model_needs_its_usage_key_at_submit(
    jobs_server: LiveServer, image_host: str, new_model: bytes
) -> None:
    from .conftest import upload

    with httpx.Client(base_url=jobs_server.url, timeout=120) as http:
        created = upload(http, new_model, name="private-jobs", private=True)
    body = {"model": created["model_id"], "inputs": [f"{image_host}/blank.png"]}
    response = httpx.post(f"{jobs_server.url}/api/jobs", json=body, timeout=30)
    assert response.status_code == 401, response.text
    response = httpx.post(
        f"{jobs_server.url}/api/jobs", json=body, headers={"X-API-Key": "wrong"}, timeout=30
    )
    assert response.status_code == 403, response.text
    job = httpx.post(
        f"{jobs_server.url}/api/jobs", json=body,
        headers={"X-API-Key": created["usage_key"]}, timeout=30,
    ).json()  # fmt: skip
    assert wait_ended(jobs_server.url, job)["counts"]["done"] == 1  # the token reads it now


def test_a_model_replaced_during_a_job_fails_none_of_its_remaining_images(
    start_server: ServerFactory, image_host: str, images: dict[str, bytes],
    make_model: Any, new_model: bytes,
) -> None:  # fmt: skip
    from .conftest import upload

    server = start_server(**JOB_SETTINGS)
    with httpx.Client(base_url=server.url, timeout=120) as http:
        created = upload(http, new_model, name="replaced-mid-job")
    model_id = created["model_id"]
    wider = [name for name in sorted(images) if name.endswith(".jpg")]
    inputs = [f"{image_host}/{name}" for name in wider] * 2
    job = submit(server.url, {"model": model_id, "inputs": inputs})
    wait_done(server.url, job, 2)
    replaced = httpx.put(
        f"{server.url}/api/models/{model_id}", files={"file": ("model.zip", make_model(999))},
        headers={"Authorization": f"Bearer {created['admin_key']}"}, timeout=120,
    )  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    ended = wait_ended(server.url, job)
    assert ended["state"] == "done"
    assert ended["counts"] == {**ended["counts"], "done": 2 * len(wider), "failed": 0}, ended


def test_unfinished_jobs_per_client_are_bounded(
    start_server: ServerFactory, image_host: str
) -> None:
    idle = start_server(**JOB_SETTINGS, job_worker=False, job_max_active_per_client=2)
    body = {"inputs": [f"{image_host}/blank.png"]}
    first = submit(idle.url, body)
    submit(idle.url, body)
    response = httpx.post(f"{idle.url}/api/jobs", json=body, timeout=30)
    assert response.status_code == 429, response.text
    httpx.delete(f"{idle.url}{first['status_url']}", headers=_auth(first))
    submit(idle.url, body)  # an ended job no longer counts


def test_a_failing_webhook_is_retried_with_the_same_id(
    jobs_server: LiveServer, image_host: str
) -> None:
    with receiver() as hook:
        hook.status = 500
        job = submit(
            jobs_server.url,
            {"inputs": [f"{image_host}/blank.png"], "webhook": f"{hook.url}/hook"},
        )
        deadline = time.monotonic() + 30
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        hook.status = 200
        while len(hook.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = wait_ended(jobs_server.url, job)
        while status["webhook"]["state"] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = wait_ended(jobs_server.url, job)
    first, second = hook.requests[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert verify(job["webhook_secret"], second.headers, second.body)
    assert status["webhook"] == {"state": "delivered", "attempts": 2, "last_status": 200}


def test_a_stopping_service_gives_its_items_back_and_another_finishes_them(
    start_server: ServerFactory, image_host: str, images: dict[str, bytes], tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from facefaas.jobs.tables import job_items

    data_dir = tmp_path / "data"
    first = start_server(**JOB_SETTINGS, data_dir=data_dir)
    names = [name for name in sorted(images) if name.endswith(".jpg")]
    job = submit(first.url, {"inputs": [f"{image_host}/{name}" for name in names]})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = httpx.get(f"{first.url}{job['status_url']}", headers=_auth(job), timeout=30).json()
        if status["counts"]["done"] >= 2:
            break
        time.sleep(0.05)
    engine = first.service.jobs.store.engine
    first.stop()
    with engine.connect() as conn:
        states = conn.execute(
            sa.select(job_items.c.state).where(job_items.c.job_id == job["job_id"])
        ).scalars()
        assert "running" not in set(states)  # nothing left claimed by the stopped service
    second = start_server(**JOB_SETTINGS, data_dir=data_dir)
    final = wait_ended(second.url, job)
    assert final["counts"]["done"] == len(names)


def test_a_job_of_all_396_wider_images_equals_the_library(
    jobs_server: LiveServer, shared: Path
) -> None:
    """The issue's job: the whole WIDER subset, served by a loopback image host (the files are
    read in place from ../shared), every result equal to the library's on the same bytes."""
    from facefaas.detector import Detector

    root = shared / "eval" / "wider-val" / "images"
    paths = sorted(root.rglob("*.jpg"))
    assert len(paths) == 396
    host = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=host.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        base = f"http://127.0.0.1:{host.server_address[1]}"
        inputs = [f"{base}/{path.relative_to(root).as_posix()}" for path in paths]
        job = submit(jobs_server.url, {"model": "mtcnn", "function": "detect", "inputs": inputs})
        status = wait_ended(jobs_server.url, job, timeout=600)
        lines = results(jobs_server.url, job)
    finally:
        host.shutdown()
        host.server_close()
    assert status["state"] == "done" and status["counts"]["done"] == 396
    assert [line["index"] for line in lines] == list(range(396))
    faces = 0
    with Detector() as detector:
        for path, line in zip(paths, lines, strict=True):
            assert line["status"] == "done", line
            expected = detector(path.read_bytes())
            got = Faces.from_dict(line["result"])
            assert len(got) == len(expected), path.name
            np.testing.assert_allclose(got.boxes, expected.boxes, atol=0.01)
            faces += len(got)
    assert faces > 2000
