"""``facefaas detect URL``: images by URL through the fetch guard, refusals as per-input errors.

Only loopback is ever connected to: the image host runs on 127.0.0.1 and is admitted by the
allowlist (``--fetch-allow`` or ``FACEFAAS_FETCH_ALLOW``); refused targets are refused before any
connection is made, which the tests check by recording every connection the fetcher opens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from loopback_hosts import Host, serve

import facefaas.fetch
import facefaas.fetch.transport
from facefaas.cli import cli
from facefaas.cli.detect import collect_inputs

ASTRONAUT = Path(__file__).parents[1] / "src/facefaas/data/reference/astronaut.jpg"


@pytest.fixture(autouse=True)
def no_env_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEFAAS_FETCH_ALLOW", raising=False)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of every connection the fetcher opens (the guard admitted it first)."""
    opened: list[str] = []
    real = facefaas.fetch.transport.pinned_client

    def recording(target: Any, policy: Any) -> Any:
        opened.append(str(target.url))
        return real(target, policy)

    monkeypatch.setattr(facefaas.fetch, "pinned_client", recording)
    return opened


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with serve(ASTRONAUT.read_bytes()) as running:
        yield running


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["detect", *args])


def test_a_url_argument_is_a_url_input() -> None:
    items, problems = collect_inputs(
        ("https://example.org/a/photo.jpg", "HTTP://h/"), recursive=True
    )
    assert problems == []
    assert [(i.url, str(i.relative), i.is_stdin) for i in items] == [
        ("https://example.org/a/photo.jpg", "photo.jpg", False),
        ("HTTP://h/", "image", False),
    ]


def test_an_admitted_loopback_url_is_fetched_and_detected(
    host: Host, connections: list[str]
) -> None:
    url = f"{host.url}/img.png"
    result = run(url, "--jsonl", "--fetch-allow", "127.0.0.1/32")
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["path"] == url
    assert len(record["faces"]) == 1
    assert connections == [url]


def test_the_env_allowlist_admits_too(
    host: Host, connections: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACEFAAS_FETCH_ALLOW", "127.0.0.0/8")
    result = run(f"{host.url}/img.png", "-o", str(tmp_path / "out"), "--render", "blur")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "img.png").is_file()


def test_loopback_is_refused_without_the_allowlist(host: Host, connections: list[str]) -> None:
    before = len(host.requests)
    result = run(f"{host.url}/img.png")
    assert result.exit_code == 3
    assert "refused" in result.stderr or "not" in result.stderr, result.stderr
    assert connections == []
    assert len(host.requests) == before


def test_a_refused_url_is_a_per_input_error(host: Host, connections: list[str]) -> None:
    good = f"{host.url}/img.png"
    result = run("http://10.0.0.1/x.jpg", good, "--jsonl", "--fetch-allow", "127.0.0.1")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("http://10.0.0.1/x.jpg: "), result.stderr
    assert "10.0.0.1" in result.stderr
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [good]
    assert connections == [good]  # the refused one never connected


def test_only_refused_urls_exit_3(connections: list[str]) -> None:
    result = run("http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/")
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 2
    assert connections == []


def test_a_bad_allowlist_entry_is_a_usage_error() -> None:
    result = run("http://10.0.0.1/x.jpg", "--fetch-allow", "not a network!")
    assert result.exit_code == 2
    assert "--fetch-allow" in result.output
