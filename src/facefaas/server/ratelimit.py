"""`RateLimiter`: request limits per client (moving window, from the ``limits`` library).

Who a client is must not be up to the client: a key identifies one only once it is *verified*,
i.e. it opens the model the request calls (its usage or admin key). Every other request, one
with no key, an invented key or another model's key, counts against its IP address. So sending a
new random ``X-API-Key`` with each request escapes nothing. Verified keys have their own limit
(``key_rate_limit``), so clients with keys behind one address do not share its allowance.

Where the counts live: a limit is about fairness between clients, so it must hold for the whole
service, not per process. With ``redis_url`` set they are counted in Redis (``limits``' Redis
storage, keys ``facefaas:limits:...``), shared by every worker and replica: ``600/minute`` is
600 a minute for the fleet. Without it, in this process's memory (each worker of
``facefaas serve --workers N`` then allows the limit on its own).

When Redis fails, the limiter *fails open to this process*: it counts in its own memory, as
without Redis, until Redis answers again (:mod:`.redis_link`: a logged warning, the
``facefaas_redis_errors_total{use="rate_limit"}`` metric). A rate limit protects capacity from one
greedy client; refusing everyone (fail closed) would turn a Redis outage into a service outage,
while letting everyone through unlimited (plain fail open) would drop the protection exactly
when something is already wrong. Counting per process keeps a bound: at most the limit times the
number of processes.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facefaas.errors import RateLimitedError

if TYPE_CHECKING:
    from limits.aio.strategies import MovingWindowRateLimiter as SharedStrategy

    from facefaas.server.redis_link import RedisLink

__all__ = ["RateLimiter"]


class RateLimiter:
    """Limits like ``"600/minute"`` or ``"10/second;1000/hour"``; ``""`` allows everything.

    ``key_spec`` is the limit of verified keys (``None``: the same as ``spec``). ``redis``: count
    in Redis, shared by every process using it (module docstring); ``None``: in this process.
    """

    def __init__(
        self, spec: str, key_spec: str | None = None, *, redis: RedisLink | None = None
    ) -> None:
        self.spec = spec
        self._items = parse_many(spec) if spec.strip() else []
        key_spec = spec if key_spec is None else key_spec
        self._key_items = parse_many(key_spec) if key_spec.strip() else []
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._redis = redis
        self._shared = _shared_strategy(redis) if redis is not None else None

    @property
    def enabled(self) -> bool:
        return bool(self._items or self._key_items)

    @property
    def shared(self) -> bool:
        """Whether the counts are kept in Redis, across processes."""
        return self._shared is not None

    @staticmethod
    def address_id(address: str | None) -> str:
        return f"ip:{address or 'unknown'}"

    @staticmethod
    def key_id(key: str) -> str:
        """The identity of a verified key: a digest, so the key itself is never stored here."""
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    async def hit(self, client: str) -> None:
        """Count one request of ``client`` (an :meth:`address_id` or :meth:`key_id`).

        Raises:
            RateLimitedError: over a limit (429, with ``retry_after`` in seconds).
        """
        items = self._key_items if client.startswith("key:") else self._items
        for item in items:
            reset_at = await self._count(item, client)
            if reset_at is not None:
                wait = max(1, math.ceil(reset_at - time.time()))
                raise RateLimitedError(
                    f"rate limit of {item} exceeded; retry in {wait} s", retry_after=wait
                )

    async def _count(self, item: RateLimitItem, client: str) -> float | None:
        """Count one hit: ``None`` if within ``item``, else when (Unix time) a place frees up."""
        redis, shared = self._redis, self._shared
        if redis is not None and shared is not None and redis.available:
            try:
                async with redis.bounded():
                    if await shared.hit(item, client):
                        reset_at = None
                    else:
                        reset_at = (await shared.get_window_stats(item, client)).reset_time
            except redis.errors as exc:
                redis.failed("rate_limit", exc)
            else:
                redis.succeeded()
                return reset_at
        if self._local.hit(item, client):
            return None
        return self._local.get_window_stats(item, client).reset_time


def _shared_strategy(redis: RedisLink) -> SharedStrategy:
    """The moving window over ``limits``' asyncio Redis storage, on the link's connections."""
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter as SharedStrategy

    # limits picks its storage by scheme (the connections themselves come from the pool).
    scheme, rest = redis.url.split("://", 1)
    uri = f"async+{'redis+unix' if scheme == 'unix' else scheme}://{rest}"
    storage = RedisStorage(
        uri,
        implementation="redispy",
        key_prefix=redis.key("limits"),
        wrap_exceptions=True,
        connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]  # options: any
    )
    return SharedStrategy(storage)
