"""Standard Webhooks (https://www.standardwebhooks.com): secrets, signatures, event bodies.

A secret is ``whsec_`` + base64 of 24 random bytes; the HMAC key is those bytes. A delivery
carries ``webhook-id`` (the event's id: the same on every retry, so receivers drop duplicates),
``webhook-timestamp`` (seconds, of this attempt) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["new_secret", "sign", "signature_headers", "verify"]

_PREFIX = "whsec_"


def new_secret() -> str:
    return _PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one delivery."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether ``headers`` (lower-case names) sign ``body`` with ``secret`` (any of the
    space-separated ``v1,`` signatures)."""
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(
        hmac.compare_digest(given, expected) for given in headers["webhook-signature"].split()
    )
