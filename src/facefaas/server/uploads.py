"""Who may upload, as whom, and what makes two upload requests the same.

* **Who**: a request that presents the server's upload token; anyone, when uploads are open: the
  server is bound to loopback and has no upload token (only this machine can reach it), or the
  operator opened them (``open_uploads``). Otherwise uploading is 401/403.
* **As whom** (the identity quotas count against): ``token:<digest of the token>`` for the token,
  else ``address:<client address>``.
* **The same request** (:func:`request_digest`): the same files (names and bytes) and fields. A
  retry with the same ``Idempotency-Key`` must be the same request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence

from facefaas.settings import Settings

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "bound_to_loopback",
    "request_digest",
    "token_identity",
    "uploads_open",
]

# 16 to 255 visible ASCII characters: a UUID fits; short guessable keys do not.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{16,255}$"


def bound_to_loopback(host: str) -> bool:
    """Whether ``host`` (the address the server binds) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def uploads_open(settings: Settings) -> bool:
    """Whether anyone may upload without the token (module docstring)."""
    if settings.open_uploads:
        return True
    return settings.upload_token is None and bound_to_loopback(settings.host)


def token_identity(token: str) -> str:
    """The identity of uploads made with ``token``; the token itself is never stored."""
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def request_digest(files: Sequence[tuple[str | None, bytes]], fields: dict[str, object]) -> str:
    """SHA-256 of an upload request: each file's name and bytes, in order, and the fields."""
    h = hashlib.sha256()
    for name, data in files:
        encoded = (name or "").encode("utf-8", "surrogatepass")
        h.update(len(encoded).to_bytes(8, "big") + encoded)
        h.update(len(data).to_bytes(8, "big") + hashlib.sha256(data).digest())
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return h.hexdigest()
