"""`RateLimiter`: request limits per client (moving window, from the ``limits`` library).

Who a client is must not be up to the client: a key identifies one only once it is *verified*,
i.e. it opens the model the request calls (its usage or admin key). Every other request, one
with no key, an invented key or another model's key, counts against its IP address. So sending a
new random ``X-API-Key`` with each request escapes nothing. Verified keys have their own limit
(``key_rate_limit``), so clients with keys behind one address do not share its allowance.

Limits are counted in this process's memory: with several workers each counts separately (set
the limit per worker, or put a shared ``limits`` storage behind it when scaling out).
"""

from __future__ import annotations

import hashlib
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facefaas.errors import RateLimitedError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Limits like ``"600/minute"`` or ``"10/second;1000/hour"``; ``""`` allows everything.

    ``key_spec`` is the limit of verified keys (``None``: the same as ``spec``).
    """

    def __init__(self, spec: str, key_spec: str | None = None) -> None:
        self.spec = spec
        self._items = parse_many(spec) if spec.strip() else []
        key_spec = spec if key_spec is None else key_spec
        self._key_items = parse_many(key_spec) if key_spec.strip() else []
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        return bool(self._items or self._key_items)

    @staticmethod
    def address_id(address: str | None) -> str:
        return f"ip:{address or 'unknown'}"

    @staticmethod
    def key_id(key: str) -> str:
        """The identity of a verified key: a digest, so the key itself is never stored here."""
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def hit(self, client: str) -> None:
        """Count one request of ``client`` (an :meth:`address_id` or :meth:`key_id`).

        Raises:
            RateLimitedError: over a limit (429, with ``retry_after`` in seconds).
        """
        items = self._key_items if client.startswith("key:") else self._items
        for item in items:
            if not self._strategy.hit(item, client):
                raise self._limited(item, client)

    def _limited(self, item: RateLimitItem, client: str) -> RateLimitedError:
        stats = self._strategy.get_window_stats(item, client)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitedError(
            f"rate limit of {item} exceeded; retry in {wait} s", retry_after=wait
        )
