"""What the registry returns: `ModelRecord`, `Usage`, `CreatedModel`, and model ids.

A model id is ``mtcnn`` (built in) or the first 16 hex characters of the weights digest at upload,
so the same weights give the same id in every registry (upload, export and re-import elsewhere:
same id). Replacing a model's weights keeps its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facefaas.errors import ModelConflictError, ModelNotFoundError

__all__ = [
    "ID_LENGTH",
    "CreatedModel",
    "ModelExistsError",
    "ModelRecord",
    "Usage",
    "check_model_id",
    "model_id_for",
]

ID_LENGTH = 16
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def model_id_for(sha256: str) -> str:
    """The id given to an upload whose weights have digest ``sha256``."""
    return sha256[:ID_LENGTH]


def check_model_id(model_id: str) -> str:
    """Return ``model_id`` if it is well formed (lowercase letters, digits, ``_.-``), else 404."""
    if not _MODEL_ID.match(model_id):
        raise ModelNotFoundError(f"no model with id {model_id[:80]!r}")
    return model_id


class ModelExistsError(ModelConflictError):
    """The weights uploaded are already registered; ``model_id`` is the existing model (409)."""

    def __init__(self, message: str, *, model_id: str) -> None:
        super().__init__(message)
        self.model_id = model_id


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


@dataclass(frozen=True)
class CreatedModel:
    """A new model and its keys, which exist in clear only here: show them once."""

    record: ModelRecord
    admin_key: str
    usage_key: str | None
