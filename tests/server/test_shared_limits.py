"""Counts shared across processes in Redis (server/redis_link.py, ratelimit.py, inprogress.py).

Every Redis here is a real ``redis-server`` (tests/throwaway_servers.py). The limiter's tests run
on both storages (``counter_store``: this process's memory, then Redis); two ``facefaas serve``
processes share one limit through Redis; a Redis killed mid-test makes the counts fall back to
the process (never a 500), and they go back to Redis once it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from throwaway_servers import RedisServer

from facefaas.errors import RateLimitedError
from facefaas.server.inprogress import UploadsInProgress
from facefaas.server.ratelimit import RateLimiter
from facefaas.server.redis_link import RETRY_SECONDS, RedisLink, redact_url
from facefaas.settings import Settings

from .conftest import TEST_LIMITS, LiveServer, ServerFactory, assert_problem
from .served import Served, start_serve, stop_serve

pytest.importorskip("redis", reason="the redis extra is not installed")
pytestmark = pytest.mark.timeout(180)


def _link(url: str | None, errors: list[str] | None = None) -> RedisLink | None:
    if url is None:
        return None
    on_error = errors.append if errors is not None else None
    return RedisLink(url, timeout=0.5, on_error=on_error)


async def _close(link: RedisLink | None) -> None:
    if link is not None:
        await link.aclose()


def _keys(url: str) -> list[str]:
    import redis

    with redis.Redis.from_url(url, decode_responses=True) as client:
        return sorted(client.scan_iter())


# -- the limiter, on each storage -------------------------------------------------------------


def test_rate_limiter_counts_per_client(counter_store: str | None) -> None:
    async def scenario() -> None:
        link = _link(counter_store)
        limiter = RateLimiter("2/minute", redis=link)
        assert limiter.shared is (counter_store is not None)
        try:
            for _ in range(2):
                await limiter.hit("ip:1")
            with pytest.raises(RateLimitedError) as raised:
                await limiter.hit("ip:1")
            assert 1 <= raised.value.retry_after <= 60
            await limiter.hit("ip:2")
        finally:
            await _close(link)

    asyncio.run(scenario())
    assert not RateLimiter("").enabled
    key_a = RateLimiter.key_id("secret-key")
    assert key_a.startswith("key:") and "secret" not in key_a
    assert RateLimiter.address_id("1.2.3.4") == "ip:1.2.3.4"


def test_verified_keys_have_their_own_limit(counter_store: str | None) -> None:
    async def scenario() -> None:
        link = _link(counter_store)
        limiter = RateLimiter("1/minute", "3/minute", redis=link)
        try:
            await limiter.hit("ip:1")
            with pytest.raises(RateLimitedError):
                await limiter.hit("ip:1")
            key = RateLimiter.key_id("ffu_k")
            for _ in range(3):
                await limiter.hit(key)
            with pytest.raises(RateLimitedError):
                await limiter.hit(key)
        finally:
            await _close(link)

    asyncio.run(scenario())


def test_limiters_on_one_redis_share_the_count_under_prefixed_keys(redis_url: str) -> None:
    async def scenario() -> list[bool]:
        links = [_link(redis_url), _link(redis_url)]  # as two processes would hold them
        limiters = [RateLimiter("3/minute", redis=link) for link in links]
        allowed = []
        try:
            for i in range(6):
                try:
                    await limiters[i % 2].hit("ip:10.0.0.1")
                    allowed.append(True)
                except RateLimitedError:
                    allowed.append(False)
        finally:
            for link in links:
                await _close(link)
        return allowed

    assert asyncio.run(scenario()) == [True, True, True, False, False, False]
    keys = _keys(redis_url)
    assert keys and all(key.startswith("facefaas:limits:") for key in keys), keys
    assert any("ip:10.0.0.1" in key for key in keys)


# -- uploads in progress ----------------------------------------------------------------------


def test_an_idempotency_key_in_progress_is_refused_until_it_ends(counter_store: str | None) -> None:
    async def scenario() -> None:
        link = _link(counter_store)
        marks = UploadsInProgress(link, ttl=60)
        try:
            assert await marks.begin("address:a", "k" * 16)
            assert not await marks.begin("address:a", "k" * 16)
            assert await marks.begin("address:b", "k" * 16)  # another owner's key
            await marks.end("address:a", "k" * 16)
            assert await marks.begin("address:a", "k" * 16)
        finally:
            await _close(link)

    asyncio.run(scenario())


def test_an_upload_in_progress_in_one_process_is_seen_by_another(redis_url: str) -> None:
    async def scenario() -> None:
        first, second = _link(redis_url), _link(redis_url)
        here, there = UploadsInProgress(first, ttl=60), UploadsInProgress(second, ttl=60)
        try:
            assert await here.begin("address:a", "retry-key-0123456")
            assert not await there.begin("address:a", "retry-key-0123456")
            (key,) = _keys(redis_url)
            assert key.startswith("facefaas:uploads-in-progress:") and "retry" not in key
            assert second is not None and 0 < await second.client.pttl(key) <= 60_000
            await there.end("address:a", "retry-key-0123456")  # not its mark: nothing removed
            assert not await there.begin("address:a", "retry-key-0123456")
            await here.end("address:a", "retry-key-0123456")
            assert await there.begin("address:a", "retry-key-0123456")
        finally:
            await _close(first)
            await _close(second)

    asyncio.run(scenario())


def test_uploads_in_progress_fall_back_to_the_process_when_redis_is_down(
    start_redis: Callable[[], RedisServer],
) -> None:
    server = start_redis()
    url = server.url
    server.stop()
    errors: list[str] = []

    async def scenario() -> None:
        link = _link(url, errors)
        marks = UploadsInProgress(link, ttl=60)
        try:
            assert await marks.begin("address:a", "k" * 16)  # fail open: not refused
            assert not await marks.begin("address:a", "k" * 16)  # still one per process
            await marks.end("address:a", "k" * 16)
        finally:
            await _close(link)

    asyncio.run(scenario())
    assert errors == ["uploads_in_progress"]  # then no more tries for RETRY_SECONDS


def test_an_upload_in_progress_elsewhere_is_409_here_until_it_ends(
    start_server: ServerFactory, redis_url: str, new_model: bytes
) -> None:
    server = start_server(redis_url=redis_url)
    owner, idempotency_key = "address:127.0.0.1", "retry-0123456789abcdef"

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        link = _link(redis_url)  # another replica's process, on the same Redis
        elsewhere = UploadsInProgress(link, ttl=60)
        files = {"file": ("model.zip", new_model)}
        headers = {"Idempotency-Key": idempotency_key}
        try:
            assert await elsewhere.begin(owner, idempotency_key)
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                busy = await http.post("/api/models", files=files, headers=headers)
                await elsewhere.end(owner, idempotency_key)
                done = await http.post("/api/models", files=files, headers=headers)
        finally:
            await _close(link)
        return busy, done

    busy, done = asyncio.run(scenario())
    assert_problem(busy, 409, "idempotency-in-progress")
    assert int(busy.headers["retry-after"]) >= 1
    assert done.status_code == 201, done.text
    assert _keys(redis_url) == []  # the server's own mark went with its request


# -- settings and what is shown of the URL ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cr3t@10.0.0.5:6379/2", "redis://:***@10.0.0.5:6379/2"),
        ("rediss://user:s3cr3t@cache.example:6380/0", "rediss://user:***@cache.example:6380/0"),
        ("redis://127.0.0.1:6379?password=s3cr3t", "redis://127.0.0.1:6379"),
        ("redis://user@[::1]:6379", "redis://user@[::1]:6379"),
        ("unix:///run/redis.sock?password=s3cr3t&db=1", "unix:///run/redis.sock"),
    ],
)
def test_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redis_url_setting_hides_its_password_and_refuses_other_schemes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACEFAAS_REDIS_URL", "redis://:s3cr3t@127.0.0.1:6379/0")
    settings = Settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://:s3cr3t@127.0.0.1:6379/0"
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())
    assert settings.to_env()["FACEFAAS_REDIS_URL"].endswith("@127.0.0.1:6379/0")  # for workers
    monkeypatch.setenv("FACEFAAS_REDIS_URL", "")
    assert Settings().redis_url is None
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url="http://:s3cr3t@127.0.0.1:6379")
    assert "s3cr3t" not in str(refused.value)


def test_a_redis_failure_is_logged_once_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[str] = []
    link = RedisLink("redis://:pw-9f3k@127.0.0.1:1/0", timeout=0.1, on_error=errors.append)
    caplog.set_level(logging.WARNING, logger="facefaas.server.redis_link")
    for _ in range(3):
        link.failed("rate_limit", ConnectionError("refused for :pw-9f3k@127.0.0.1"))
    assert errors == ["rate_limit"] * 3 and not link.available
    (line,) = [r.getMessage() for r in caplog.records]
    assert "redis://:***@127.0.0.1:1/0" in line and "pw-9f3k" not in caplog.text
    link.succeeded()
    assert "answers again" in caplog.records[-1].getMessage()


# -- processes sharing one Redis --------------------------------------------------------------


def _start_both(tmp_path: Path, env: dict[str, str]) -> list[Served]:
    """Two ``facefaas serve`` processes, started at once (each loads its model)."""
    started: list[Served | BaseException] = [RuntimeError("not started")] * 2

    def start(i: int) -> None:
        try:
            started[i] = start_serve(tmp_path / f"data{i}", env)
        except BaseException as exc:  # re-raised below, once both are done
            started[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    servers = [s for s in started if isinstance(s, Served)]
    if len(servers) < 2:
        for served in servers:
            stop_serve(served)
        failure = next(s for s in started if isinstance(s, BaseException))
        raise failure
    return servers


def test_two_service_processes_share_one_rate_limit_in_redis(
    tmp_path: Path, counter_store: str | None
) -> None:
    limit = 5
    env = {"FACEFAAS_RATE_LIMIT": f"{limit}/minute", "FACEFAAS_LOG_LEVEL": "info"}
    if counter_store is not None:
        env["FACEFAAS_REDIS_URL"] = counter_store
    servers = _start_both(tmp_path, env)
    try:
        command_lines = [Path(f"/proc/{s.process.pid}/cmdline").read_bytes() for s in servers]
        answers: list[list[httpx.Response]] = [[], []]
        with httpx.Client(timeout=30) as http:
            for i in range(4 * limit):  # alternating: each process sees every other request
                answers[i % 2].append(http.get(f"{servers[i % 2].url}/api/models"))
    finally:
        for served in servers:
            stop_serve(served)
    statuses = [[r.status_code for r in mine] for mine in answers]
    assert all(s in (200, 429) for mine in statuses for s in mine), statuses
    ok = sum(s == 200 for mine in statuses for s in mine)
    if counter_store is None:
        assert ok == 2 * limit, statuses  # in memory each process allows the limit on its own
        return
    assert ok == limit, statuses  # one limit for both
    assert all(200 in mine and 429 in mine for mine in statuses), statuses
    for response in (r for mine in answers for r in mine if r.status_code == 429):
        assert 1 <= int(response.headers["retry-after"]) <= 60
    # The password is in neither the command lines nor the logs; the URL is shown redacted.
    password = counter_store.split(":")[2].split("@")[0]
    assert all(b"serve" in line and password.encode() not in line for line in command_lines)
    for i in range(2):
        log = (tmp_path / f"data{i}.serve.log").read_text()
        assert "redis://:***@127.0.0.1:" in log and password not in log


# -- Redis going away and coming back ---------------------------------------------------------


def _metric(server: LiveServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def test_a_redis_outage_falls_back_to_counting_in_the_process_and_recovers(
    start_redis: Callable[[], RedisServer],
    tmp_path: Path,
    blank_png: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_server = start_redis()
    url, password = redis_server.url, redis_server.password
    settings = Settings(**{**TEST_LIMITS, "data_dir": tmp_path, "rate_limit": "3/minute",
                           "redis_url": url})  # fmt: skip
    server = LiveServer(settings).start()
    caplog.set_level(logging.WARNING, logger="facefaas.server.redis_link")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/readyz").json()["redis"] == "ok"
            assert [http.get("/api/models").status_code for _ in range(2)] == [200, 200]
            assert any(key.startswith("facefaas:limits:") for key in _keys(url))

            redis_server.stop()
            statuses = [http.get("/api/models") for _ in range(4)]
            # Never a 500: the process counts alone (its own 3/minute), then refuses.
            assert [r.status_code for r in statuses] == [200, 200, 200, 429]
            assert_problem(statuses[-1], 429, "rate-limited")
            assert int(statuses[-1].headers["retry-after"]) >= 1
            run = http.post("/api/run/mtcnn/detect", content=blank_png)
            assert_problem(run, 429, "rate-limited")
            ready = http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["redis"] == "unreachable"
            assert _metric(server, 'facefaas_redis_errors_total{use="rate_limit"}') >= 1
            warnings = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
            assert len(warnings) == 1, warnings  # one line per outage, not one per request
            assert "redis://:***@127.0.0.1:" in warnings[0] and password not in caplog.text

            redis_server.start()  # the same port, empty
            time.sleep(RETRY_SECONDS + 0.1)
            assert http.get("/readyz").json()["redis"] == "ok"
            # Counted in Redis again (empty after its restart): allowed, where this process's
            # own count, full since the outage, would refuse.
            assert http.get("/api/models").status_code == 200
            assert any(key.startswith("facefaas:limits:") for key in _keys(url))
            assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


def test_a_hung_redis_costs_one_request_its_timeout_not_every_request(
    start_redis: Callable[[], RedisServer], tmp_path: Path
) -> None:
    redis_server = start_redis()
    settings = Settings(**{**TEST_LIMITS, "data_dir": tmp_path, "rate_limit": "100/minute",
                           "redis_url": redis_server.url, "redis_timeout": 0.3})  # fmt: skip
    server = LiveServer(settings).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/api/models").status_code == 200  # a pooled connection to Redis
            redis_server.freeze()  # accepts and reads, never answers
            try:
                started = time.monotonic()
                first = http.get("/api/models")
                first_seconds = time.monotonic() - started
                started = time.monotonic()
                later = [http.get("/api/models").status_code for _ in range(10)]
                later_seconds = time.monotonic() - started
                ready = http.get("/readyz")
            finally:
                redis_server.thaw()
    finally:
        server.stop()
    assert first.status_code == 200 and first_seconds < 1.5  # 0.3 s bound, retry included
    # Ten requests that each waited for Redis would take 3 s: they do not try it for a while.
    assert later == [200] * 10 and later_seconds < 2.0, later_seconds
    assert ready.status_code == 200 and ready.json()["redis"] == "unreachable"
