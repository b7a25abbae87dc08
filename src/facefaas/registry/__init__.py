"""The model registry: upload a model, get an id, run it by id.

:class:`Registry` keeps metadata, hashed keys and usage counters in SQL (SQLite by default,
PostgreSQL for scale-out) and the weights in a content-addressed :class:`ModelStore`.
"""

from facefaas.registry.records import (
    CreatedModel,
    Creation,
    ModelRecord,
    UploadQuota,
    Usage,
    check_model_id,
    new_model_id,
)
from facefaas.registry.registry import Reconciliation, Registry
from facefaas.registry.store import ModelStore

__all__ = [
    "CreatedModel",
    "Creation",
    "ModelRecord",
    "ModelStore",
    "Reconciliation",
    "Registry",
    "UploadQuota",
    "Usage",
    "check_model_id",
    "new_model_id",
]
