"""Who may do what: keys from request headers checked against a model's hashed keys.

Keys are read from ``X-API-Key``, ``Authorization: Bearer <key>``, and the seed's
``SSVM_Admin_Key`` / ``SSVM_Usage_Key`` headers (either spelling, ``_`` or ``-``). Rules:

* running a public model needs no key; a private one needs its usage key or its admin key;
* changing a model (replace, delete, config, privacy) needs its admin key; built-in models
  cannot be changed (403);
* uploading needs the server's upload token, unless uploads are open to all (a server bound to
  loopback without a token, or ``open_uploads``): :func:`authorize_upload` names the uploader;
* a private model's metadata (listing, show) is shown only to the holders of its keys: listings
  leave it out for anyone else, and showing it without a key is 401, with another key 403.

No key presented where one is needed: 401; keys presented but none fits: 403.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from facefaas.errors import AuthError, ForbiddenError
from facefaas.registry import ModelRecord
from facefaas.registry.keys import authorize, key_matches
from facefaas.server.uploads import token_identity

__all__ = [
    "authorize_admin",
    "authorize_upload",
    "authorize_use",
    "presented_keys",
    "verified_key",
]

_KEY_HEADERS = (
    "x-api-key",
    "ssvm_admin_key",
    "ssvm-admin-key",
    "ssvm_usage_key",
    "ssvm-usage-key",
)
# The seed's clients send this "usage key" for public functions; it is no key at all.
_SEED_PUBLIC_KEY = "00000000-0000-0000-0000-000000000000"


def presented_keys(request: Request) -> list[str]:
    """Every key the request presents, in header order, without duplicates."""
    keys: list[str] = []
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    for name in _KEY_HEADERS:
        for value in request.headers.getlist(name):
            value = value.strip()
            if value and value != _SEED_PUBLIC_KEY and value not in keys:
                keys.append(value)
    return keys


def verified_key(record: ModelRecord, keys: list[str]) -> str | None:
    """The first of ``keys`` that is the model's usage or admin key (``None``: none is).

    Every key is compared with both hashes, so the time taken does not tell which matched.
    """
    found = None
    for key in keys:
        matched = False
        for stored in (record.usage_key_hash, record.admin_key_hash):
            matched |= key_matches(key, stored)
        if matched and found is None:
            found = key
    return found


def authorize_use(record: ModelRecord, keys: list[str]) -> None:
    """Pass if ``keys`` may run the model (see the module docstring)."""
    if record.private:
        authorize(keys, [record.usage_key_hash, record.admin_key_hash], f"run model {record.id!r}")


def authorize_admin(record: ModelRecord, keys: list[str]) -> None:
    """Pass if ``keys`` hold the model's admin key."""
    if record.builtin:
        raise ForbiddenError(f"model {record.id!r} is built in and cannot be changed")
    authorize(keys, [record.admin_key_hash], f"change model {record.id!r}")


def authorize_upload(
    token: SecretStr | None, keys: list[str], *, address: str | None, open_to_all: bool
) -> str:
    """The uploader's identity, if ``keys`` hold the upload token (compared in constant time) or
    uploads are ``open_to_all`` (:mod:`facefaas.server.uploads`); quotas count against it.

    Raises:
        AuthError: uploads need the token and none was presented (401).
        ForbiddenError: the keys presented are not the token, or uploads are closed (403).
    """
    if token is not None:
        expected = token.get_secret_value().encode()
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(key.encode("utf-8", "surrogatepass"), expected)
        if matched:
            return token_identity(token.get_secret_value())
    if open_to_all:
        return f"address:{address or 'unknown'}"
    if token is None:
        raise ForbiddenError(
            "uploads are closed: this server listens beyond loopback without an upload token "
            "(its operator can set one, or open_uploads)"
        )
    if not keys:
        raise AuthError("uploading a model needs the server's upload token")
    raise ForbiddenError("the upload token presented is not this server's")
