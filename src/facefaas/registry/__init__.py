"""The model registry: upload a model, get an id, run it by id.

:class:`Registry` keeps metadata, hashed keys and usage counters in SQL (SQLite by default,
PostgreSQL for scale-out) and the weights in a content-addressed :class:`ModelStore`.
"""

from facefaas.registry.records import (
    CreatedModel,
    ModelExistsError,
    ModelRecord,
    Usage,
    check_model_id,
    model_id_for,
)
from facefaas.registry.registry import Reconciliation, Registry
from facefaas.registry.store import ModelStore

__all__ = [
    "CreatedModel",
    "ModelExistsError",
    "ModelRecord",
    "ModelStore",
    "Reconciliation",
    "Registry",
    "Usage",
    "check_model_id",
    "model_id_for",
]
