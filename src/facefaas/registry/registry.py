"""`Registry`: the models a service can run, their metadata, keys and usage.

Metadata lives in a SQL database (SQLite in WAL mode by default, PostgreSQL for scale-out), the
weights in a content-addressed :class:`~facefaas.registry.store.ModelStore`. Ordering keeps the two
consistent across crashes: files are written (atomically) before the row is committed, and a row is
deleted before its files. A crash can therefore leave only unreferenced folders, which
:meth:`Registry.reconcile` removes at startup; an acknowledged upload is never lost.

All methods are blocking and thread-safe; the HTTP layer calls them from worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from facefaas.errors import ModelConflictError, ModelNotFoundError
from facefaas.models.builtin import BUILTIN_MODELS
from facefaas.models.bundle import MANIFEST_FILE
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry import keys
from facefaas.registry.records import (
    CreatedModel,
    ModelExistsError,
    ModelRecord,
    Usage,
    check_model_id,
    model_id_for,
)
from facefaas.registry.store import ModelStore
from facefaas.registry.tables import create_schema, make_engine, models

__all__ = ["Reconciliation", "Registry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciliation:
    """What :meth:`Registry.reconcile` found: store entries removed, rows whose files are gone."""

    removed: list[str]
    missing: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; everything we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _record(row: RowMapping) -> ModelRecord:
    return ModelRecord(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        sha256=row["sha256"],
        format=row["format"],
        builtin=bool(row["builtin"]),
        private=row["usage_key_hash"] is not None,
        parameters=dict(row["parameters"] or {}),
        config=dict(row["config"] or {}),
        created_at=_aware(row["created_at"]) or _now(),
        updated_at=_aware(row["updated_at"]) or _now(),
        usage=Usage(
            calls=int(row["calls"]),
            faces=int(row["faces"]),
            errors=int(row["errors"]),
            latency_ms_total=float(row["latency_ms_total"]),
            last_used_at=_aware(row["last_used_at"]),
        ),
        admin_key_hash=row["admin_key_hash"],
        usage_key_hash=row["usage_key_hash"],
    )


class Registry:
    """Models by id. Open one with :meth:`open`; close it with :meth:`close`."""

    def __init__(self, engine: Engine, store: ModelStore) -> None:
        self.engine = engine
        self.store = store

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> Registry:
        """Open (creating as needed) the registry of ``data_dir``; see ``Settings.database_url``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{(data_dir / 'registry.sqlite3').resolve()}"
        engine = make_engine(url)
        create_schema(engine)
        registry = cls(engine, ModelStore(data_dir / "models"))
        registry._ensure_builtins()
        return registry

    def close(self) -> None:
        self.engine.dispose()

    # -- reading ---------------------------------------------------------------------------

    def get(self, model_id: str) -> ModelRecord:
        """The model with that id. Raises ModelNotFoundError."""
        check_model_id(model_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(models).where(models.c.id == model_id)).mappings().first()
        if row is None:
            raise ModelNotFoundError(f"no model with id {model_id!r}")
        return _record(row)

    def list(self) -> list[ModelRecord]:
        """Every model, built-in ones first, then by creation time."""
        order = (models.c.builtin.desc(), models.c.created_at, models.c.id)
        query = sa.select(models).order_by(*order)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def bundle_path(self, record: ModelRecord) -> Path:
        """The bundle folder holding the record's weights. Raises ModelNotFoundError if gone."""
        if record.builtin:
            return BUILTIN_MODELS[record.id]
        if not self.store.has(record.sha256):
            raise ModelNotFoundError(f"model {record.id!r}: its files are missing from the store")
        return self.store.path(record.sha256)

    # -- writing ---------------------------------------------------------------------------

    def create(
        self,
        weights: MtcnnWeights,
        manifest: ModelManifest,
        *,
        source_format: str,
        name: str | None = None,
        description: str | None = None,
        private: bool = False,
    ) -> CreatedModel:
        """Register new weights; the id is derived from their digest.

        Raises:
            ModelConflictError: a model with that id exists (the same weights were uploaded).
        """
        sha256 = weights.digest()
        model_id = model_id_for(sha256)
        if self._exists(model_id):
            raise self._conflict(model_id)
        admin_key = keys.new_key(keys.ADMIN_PREFIX)
        usage_key = keys.new_key(keys.USAGE_PREFIX) if private else None
        self.store.put(weights, manifest)
        now = _now()
        values = {
            "id": model_id,
            "name": (name or manifest.name or f"model-{model_id}")[:200],
            "description": description if description is not None else manifest.description,
            "sha256": sha256,
            "format": source_format or manifest.source_format or "unknown",
            "builtin": False,
            "admin_key_hash": keys.hash_key(admin_key),
            "usage_key_hash": keys.hash_key(usage_key) if usage_key else None,
            "parameters": manifest.parameters.to_dict(),
            "config": {},
            "created_at": now,
            "updated_at": now,
            "calls": 0,
            "faces": 0,
            "errors": 0,
            "latency_ms_total": 0.0,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(models.insert().values(**values))
        except IntegrityError:
            # Another worker registered the same weights between our check and our insert; the
            # folder is theirs too, so it stays.
            raise self._conflict(model_id) from None
        log.info("registry: created model %s (%s)", model_id, values["format"])
        return CreatedModel(self.get(model_id), admin_key=admin_key, usage_key=usage_key)

    def replace(
        self,
        model_id: str,
        weights: MtcnnWeights,
        manifest: ModelManifest,
        *,
        source_format: str,
        name: str | None = None,
        description: str | None = None,
    ) -> ModelRecord:
        """Give an existing model new weights (and optionally a new name/description); same id."""
        old = self._mutable(model_id)
        sha256 = self.store.put(weights, manifest)
        changes: dict[str, Any] = {
            "sha256": sha256,
            "format": source_format or manifest.source_format or old.format,
            "parameters": manifest.parameters.to_dict(),
            "updated_at": _now(),
        }
        if name:
            changes["name"] = name[:200]
        if description is not None:
            changes["description"] = description
        self._update(model_id, changes)
        self._drop_if_unused(old.sha256)
        log.info("registry: replaced the weights of model %s", model_id)
        return self.get(model_id)

    def delete(self, model_id: str) -> None:
        """Remove a model, then its files if no other model uses the same weights."""
        record = self._mutable(model_id)
        with self.engine.begin() as conn:
            conn.execute(models.delete().where(models.c.id == model_id))
        self._drop_if_unused(record.sha256)
        log.info("registry: deleted model %s", model_id)

    def make_private(self, model_id: str) -> str:
        """Give the model a new usage key (replacing any old one) and return it."""
        self._mutable(model_id)
        usage_key = keys.new_key(keys.USAGE_PREFIX)
        self._update(model_id, {"usage_key_hash": keys.hash_key(usage_key), "updated_at": _now()})
        return usage_key

    def make_public(self, model_id: str) -> None:
        """Drop the usage key: anyone may run the model."""
        self._mutable(model_id)
        self._update(model_id, {"usage_key_hash": None, "updated_at": _now()})

    def set_config(self, model_id: str, config: Mapping[str, Any]) -> ModelRecord:
        """Replace the model's run defaults (validated by the caller)."""
        self._mutable(model_id)
        self._update(model_id, {"config": dict(config), "updated_at": _now()})
        return self.get(model_id)

    def record_usage(
        self, model_id: str, *, calls: int, faces: int, errors: int, latency_ms: float
    ) -> None:
        """Add to a model's usage counters (atomically; a deleted model is ignored)."""
        with self.engine.begin() as conn:
            conn.execute(
                models.update()
                .where(models.c.id == model_id)
                .values(
                    calls=models.c.calls + calls,
                    faces=models.c.faces + faces,
                    errors=models.c.errors + errors,
                    latency_ms_total=models.c.latency_ms_total + latency_ms,
                    last_used_at=_now(),
                )
            )

    # -- startup ---------------------------------------------------------------------------

    def reconcile(self) -> Reconciliation:
        """Remove store entries no row uses; report rows whose files are gone.

        Run it once at startup, before serving (uploads in progress would look orphaned).
        """
        records = [r for r in self.list() if not r.builtin]
        removed = self.store.clean({r.sha256 for r in records})
        missing = [r.id for r in records if not self.store.has(r.sha256)]
        for model_id in missing:
            log.error("registry: model %s has no files in %s", model_id, self.store.root)
        return Reconciliation(removed=removed, missing=missing)

    def _ensure_builtins(self) -> None:
        for model_id, path in BUILTIN_MODELS.items():
            manifest = ModelManifest.from_json((path / MANIFEST_FILE).read_bytes())
            values = {
                "name": manifest.name,
                "description": manifest.description,
                "sha256": manifest.weights_sha256,
                "format": "builtin",
                "builtin": True,
                "parameters": manifest.parameters.to_dict(),
            }
            try:
                current = self.get(model_id)
            except ModelNotFoundError:
                now = _now()
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            models.insert().values(
                                id=model_id, config={}, created_at=now, updated_at=now,
                                calls=0, faces=0, errors=0, latency_ms_total=0.0, **values,
                            )
                        )  # fmt: skip
                except IntegrityError:
                    pass  # another worker inserted it first: same values
                continue
            if current.sha256 != manifest.weights_sha256 or not current.builtin:
                self._update(model_id, {**values, "updated_at": _now()})

    # -- helpers ---------------------------------------------------------------------------

    def _exists(self, model_id: str) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(models.c.id).where(models.c.id == model_id)
            return conn.execute(query).first() is not None

    def _mutable(self, model_id: str) -> ModelRecord:
        record = self.get(model_id)
        if record.builtin:
            raise ModelConflictError(f"model {model_id!r} is built in and cannot be changed")
        return record

    def _update(self, model_id: str, values: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(models.update().where(models.c.id == model_id).values(**values))
        if result.rowcount == 0:
            raise ModelNotFoundError(f"no model with id {model_id!r}")

    def _drop_if_unused(self, sha256: str) -> None:
        with self.engine.connect() as conn:
            query = (
                sa.select(sa.func.count())
                .select_from(models)
                .where(models.c.sha256 == sha256, models.c.builtin.is_(False))
            )
            users = conn.execute(query).scalar_one()
        if users == 0 and self.store.has(sha256):
            self.store.remove(sha256)

    @staticmethod
    def _conflict(model_id: str) -> ModelExistsError:
        return ModelExistsError(
            f"a model with these weights is already registered as {model_id!r}", model_id=model_id
        )

    def __repr__(self) -> str:
        return f"Registry({self.engine.url!r}, store={str(self.store.root)!r})"
