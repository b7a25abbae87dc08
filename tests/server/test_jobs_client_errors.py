"""``facefaas jobs`` exit statuses over real HTTP (a loopback image host whose ``/status/404``
fails an image), and a running job's zip refused with :class:`JobRunningError`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from loopback_hosts import serve
from PIL import Image

from facefaas import Client
from facefaas.cli import cli
from facefaas.errors import JobRunningError, ModelConflictError

from .conftest import LiveServer, ServerFactory, encode

pytestmark = pytest.mark.timeout(120)

SETTINGS: dict[str, Any] = {
    "fetch_allow": ["127.0.0.1"],
    "job_poll_interval": 0.05,
    "job_sweep_interval": 0.2,
}


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """``/img.png`` a grey picture (no faces, done); ``/status/404`` a failed image."""
    with serve(encode(Image.new("RGB", (64, 48), (128, 128, 128)))) as running:
        yield running.url


@pytest.fixture(scope="module")
def worker(start_server: ServerFactory) -> LiveServer:
    return start_server(**SETTINGS)


@pytest.fixture(scope="module")
def idle(start_server: ServerFactory) -> LiveServer:
    """A server whose jobs stay queued (no worker)."""
    return start_server(**SETTINGS, job_worker=False)


def _jobs(*args: str) -> Result:
    return CliRunner().invoke(cli, ["jobs", *args], env={"FACEFAAS_JOB_TOKEN": None})


def _statuses(result: Result) -> list[str]:
    return [json.loads(line)["status"] for line in result.stdout.splitlines()]


def test_submit_wait_exits_1_when_some_images_fail_and_prints_every_result(
    worker: LiveServer, host: str
) -> None:
    ran = _jobs("submit", f"{host}/img.png", f"{host}/status/404", "--server", worker.url,
                "--wait")  # fmt: skip
    assert ran.exit_code == 1, ran.output
    assert _statuses(ran) == ["done", "failed"]


def test_submit_wait_exits_3_when_the_job_ends_failed(worker: LiveServer, host: str) -> None:
    ran = _jobs("submit", f"{host}/status/404", f"{host}/status/404", "--server", worker.url,
                "--wait")  # fmt: skip
    assert ran.exit_code == 3, ran.output
    assert _statuses(ran) == ["failed", "failed"]  # the results are printed all the same
    created = json.loads(ran.stderr.splitlines()[0])
    status = _jobs("status", created["job_id"], "--token", created["token"],
                   "--server", worker.url)  # fmt: skip
    assert status.exit_code == 0 and json.loads(status.stdout)["state"] == "failed"
    again = _jobs("results", created["job_id"], "--token", created["token"],
                  "--server", worker.url)  # fmt: skip
    assert again.exit_code == 3 and _statuses(again) == ["failed", "failed"]


def test_a_running_jobs_zip_is_a_job_running_error_and_the_cli_says_so(
    idle: LiveServer, host: str, tmp_path: Any
) -> None:
    with Client(idle.url) as client:
        job = client.submit([f"{host}/img.png"])
        with pytest.raises(JobRunningError) as raised:
            job.zip()
        assert not isinstance(raised.value, ModelConflictError)
        assert raised.value.status == 409 and "has not ended yet" in raised.value.message
        target = tmp_path / "job.zip"
        zipped = _jobs("results", job.id, "--token", job.token, "--server", idle.url,
                       "--zip", str(target))  # fmt: skip
        assert zipped.exit_code == 3 and not target.exists()
        assert zipped.stderr.strip() == f"error: {raised.value.message}"

        assert job.cancel()["state"] == "cancelled"
        assert job.zip()[:2] == b"PK"  # ended: the zip is made
        nowhere = tmp_path / "missing-folder" / "job.zip"
        unwritable = _jobs("results", job.id, "--token", job.token, "--server", idle.url,
                           "--zip", str(nowhere))  # fmt: skip
        assert unwritable.exit_code == 3 and "Traceback" not in unwritable.output
        assert unwritable.stderr.strip() == (
            f"error: cannot write {nowhere}: No such file or directory"
        )
    cancelled = _jobs("results", job.id, "--token", job.token, "--server", idle.url)
    assert cancelled.exit_code == 3 and _statuses(cancelled) == ["cancelled"]


def test_a_wrong_token_is_one_line_and_exit_3(idle: LiveServer) -> None:
    wrong = _jobs("status", "nosuchjob", "--token", "wrong", "--server", idle.url)
    assert wrong.exit_code == 3
    assert wrong.stderr.startswith("error: job not found") and len(wrong.stderr.splitlines()) == 1
