"""The jobs client and ``facefaas jobs`` when the server is down or slow, the token options, and
the 409 a running job's zip answers, and a server that is not facefaas: no facefaas server is
started here (a closed loopback port, a socket that never answers, a plain ``http.server``, and
problem documents made in the test)."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from facefaas import errors
from facefaas.cli import cli
from facefaas.client import Client, error_from_response

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A loopback port bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port that takes connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["jobs", *args], env={"FACEFAAS_JOB_TOKEN": None, **(env or {})})


@pytest.mark.parametrize(
    "command",
    [
        ["submit", "http://example.org/a.jpg"],
        ["submit", "http://example.org/a.jpg", "--wait"],
        ["status", "job1", "--token", "t"],
        ["results", "job1", "--token", "t"],
        ["cancel", "job1", "--token", "t"],
    ],
    ids=["submit", "submit-wait", "status", "results", "cancel"],
)
def test_every_jobs_command_reports_a_server_down_in_one_line_and_exits_3(
    command: list[str], closed_url: str
) -> None:
    result = CliRunner().invoke(cli, ["jobs", *command, "--server", closed_url])
    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)  # not an httpx error let through
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: the facefaas server at {closed_url} could not be reached")
    assert "Traceback" not in result.output


def test_client_and_job_calls_raise_server_unreachable_naming_the_url(closed_url: str) -> None:
    with Client(closed_url) as client:
        assert client.ready() is False  # a question, answered: not ready
        with pytest.raises(errors.ServerUnreachableError) as submitted:
            client.submit(["http://example.org/a.jpg"])
        job = client.job("job1", "token")
        calls: list[Callable[[], object]] = [
            job.status, job.results, job.zip, job.cancel, lambda: job.result_bytes(0),
            lambda: job.wait(timeout=1),
        ]  # fmt: skip
        for call in calls:
            with pytest.raises(errors.ServerUnreachableError) as raised:
                call()
            assert raised.value.url == closed_url and raised.value.reason == "connect"
    error = submitted.value
    assert isinstance(error, errors.FacefaasError)
    assert isinstance(error.__cause__, httpx.ConnectError)  # the network error stays chained
    assert error.message.startswith(f"the facefaas server at {closed_url} could not be reached (")


def test_a_server_that_never_answers_is_a_timeout_naming_the_url(silent_url: str) -> None:
    with (
        Client(silent_url, timeout=0.2) as client,
        pytest.raises(errors.ServerUnreachableError) as raised,
    ):
        client.job("job1", "token").status()
    assert raised.value.reason == "timeout"
    assert raised.value.message.startswith(f"the facefaas server at {silent_url} did not answer")


def test_a_missing_token_names_its_environment_variable() -> None:
    result = _invoke("status", "job1")
    assert result.exit_code == 2
    assert "Missing option '--token'" in result.stderr
    assert "FACEFAAS_JOB_TOKEN" in result.stderr


@pytest.mark.parametrize("command", ["status", "results", "cancel"])
def test_help_shows_the_token_and_server_environment_variables(command: str) -> None:
    result = _invoke(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # the help wraps anywhere
    assert "[env var: FACEFAAS_JOB_TOKEN; required]" in text
    assert "[env var: FACEFAAS_SERVER; default: http://127.0.0.1:8000]" in text


def test_the_token_and_server_come_from_the_environment(closed_url: str) -> None:
    result = _invoke("status", "job1", env={"FACEFAAS_JOB_TOKEN": "t",
                                            "FACEFAAS_SERVER": closed_url})  # fmt: skip
    assert result.exit_code == 3  # past the missing option: the server was asked, and is down
    assert f"the facefaas server at {closed_url}" in result.stderr


def _conflict(body: dict[str, str] | None) -> errors.FacefaasError:
    response = httpx.Response(409, json=body) if body is not None else httpx.Response(409)
    return error_from_response(response)


def test_a_running_jobs_409_is_a_job_running_error_not_a_model_conflict() -> None:
    error = _conflict({"code": "job-running", "detail": "the job has not ended yet"})
    assert type(error) is errors.JobRunningError
    assert not isinstance(error, errors.ModelError)
    assert (error.status, error.code, error.message) == (409, "job-running",
                                                         "the job has not ended yet")  # fmt: skip


def test_other_409s_keep_their_classes() -> None:
    assert type(_conflict({"code": "conflict", "detail": "taken"})) is errors.ModelConflictError
    assert type(_conflict(None)) is errors.ModelConflictError  # no problem document
    busy = _conflict({"code": "idempotency-in-progress", "detail": "busy"})
    assert type(busy) is errors.IdempotencyConflictError


def test_an_unreadable_input_file_submits_nothing_and_exits_3(
    closed_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jpg"
    result = CliRunner().invoke(cli, ["jobs", "submit", str(missing), "--server", closed_url])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ") and str(missing) in result.stderr
    assert len(result.stderr.splitlines()) == 1


class QuietHandler(SimpleHTTPRequestHandler):
    """``http.server``'s handler, without its log lines on stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http_url(tmp_path: Path) -> Iterator[str]:
    """``python -m http.server`` over an empty folder, on loopback: not a facefaas server."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        thread.join(timeout=5)


def test_a_server_that_is_not_facefaas_is_named_as_such_and_exits_3(plain_http_url: str) -> None:
    result = _invoke("status", "job1", "--token", "t", "--server", plain_http_url)
    assert result.exit_code == 3, result.output
    assert result.stderr == (
        f"error: {plain_http_url} answered 404 (File not found), not a facefaas problem "
        "document: is it a facefaas server?\n"
    )
    with Client(plain_http_url) as client, pytest.raises(errors.FacefaasError) as raised:
        client.job("job1", "t").cancel()
    assert raised.value.status == 501  # http.server has no DELETE
    assert raised.value.message.startswith(f"{plain_http_url} answered 501 (")


def test_answers_that_are_not_facefaas_problems_keep_the_class_of_their_status() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/api/jobs/job1")
    plain = error_from_response(httpx.Response(404, text="nope", request=request))
    assert type(plain) is errors.ModelNotFoundError and plain.status == 404
    assert plain.message == (
        "http://127.0.0.1:9 answered 404 (Not Found), not a facefaas problem document: "
        "is it a facefaas server?"
    )
    other_json = error_from_response(httpx.Response(429, json={"detail": "slow down"},
                                                    request=request))  # fmt: skip
    assert type(other_json) is errors.RateLimitedError
    assert other_json.message.startswith("http://127.0.0.1:9 answered 429 (slow down), not a")
    ours = {"code": "job-not-found", "detail": "job not found", "status": 404}
    problem = error_from_response(httpx.Response(404, json=ours, request=request))
    assert problem.message == "job not found"  # a facefaas problem's detail, unchanged
