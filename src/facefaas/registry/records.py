"""What the registry takes and returns: `ModelRecord`, `Usage`, `CreatedModel`, `Creation`,
`UploadQuota`, and model ids.

A model id is a built-in name (``mtcnn``) or 16 random hex characters given at upload: an id says
nothing about the weights (their digest is the record's ``sha256``), so no upload can take, guess
or block another's id. The same weights uploaded twice are two models; replacing a model's
weights keeps its id and touches no other model.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facefaas.errors import ModelNotFoundError

__all__ = [
    "ID_LENGTH",
    "CreatedModel",
    "Creation",
    "ModelRecord",
    "UploadQuota",
    "Usage",
    "check_model_id",
    "new_model_id",
]

ID_LENGTH = 16
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def new_model_id() -> str:
    """A fresh random id: 16 lowercase hex characters (64 bits)."""
    return secrets.token_hex(ID_LENGTH // 2)


def check_model_id(model_id: str) -> str:
    """Return ``model_id`` if it is well formed (lowercase letters, digits, ``_.-``), else 404."""
    if not _MODEL_ID.match(model_id):
        raise ModelNotFoundError(f"no model with id {model_id[:80]!r}")
    return model_id


@dataclass(frozen=True)
class Creation:
    """Who creates a model and how a retry of the same request finds it again.

    ``owner`` is the uploader's identity (``"token:..."``, ``"address:..."``), charged with the
    model in its quota. ``request_digest`` is a SHA-256 of the request (files and fields).
    ``idempotency_key`` is the client's ``Idempotency-Key``, if it sent one; the registry keeps
    only a hash of it with the owner.
    """

    owner: str
    request_digest: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class UploadQuota:
    """What one owner may keep (models, bytes of bundles) and all uploads together (bytes)."""

    models: int
    bytes: int
    storage_bytes: int


@dataclass(frozen=True)
class Usage:
    """Counters of one model over its lifetime (all workers). Latency is milliseconds."""

    calls: int = 0
    faces: int = 0
    errors: int = 0
    latency_ms_total: float = 0.0
    last_used_at: datetime | None = None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.calls if self.calls else None


@dataclass(frozen=True)
class ModelRecord:
    """One registered model.

    ``parameters`` are the manifest's recommended detection parameters; ``config`` the per-model
    run defaults set by its admin (a subset of ``min_size``, ``thresholds``, ``factor``,
    ``max_faces``, ``score_threshold``). Key hashes never leave the registry and server layers.
    """

    id: str
    name: str
    description: str
    sha256: str
    format: str
    builtin: bool
    private: bool
    parameters: dict[str, Any]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    usage: Usage
    admin_key_hash: str | None = field(default=None, repr=False)
    usage_key_hash: str | None = field(default=None, repr=False)
    family: str = "mtcnn"
    """The model's detector family (:mod:`facefaas.families`)."""


@dataclass(frozen=True)
class CreatedModel:
    """A new model and its keys, which exist in clear only here: show them once.

    ``replayed``: the model was created by an earlier request with the same Idempotency-Key;
    its keys were issued again (the earlier ones no longer work).
    """

    record: ModelRecord
    admin_key: str
    usage_key: str | None
    replayed: bool = False
