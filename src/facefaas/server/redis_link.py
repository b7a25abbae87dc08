"""`RedisLink`: this process's connection to the Redis that counts for the whole fleet.

With ``redis_url`` set, the counts that must hold across service processes and replicas live in
Redis (docs/service.md, "Counting across processes"): rate limits (:mod:`.ratelimit`) and the
uploads in progress per Idempotency-Key (:mod:`.inprogress`). Their keys start with
:data:`KEY_PREFIX`, so one Redis can serve other applications too. One client (one connection
pool) per process serves them all, and every command is bounded by ``redis_timeout``.

The service degrades without Redis rather than fails on it. When a command fails, the caller
falls back to counting in this process (each module says why that is the right side to err on),
and this link logs one warning per outage (not one per request), counts
``facefaas_redis_errors_total{use}``, and sends nothing more to Redis for
:data:`RETRY_SECONDS`: an unreachable server then costs one timeout every few seconds, not one per
request. ``/readyz`` shows whether Redis answers, without turning unready over it (one Redis
down must not take every replica out of its load balancer).

The URL may hold a password: it is shown only through :func:`redact_url`, never logged whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["KEY_PREFIX", "RETRY_SECONDS", "RedisLink", "redact_url"]

log = logging.getLogger(__name__)

KEY_PREFIX = "facefaas"
RETRY_SECONDS = 2.0  # after a failure, counts stay in this process this long before Redis again


def redact_url(url: str) -> str:
    """``url`` fit to print: the password replaced by ``***`` and the query left out (redis-py
    reads a ``password`` from it too). ``redis://:s3@h:6379/0`` -> ``redis://:***@h:6379/0``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "redis://(unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    where = f"{host}:{port}" if port else host
    if parts.username or parts.password:
        user = parts.username or ""
        where = f"{user}:***@{where}" if parts.password else f"{user}@{where}"
    return f"{parts.scheme}://{where}{parts.path}"


def _secrets_of(url: str) -> list[str]:
    """The password of ``url``, in the authority or in the query (redis-py reads both)."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        return [parts.password or "", *query.get("password", [])]
    except ValueError:
        return []


class RedisLink:
    """One Redis client for this process, with the outage bookkeeping of the module docstring.

    ``on_error(use)`` is called once per failed command (the metric); ``use`` names the count
    (``"rate_limit"``, ``"uploads_in_progress"``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here: redis is an optional extra, needed only when redis_url is set.
        try:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError as exc:
            raise ImportError(
                "redis_url is set but the redis package is not installed: "
                "pip install 'facefaas[redis]'"
            ) from exc
        from limits.errors import StorageError

        self.url = url
        self.shown = redact_url(url)
        self.timeout = timeout
        self._secrets = [s for s in _secrets_of(url) if s]
        # One immediate retry: after a Redis restart the first command on an old pooled
        # connection fails, the retry reconnects. Never more: a dead server must fail fast.
        self.client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # What a failed exchange raises: redis-py's errors, limits' wrapper of them, a socket
        # error let through, the bound of bounded(). Callers catch these and count locally.
        self.errors: tuple[type[BaseException], ...] = (
            RedisError, StorageError, OSError, TimeoutError,
        )  # fmt: skip
        self._on_error = on_error
        self._clock = clock
        self._retry_at = 0.0
        self._down = False

    def bounded(self) -> asyncio.Timeout:
        """``async with link.bounded():`` one exchange with Redis, retry included, takes at most
        ``timeout`` seconds (:class:`TimeoutError` past it, one of :attr:`errors`)."""
        return asyncio.timeout(self.timeout)

    def key(self, *parts: str) -> str:
        """A key of ours: ``facefaas:<part>:<part>...``."""
        return ":".join((KEY_PREFIX, *parts))

    @property
    def available(self) -> bool:
        """Whether to send commands now (``False`` for a while after a failure)."""
        return self._clock() >= self._retry_at

    def failed(self, use: str, exc: BaseException) -> None:
        """Record a failed command of ``use``: counts stay in this process for a while."""
        self._retry_at = self._clock() + RETRY_SECONDS
        if self._on_error is not None:
            self._on_error(use)
        if not self._down:
            self._down = True
            log.warning(
                "Redis at %s failed (%s: %s); counting %s in this process only until it answers",
                self.shown, type(exc).__name__, self._scrub(str(exc)), use,
            )  # fmt: skip

    def _scrub(self, text: str) -> str:
        """``text`` (an error message) with the URL's password, should it be there, masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def succeeded(self) -> None:
        """Record a command that Redis answered."""
        if self._down:
            self._down = False
            log.warning("Redis at %s answers again; counting across processes again", self.shown)

    async def ping(self) -> bool:
        """Whether Redis answers a ``PING`` (``/readyz``), in ``timeout`` seconds at most; just
        ``False`` while a recent failure keeps commands off Redis (a probe must stay fast)."""
        if not self.available:
            return False
        try:
            async with self.bounded():
                await self.client.ping()
        except self.errors as exc:
            self.failed("health", exc)
            return False
        self.succeeded()
        return True

    async def aclose(self) -> None:
        await self.client.aclose()
