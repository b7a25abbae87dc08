"""``facefaas jobs`` exit statuses over real HTTP (a loopback image host whose ``/status/404``
fails an image), a running job's zip refused with :class:`JobRunningError`, the files of a zip
that are not images said (``Job.skipped``, the CLI's JSON and note), and cancelled images
counted apart in ``submit --wait``'s progress bar."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
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


@pytest.fixture
def cancel_at_submit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Client.submit`` cancels the job it made (on ``idle``, before any image ran)."""
    submit = Client.submit

    def submit_and_cancel(self: Client, *args: Any, **kwargs: Any) -> Any:
        job = submit(self, *args, **kwargs)
        assert job.cancel()["state"] == "cancelled"
        return job

    monkeypatch.setattr(Client, "submit", submit_and_cancel)


def _zip_of(names: list[str]) -> bytes:
    """A zip of one grey picture (``photo.png``) and a text file per name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.png", encode(Image.new("RGB", (64, 48), (128, 128, 128))))
        for name in names:
            archive.writestr(name, b"not a picture\n")
    return buffer.getvalue()


def test_the_files_of_a_zip_that_are_not_images_reach_the_job_and_the_cli(
    idle: LiveServer, tmp_path: Path
) -> None:
    photos = tmp_path / "photos.zip"
    photos.write_bytes(_zip_of(["README.md"]))
    with Client(idle.url) as client:
        job = client.submit([photos])
        assert job.total == 1
        assert job.skipped == {"count": 1, "files": ["README.md"]}
        assert client.submit([encode(Image.new("RGB", (8, 8)))]).skipped is None  # none skipped

    ran = _jobs("submit", str(photos), "--server", idle.url)
    assert ran.exit_code == 0, ran.output
    created = json.loads(ran.stdout)
    assert created["total"] == 1
    assert created["skipped"] == {"count": 1, "files": ["README.md"]}
    assert ran.stderr == "skipped 1 file that is not an image: README.md\n"


def test_submit_names_the_first_five_skipped_files_and_counts_the_rest(
    idle: LiveServer, tmp_path: Path, cancel_at_submit: None
) -> None:
    notes = [f"note{i}.txt" for i in range(7)]
    photos = tmp_path / "photos.zip"
    photos.write_bytes(_zip_of(notes))
    ran = _jobs("submit", str(photos), "--server", idle.url, "--wait")
    assert ran.exit_code == 3, ran.output  # nothing done: cancelled at submit
    lines = ran.stderr.splitlines()
    created = json.loads(lines[0])  # with --wait the JSON is on stderr, as the id and token are
    assert created["skipped"] == {"count": 7, "files": notes}
    assert lines[1] == (
        "skipped 7 files that are not images: note0.txt, note1.txt, note2.txt, note3.txt, "
        "note4.txt and 2 more"
    )


def test_submit_wait_counts_cancelled_images_apart_from_the_images_run(
    idle: LiveServer, host: str, cancel_at_submit: None
) -> None:
    ran = _jobs("submit", *[f"{host}/img.png"] * 3, "--server", idle.url, "--wait")
    assert ran.exit_code == 3, ran.output  # nothing done
    assert _statuses(ran) == ["cancelled"] * 3
    bar = ran.stderr.split("\r")[-1].strip()  # the bar's last drawing
    assert bar.startswith("0%|") and " 0/3 " in bar, bar  # not 100%: no image ran
    assert bar.endswith("failed=0, cancelled=3, state=cancelled]"), bar
