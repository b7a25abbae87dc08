"""The service's parts on their own: settings, Accept parsing, the pool, limits, caches."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from starlette.requests import Request

from facefaas.errors import OverloadedError
from facefaas.server.detectors import DetectorCache
from facefaas.server.inputs import preferred
from facefaas.server.pool import InferencePool
from facefaas.server.usage import UsageBuffer
from facefaas.settings import Settings


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEFAAS_PORT", "9123")
    monkeypatch.setenv("FACEFAAS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("FACEFAAS_UPLOAD_TOKEN", "s3cr3t-t0ken")
    monkeypatch.setenv("PORT", "1")  # unprefixed: ignored
    settings = Settings()
    assert settings.port == 9123
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert (
        settings.upload_token is not None
        and settings.upload_token.get_secret_value() == "s3cr3t-t0ken"
    )
    assert "s3cr3t" not in repr(settings)
    # Keyword arguments (the CLI flags) win over the environment.
    assert Settings(port=7000).port == 7000


def test_settings_round_trip_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        data_dir=tmp_path, cors_origins=["https://x.example"], providers=["cpu"], workers=3,
        upload_token="t", rate_limit="5/second",
    )  # fmt: skip
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


@pytest.mark.parametrize(
    "values",
    [{"port": 70000}, {"workers": 0}, {"rate_limit": "lots"}, {"log_format": "xml"}],
)
def test_bad_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def test_serve_flag_errors_are_usage_errors() -> None:
    from facefaas.cli.serve import serve

    result = CliRunner().invoke(serve, ["--workers", "0"])
    assert result.exit_code == 2 and "workers" in result.output


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings().data_dir == tmp_path / "facefaas"
    assert (
        Settings().resolved_database_url() == f"sqlite:///{tmp_path / 'facefaas'}/registry.sqlite3"
    )


def _request(accept: str) -> Request:
    return Request({"type": "http", "headers": [(b"accept", accept.encode())]})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/png", "image/png"),
        ("image/jpeg, image/png", "image/jpeg"),
        ("image/png;q=0.4, image/jpeg;q=0.9", "image/jpeg"),
        ("image/png;q=0", None),
        ("*/*", None),
        ("image/*", None),
        ("text/html, image/png;q=0.1", "image/png"),
        ("image/png;q=bad", None),
        ("", None),
    ],
)
def test_accept_header_ranking(accept: str, expected: str | None) -> None:
    assert preferred(_request(accept), ("image/png", "image/jpeg")) == expected


def test_pool_refuses_beyond_threads_plus_queue() -> None:
    pending: list[int] = []
    pool = InferencePool(1, 1, retry_after=2, on_change=pending.append)
    release = threading.Event()

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(pool.run(release.wait, 10))
        second = asyncio.ensure_future(pool.run(lambda: "queued"))
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError) as refused:
            await pool.run(lambda: "refused")
        assert refused.value.retry_after == 2
        release.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(scenario()) == [True, "queued"]
    assert pool.pending == 0 and max(pending) == 2
    pool.shutdown()


def test_usage_buffer_sums_and_drains() -> None:
    buffer = UsageBuffer()
    buffer.add("m", faces=3, latency_ms=10.0)
    buffer.add("m", faces=1, latency_ms=20.0)
    buffer.add("m", faces=0, latency_ms=0.0, error=True)
    counts = buffer.drain()["m"]
    assert (counts.calls, counts.faces, counts.errors, counts.latency_ms) == (2, 4, 1, 30.0)
    assert buffer.drain() == {}


def test_detector_cache_loads_once_and_evicts_the_least_recent() -> None:
    loads: list[Path] = []

    class Fake:
        closed = False

        def close(self) -> None:
            self.closed = True

    def factory(path: Path, pool: Any) -> Any:
        time.sleep(0.05)
        loads.append(path)
        return Fake()

    cache = DetectorCache(2, factory=factory)

    def use(name: str) -> Any:
        with cache.lease((name, "1"), Path(name)) as detector:
            return detector

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(use("a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [Path("a")] and len(results) == 4 and len({id(r) for r in results}) == 1
    b = use("b")
    use("a")  # a is now the most recent
    use("c")  # evicts b, which nobody holds: closed at once
    assert cache.cached(("b", "1")) is None and cache.cached(("a", "1")) is not None
    assert b.closed and not results[0].closed
    assert len(cache) == 2
    cache.close()
    assert results[0].closed and len(cache) == 0


def test_detector_cache_closes_an_evicted_detector_only_when_its_last_lease_ends() -> None:
    class Fake:
        closed = False

        def close(self) -> None:
            self.closed = True

    cache = DetectorCache(1, factory=lambda path, pool: Fake())
    with cache.lease(("a", "1"), Path("a")) as held:
        with cache.lease(("b", "1"), Path("b")):
            pass  # loading b evicts a while a request still runs on it
        assert cache.cached(("a", "1")) is None
        assert not held.closed  # the request in flight keeps it open
    assert held.closed
    cache.close()


def test_a_multiplexed_model_deleted_under_a_request_closes_when_the_request_ends() -> None:
    from facefaas.scale.loaded import LoadedModel

    class Fake:
        closes = 0

        def close(self) -> None:
            self.closes += 1

    fake = Fake()
    model = LoadedModel(fake)  # type: ignore[arg-type]
    with model.lease() as held:
        model.__del__()  # Serve's multiplexer calls it on the least recently used model
        assert held.closes == 0  # the request in flight keeps it open
    assert fake.closes == 1
    idle = LoadedModel(fake)  # type: ignore[arg-type]
    idle.__del__()
    del idle  # the collector's call later is a no-op
    assert fake.closes == 2  # nobody held it: closed at once, and only once
