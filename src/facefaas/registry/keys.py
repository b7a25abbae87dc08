"""API keys: random tokens shown once, stored as SHA-256 hashes, compared in constant time.

A model has an admin key (replace, delete, configure, change privacy) and, when private, a usage
key (run it). The admin key may also run the model. Keys are 256-bit random tokens, so a plain
SHA-256 is enough to store them: there is nothing to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from facefaas.errors import AuthError, ForbiddenError

__all__ = [
    "ADMIN_PREFIX",
    "USAGE_PREFIX",
    "authorize",
    "hash_key",
    "key_matches",
    "new_key",
]

ADMIN_PREFIX = "ffa_"
USAGE_PREFIX = "ffu_"


def new_key(prefix: str) -> str:
    """A fresh random key, e.g. ``ffa_Xq3...`` (prefix + 43 URL-safe characters)."""
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, 64 hex characters."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_matches(key: str | None, stored_hash: str | None) -> bool:
    """Whether ``key`` hashes to ``stored_hash``; constant-time, ``False`` when either is absent."""
    if not key or not stored_hash:
        return False
    return hmac.compare_digest(hash_key(key), stored_hash)


def authorize(keys: list[str], accepted_hashes: list[str | None], action: str) -> None:
    """Pass when one of the presented ``keys`` matches one of ``accepted_hashes``.

    Raises:
        AuthError: no key was presented (401).
        ForbiddenError: keys were presented but none is accepted (403).
    """
    if not keys:
        raise AuthError(f"{action} needs a key (X-API-Key or Authorization: Bearer)")
    # Check every pair so the time taken does not depend on which key matched.
    matched = False
    for key in keys:
        for stored in accepted_hashes:
            matched |= key_matches(key, stored)
    if not matched:
        raise ForbiddenError(f"the key presented may not {action}")
