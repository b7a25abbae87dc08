"""Throwaway PostgreSQL and Redis servers for the tests (the fixtures are in ``conftest.py``).

Each is a real server process of its own, started in a temporary folder, bounded in memory and
reachable only from this machine: PostgreSQL on a Unix socket in its folder (no TCP at all),
Redis on a free loopback port with a password. Tests never use a system service. A missing
server program is a :class:`Unavailable` with the reason, which the fixtures turn into a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresCluster", "RedisServer", "Unavailable"]

_START_SECONDS = 30.0


class Unavailable(Exception):
    """The server cannot be started here (not installed, refused to start); the message says
    why."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on a loopback port: no persistence, 64 MiB at most, a password.

    :meth:`stop` and :meth:`start` again keep the port and the password, so a client configured
    with :attr:`url` sees the same server go away and come back (empty: nothing is saved).
    """

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise Unavailable(
                "redis-server is not installed (make install-dev: .ci/install-redis.sh)"
            )
        try:
            import redis  # noqa: F401  (the clients the service and the tests use)
        except ImportError:
            raise Unavailable("the redis package (the redis extra) is not installed") from None
        self.password = secrets.token_hex(12)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or start again) and wait until it answers; raises :class:`Unavailable`."""
        for _ in range(3):  # a free port can be taken by someone else before redis binds it
            port = self.port or _free_port()
            assert self.binary is not None
            # The password goes on stdin as a config line, not in argv where `ps` shows it.
            process = subprocess.Popen(
                [self.binary, "-", "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--maxmemory", "64mb",
                 "--protected-mode", "yes", "--loglevel", "warning"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            assert process.stdin is not None
            process.stdin.write(f"requirepass {self.password}\n".encode())
            process.stdin.close()
            if self._wait(process, port):
                self.port, self.process = port, process
                return self
            process.kill()
            process.wait()
        raise Unavailable("redis-server did not start on a loopback port")

    def _wait(self, process: subprocess.Popen[bytes], port: int) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=1)
        deadline = time.monotonic() + _START_SECONDS
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def flush(self) -> None:
        """Forget every key (a test's clean slate)."""
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, password=self.password) as client:
            client.flushall()

    def freeze(self) -> None:
        """Pause the server (SIGSTOP): connections still open, nothing answers (a hung Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and wait for it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


class PostgresCluster:
    """A throwaway PostgreSQL cluster (``initdb``, ``pg_ctl``) listening on a Unix socket only.

    One cluster serves a whole test session; each test gets a database of its own
    (:meth:`new_database`, ``CREATE DATABASE``: a file copy of the template, milliseconds).
    """

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("psycopg (the postgres extra) is not installed") from None
        self.initdb, self.pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise Unavailable("PostgreSQL's initdb/pg_ctl are not installed")
        if os.geteuid() == 0 and not shutil.which("runuser"):
            raise Unavailable("running as root without runuser to drop to the postgres user")
        # Not under pytest's tmp folder: that one is private to this user, and the server's
        # user may not be us.
        self.root = Path(tempfile.mkdtemp(prefix="facefaas-postgres-"))
        self.root.chmod(0o777)
        self.data, self.socket_dir = self.root / "data", self.root / "sock"
        self.started = False

    def start(self) -> PostgresCluster:
        """``initdb`` and start; raises :class:`Unavailable` (the folder removed) on failure."""
        self.socket_dir.mkdir()
        self.socket_dir.chmod(0o777)
        assert self.initdb is not None and self.pg_ctl is not None
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -p 5433 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB "
            "-c max_connections=200"
        )
        try:
            subprocess.run(
                _as_postgres([self.initdb, "-D", str(self.data), "-A", "trust", "-U", "facefaas",
                              "--no-sync"]),
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            subprocess.run(
                _as_postgres([self.pg_ctl, "-D", str(self.data), "-o", options, "-w", "-l",
                              str(self.root / "log"), "start"]),
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise Unavailable(f"could not start a PostgreSQL cluster: {exc}") from None
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database``."""
        return f"postgresql+psycopg://facefaas@/{database}?host={self.socket_dir}&port=5433"

    def _admin(self, statement: str) -> None:
        import psycopg

        dsn = f"host={self.socket_dir} port=5433 user=facefaas dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # names made here, not input

    def new_database(self) -> str:
        """A new, empty database; returns its name."""
        name = "t_" + secrets.token_hex(6)
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection a test left open."""
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.started:
            assert self.pg_ctl is not None
            subprocess.run(
                _as_postgres([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
                capture_output=True, timeout=60,
            )  # fmt: skip
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
