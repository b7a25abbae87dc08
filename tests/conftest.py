"""Shared test fixtures.

Third-party evaluation images stay in ``../shared`` (licences): tests that need them take the
``shared`` fixture, which skips with the reason when that folder is absent. PostgreSQL and Redis
are real throwaway servers (``postgres_url``, ``redis_url``, and ``database_url`` /
``counter_store`` to run a test on each backend), skipped with the reason where absent.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from throwaway_servers import PostgresCluster, RedisServer, Unavailable

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ``../shared`` folder (eval images, golden outputs, model files)."""
    if not (SHARED / "data" / "mtcnn.pb").is_file():
        pytest.skip(f"{SHARED} is absent: third-party test data is read from there, never shipped")
    return SHARED


# -- throwaway PostgreSQL and Redis (tests/throwaway_servers.py) ------------------------------
# One server of each per session, started on first use; each test gets a clean slate of its
# own (a new database, an emptied Redis). `database_url` and `counter_store` run a test once per
# backend: the embedded one (SQLite, this process's memory) and the shared one (PostgreSQL,
# Redis), which skips, saying why, where its server cannot be started here.


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster().start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database of the session's cluster."""
    name = postgres_cluster.new_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry/jobs database URL of each backend: SQLite in ``tmp_path``, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer().start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL (with its password) of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def start_redis() -> Iterator[Callable[[], RedisServer]]:
    """``start_redis()``: a Redis of this test's own, which it may stop and start again."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        try:
            server = RedisServer()
        except Unavailable as exc:
            pytest.skip(str(exc))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
def counter_store(request: pytest.FixtureRequest) -> str | None:
    """Where shared counts live, for each backend: ``None`` (this process's memory), then the
    URL of an emptied Redis (``Settings.redis_url``)."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For tests whose URLs name other addresses (refused by the fetch guard before it connects):
    a connection anywhere but loopback, from this process, fails the test."""
    real = socket.create_connection
    attempted: list[object] = []

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host = address[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            attempted.append(address)
            raise ConnectionRefusedError(f"test guard: no connection to {host} (loopback only)")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    yield
    assert not attempted, f"connections were attempted outside loopback: {attempted}"
