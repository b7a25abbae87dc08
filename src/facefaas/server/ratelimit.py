"""`RateLimiter`: per-client request limits (moving window, from the ``limits`` library).

A client is its API key when it presents one (so a key is limited wherever it calls from),
otherwise its IP address. Limits are counted in this process's memory: with several workers each
counts separately (set the limit per worker, or put a shared ``limits`` storage behind it when
scaling out).
"""

from __future__ import annotations

import hashlib
import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facefaas.errors import RateLimitedError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Limits like ``"600/minute"`` or ``"10/second;1000/hour"``; ``""`` allows everything."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._items = parse_many(spec) if spec.strip() else []
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        return bool(self._items)

    @staticmethod
    def client_id(keys: list[str], address: str | None) -> str:
        """The identity to count: a digest of the first key presented, else the address."""
        if keys:
            return (
                "key:" + hashlib.sha256(keys[0].encode("utf-8", "surrogatepass")).hexdigest()[:32]
            )
        return f"ip:{address or 'unknown'}"

    def hit(self, client: str) -> None:
        """Count one request of ``client``. Raises RateLimitedError (429) over a limit."""
        for item in self._items:
            if not self._strategy.hit(item, client):
                stats = self._strategy.get_window_stats(item, client)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimitedError(
                    f"rate limit of {item} exceeded; retry in {wait} s", retry_after=wait
                )
