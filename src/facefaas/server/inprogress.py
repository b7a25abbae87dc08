"""`UploadsInProgress`: the Idempotency-Keys whose first upload request is still being served.

A retry of an upload that is still importing must not import it a second time: it is answered
409 (``idempotency-in-progress``, ``Retry-After``) until the first one ends. The retry may reach
another process or replica than the first request, so with ``redis_url`` set the mark is a Redis
key (``facefaas:uploads-in-progress:<digest of owner and key>``, ``SET NX`` with a lifetime, so a
process killed mid-upload cannot hold it for ever), removed by its holder only (compare and
delete). Without Redis it is a set in this process's memory.

When Redis fails the mark is kept in this process only (*fail open*): the registry's database
still records each Idempotency-Key once (a unique column), so a duplicate that gets through
costs one import and is then answered with the first request's model (:meth:`Registry.replay`);
refusing every upload while Redis is down would cost far more.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facefaas.server.redis_link import RedisLink

__all__ = ["UploadsInProgress"]

# Delete the mark only if it is still ours (it may have expired and been taken by another).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class UploadsInProgress:
    """Marks of ``(owner, Idempotency-Key)``; a Redis mark lives at most ``ttl`` seconds."""

    def __init__(self, redis: RedisLink | None, *, ttl: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1000, int(ttl * 1000))
        self._local: set[str] = set()
        self._tokens: dict[str, str] = {}  # our Redis marks: name -> the token stored there

    @staticmethod
    def _name(owner: str, key: str) -> str:
        text = f"{owner}\0{key}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(text).hexdigest()[:40]

    async def begin(self, owner: str, key: str) -> bool:
        """Mark the key in progress; ``False`` if it already is (here or in another process)."""
        name = self._name(owner, key)
        if name in self._local:
            return False
        redis = self._redis
        if redis is not None and redis.available:
            token = secrets.token_hex(16)
            try:
                async with redis.bounded():
                    taken = await redis.client.set(
                        redis.key("uploads-in-progress", name), token, nx=True, px=self._ttl_ms
                    )
            except redis.errors as exc:
                redis.failed("uploads_in_progress", exc)
            else:
                redis.succeeded()
                if not taken:
                    return False
                self._tokens[name] = token
        self._local.add(name)
        return True

    async def end(self, owner: str, key: str) -> None:
        """Remove the mark :meth:`begin` set (a Redis mark this process no longer reaches
        expires on its own)."""
        name = self._name(owner, key)
        self._local.discard(name)
        token = self._tokens.pop(name, None)
        redis = self._redis
        if token is None or redis is None or not redis.available:
            return
        try:
            async with redis.bounded():
                await redis.client.eval(_RELEASE, 1, redis.key("uploads-in-progress", name), token)
        except redis.errors as exc:
            redis.failed("uploads_in_progress", exc)
        else:
            redis.succeeded()
