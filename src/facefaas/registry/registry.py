"""`Registry`: the models a service can run, their metadata, keys and usage.

Metadata lives in a SQL database (SQLite in WAL mode by default, PostgreSQL for scale-out), the
weights in a content-addressed :class:`~facefaas.registry.store.ModelStore`. Ordering keeps the two
consistent across crashes: files are written (atomically, then the folder entry synced) before the
row is committed, and a row is deleted before its files. A crash can therefore leave only
unreferenced folders, which :meth:`Registry.reconcile` removes at startup; an acknowledged upload
is never lost. Models with the same weights share one folder; writing a folder and committing its
row, and counting a folder's rows and removing it, hold one file lock (``.store.lock``), so one
model's deletion can never remove the files of another's upload in progress.

With shared files (``shared_files``: the default on PostgreSQL) the bundles live in the database
too (:mod:`~facefaas.registry.blobs`): published in the transaction that commits the model's row,
so a model is callable through every replica the moment its row is visible, and deleted in the
transaction that finds their digest unused, under a row lock on their blobs (the file lock only
covers one data folder; the row lock covers every machine). A replaced or deleted model reaches
every process at once without any notification: each request reads the model's row (``get``), a
deleted model is a 404 there, and a replaced one has a new ``sha256``, the key of both the local
bundle folder and the service's detector cache.

Ids are random (:func:`~facefaas.registry.records.new_model_id`). An upload's row in ``uploads``
(committed in the same transaction as the model) records its owner and size, for quotas, and a
hash of its ``Idempotency-Key``: a retry of a request whose answer was lost finds the model
(:meth:`Registry.replay`) instead of creating another.

All methods are blocking and thread-safe; the HTTP layer calls them from worker threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from facefaas.errors import (
    IdempotencyKeyReusedError,
    ModelConflictError,
    ModelNotFoundError,
    QuotaExceededError,
    StorageFullError,
)
from facefaas.models.builtin import BUILTIN_MODELS
from facefaas.models.bundle import MANIFEST_FILE
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry import keys
from facefaas.registry.blobs import BlobStore, SharedFiles, uses_database
from facefaas.registry.permissions import private_folder, private_sqlite_file
from facefaas.registry.records import (
    CreatedModel,
    Creation,
    ModelRecord,
    UploadQuota,
    Usage,
    check_model_id,
    new_model_id,
)
from facefaas.registry.store import ModelStore
from facefaas.registry.tables import create_schema, make_engine, models, uploads

__all__ = ["Reconciliation", "Registry"]

log = logging.getLogger(__name__)

# How long a retry with the same Idempotency-Key finds the model it created; after that the key
# may be used again for a new model.
IDEMPOTENCY_WINDOW = timedelta(hours=24)
_ID_ATTEMPTS = 4  # 64-bit random ids: a second attempt is already astronomically rare


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
        family=row["family"] or "mtcnn",
    )


class Registry:
    """Models by id. Open one with :meth:`open`; close it with :meth:`close`."""

    def __init__(self, engine: Engine, store: ModelStore) -> None:
        self.engine = engine
        self.store = store

    @classmethod
    def open(
        cls, data_dir: Path, database_url: str | None = None, shared_files: SharedFiles = "auto"
    ) -> Registry:
        """Open (creating as needed) the registry of ``data_dir``; see ``Settings.database_url``
        and ``Settings.shared_files`` (bundles in the database: :mod:`.blobs`)."""
        private_folder(data_dir)
        url = database_url or f"sqlite:///{(data_dir / 'registry.sqlite3').resolve()}"
        private_sqlite_file(url)
        engine = make_engine(url)
        create_schema(engine)
        blobs = BlobStore(engine) if uses_database(shared_files, database_url) else None
        registry = cls(engine, ModelStore(data_dir / "models", blobs))
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

    def visible(
        self, presented: Sequence[str], *, offset: int = 0, limit: int = 100
    ) -> list[ModelRecord]:
        """The models that holders of the ``presented`` keys may see, in :meth:`list`'s order:
        every public model, and each private one whose usage or admin key was presented.

        ``offset`` and ``limit`` select a page of that list.
        """
        hashes = [keys.hash_key(key) for key in presented]
        shown = sa.or_(
            models.c.usage_key_hash.is_(None),
            models.c.usage_key_hash.in_(hashes),
            models.c.admin_key_hash.in_(hashes),
        )
        order = (models.c.builtin.desc(), models.c.created_at, models.c.id)
        query = sa.select(models).where(shown).order_by(*order).offset(offset).limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def list(self) -> list[ModelRecord]:
        """Every model, built-in ones first, then by creation time."""
        order = (models.c.builtin.desc(), models.c.created_at, models.c.id)
        query = sa.select(models).order_by(*order)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def bundle_path(self, record: ModelRecord) -> Path:
        """The bundle folder holding the record's weights (materialized from the database on
        first use, with shared files). Raises ModelNotFoundError if gone."""
        if record.builtin:
            return BUILTIN_MODELS[record.id]
        folder = self.store.fetch(record.sha256)
        if folder is None:
            raise ModelNotFoundError(f"model {record.id!r}: its files are missing from the store")
        return folder

    # -- writing ---------------------------------------------------------------------------

    def create(
        self,
        weights: MtcnnWeights | Mapping[str, bytes],
        manifest: ModelManifest,
        *,
        source_format: str,
        name: str | None = None,
        description: str | None = None,
        private: bool = False,
        creation: Creation | None = None,
        quota: UploadQuota | None = None,
    ) -> CreatedModel:
        """Register ``weights`` as a new model with a new random id, durably, before returning.

        With ``creation``, the model is charged to its owner (within ``quota``) and its
        Idempotency-Key recorded; if a concurrent request with the same key won, its model is
        returned (:meth:`replay`).

        Raises:
            QuotaExceededError: the owner would keep more than ``quota`` allows (403).
            StorageFullError: all uploads together would pass ``quota.storage_bytes`` (507).
            IdempotencyKeyReusedError: the key was used for another request (422).
        """
        admin_key = keys.new_key(keys.ADMIN_PREFIX)
        usage_key = keys.new_key(keys.USAGE_PREFIX) if private else None
        with self._store_lock():
            sha256 = self._put(weights, manifest)
            size = self._bundle_bytes(sha256)
            try:
                if creation is not None and quota is not None:
                    self.check_quota(creation.owner, quota, adding_bytes=size)
                model_id = self._insert(
                    sha256, size, manifest, source_format, name, description,
                    keys.hash_key(admin_key), keys.hash_key(usage_key) if usage_key else None,
                    creation,
                )  # fmt: skip
            except BaseException:
                self._drop_if_unused(sha256)
                raise
        if model_id is None:  # a concurrent request with the same Idempotency-Key won
            assert creation is not None and creation.idempotency_key is not None
            replayed = self.replay(creation)
            if replayed is None:
                raise ModelConflictError("the request with this Idempotency-Key was undone")
            return replayed
        log.info("registry: created model %s (%s)", model_id, source_format)
        return CreatedModel(self.get(model_id), admin_key=admin_key, usage_key=usage_key)

    def _insert(
        self, sha256: str, size: int, manifest: ModelManifest, source_format: str,
        name: str | None, description: str | None, admin_hash: str, usage_hash: str | None,
        creation: Creation | None,
    ) -> str | None:  # fmt: skip
        """Commit the model's row (and its upload row) under a fresh id; ``None`` when the
        Idempotency-Key is already taken."""
        now = _now()
        values = {
            "name": (name or manifest.name or "model")[:200],
            "description": description if description is not None else manifest.description,
            "sha256": sha256,
            "format": source_format or manifest.source_format or "unknown",
            "family": manifest.family,
            "builtin": False,
            "admin_key_hash": admin_hash,
            "usage_key_hash": usage_hash,
            "parameters": manifest.parameters.to_dict(),
            "config": {},
            "created_at": now,
            "updated_at": now,
            "calls": 0,
            "faces": 0,
            "errors": 0,
            "latency_ms_total": 0.0,
        }
        idempotency = self._idempotency_hash(creation)
        for _ in range(_ID_ATTEMPTS):
            model_id = new_model_id()
            try:
                with self.engine.begin() as conn:
                    self.store.publish(conn, sha256)  # visible with the row, never before
                    conn.execute(models.insert().values(id=model_id, **values))
                    if creation is not None:
                        conn.execute(
                            uploads.insert().values(
                                model_id=model_id, owner=creation.owner, bytes=size,
                                idempotency_key=idempotency,
                                request_digest=creation.request_digest, created_at=now,
                            )
                        )  # fmt: skip
                return model_id
            except IntegrityError:
                if idempotency is not None and self._upload_by_key(idempotency) is not None:
                    return None
                if not self._exists(model_id):
                    raise
        raise ModelConflictError("could not find a free model id; try again")

    def replay(self, creation: Creation) -> CreatedModel | None:
        """The model an earlier request with ``creation``'s Idempotency-Key created, with keys
        issued again (the earlier ones stop working), or ``None`` if there is none (no key, an
        unknown one, or one older than :data:`IDEMPOTENCY_WINDOW`, which is then forgotten).

        Raises:
            IdempotencyKeyReusedError: the key was used for a request with other files or
                fields (422).
        """
        idempotency = self._idempotency_hash(creation)
        if idempotency is None:
            return None
        row = self._upload_by_key(idempotency)
        if row is None:
            return None
        created_at = _aware(row["created_at"]) or _now()
        if created_at < _now() - IDEMPOTENCY_WINDOW:
            with self.engine.begin() as conn:
                conn.execute(
                    uploads.update()
                    .where(uploads.c.model_id == row["model_id"])
                    .values(idempotency_key=None)
                )
            return None
        if row["request_digest"] != creation.request_digest:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used for another request (other files or "
                "fields); use a new key for a new model"
            )
        record = self.get(row["model_id"])
        admin_key = keys.new_key(keys.ADMIN_PREFIX)
        usage_key = keys.new_key(keys.USAGE_PREFIX) if record.private else None
        changes: dict[str, Any] = {"admin_key_hash": keys.hash_key(admin_key)}
        if usage_key is not None:
            changes["usage_key_hash"] = keys.hash_key(usage_key)
        self._update(record.id, changes)
        log.info("registry: replayed the creation of model %s (keys issued again)", record.id)
        return CreatedModel(self.get(record.id), admin_key, usage_key, replayed=True)

    def check_quota(self, owner: str, quota: UploadQuota, *, adding_bytes: int = 0) -> None:
        """Pass if ``owner`` may add one model of ``adding_bytes`` within ``quota``.

        Raises QuotaExceededError (403) or StorageFullError (507).
        """
        with self.engine.connect() as conn:
            mine = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(uploads.c.bytes), 0))
                .where(uploads.c.owner == owner)
            ).one()  # fmt: skip
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(uploads.c.bytes), 0)))
            total_bytes = int(total.scalar_one())
        count, used = int(mine[0]), int(mine[1])
        if count + 1 > quota.models:
            raise QuotaExceededError(
                f"you keep {count} models, the most one uploader may keep is {quota.models}; "
                "delete one first",
                limit=quota.models, unit="models",
            )  # fmt: skip
        if used + adding_bytes > quota.bytes:
            raise QuotaExceededError(
                f"your models take {used} bytes; with this one ({adding_bytes} bytes) they would "
                f"pass your quota of {quota.bytes} bytes",
                limit=quota.bytes, unit="bytes",
            )  # fmt: skip
        if total_bytes + adding_bytes > quota.storage_bytes:
            raise StorageFullError(
                f"the server's storage for uploaded models ({quota.storage_bytes} bytes) is "
                "full; try again after models are deleted",
                limit=quota.storage_bytes,
            )

    def replace(
        self,
        model_id: str,
        weights: MtcnnWeights | Mapping[str, bytes],
        manifest: ModelManifest,
        *,
        source_format: str,
        name: str | None = None,
        description: str | None = None,
        quota: UploadQuota | None = None,
    ) -> ModelRecord:
        """Give an existing model new weights (and optionally a new name/description); same id.

        Only this model changes: a model with the old or the new weights keeps its own row and
        files. The new size is charged to the model's owner, within ``quota``. Weights of
        another detector family are refused (ModelConflictError): the model's run defaults,
        the parameters its callers send and the jobs running on it are its family's.
        """
        old = self._mutable(model_id)
        if manifest.family != old.family:
            raise ModelConflictError(
                f"model {model_id!r} is a {old.family} model and these are {manifest.family} "
                f"weights: upload them as a new model instead"
            )
        with self._store_lock():
            sha256 = self._put(weights, manifest)
            size = self._bundle_bytes(sha256)
            try:
                owner = self._owner(model_id)
                if owner is not None and quota is not None:
                    self._check_replacement(owner, model_id, quota, size)
                changes: dict[str, Any] = {
                    "sha256": sha256,
                    "format": source_format or manifest.source_format or old.format,
                    "family": manifest.family,
                    "parameters": manifest.parameters.to_dict(),
                    "updated_at": _now(),
                }
                if name:
                    changes["name"] = name[:200]
                if description is not None:
                    changes["description"] = description
                with self.engine.begin() as conn:
                    self.store.publish(conn, sha256)
                    result = conn.execute(
                        models.update().where(models.c.id == model_id).values(**changes)
                    )
                    if result.rowcount == 0:
                        raise ModelNotFoundError(f"no model with id {model_id!r}")
                    conn.execute(
                        uploads.update().where(uploads.c.model_id == model_id).values(bytes=size)
                    )
            except BaseException:
                self._drop_if_unused(sha256)
                raise
            self._drop_if_unused(old.sha256)
        log.info("registry: replaced the weights of model %s", model_id)
        return self.get(model_id)

    def _check_replacement(self, owner: str, model_id: str, quota: UploadQuota, size: int) -> None:
        # The model's old size is freed by the replacement; count is unchanged.
        old = self._upload_bytes(model_id)
        roomy = UploadQuota(
            models=quota.models + 1,
            bytes=quota.bytes + old,
            storage_bytes=quota.storage_bytes + old,
        )
        self.check_quota(owner, roomy, adding_bytes=size)

    def delete(self, model_id: str) -> None:
        """Remove a model, then its files if no other model uses the same weights."""
        record = self._mutable(model_id)
        with self.engine.begin() as conn:
            conn.execute(models.delete().where(models.c.id == model_id))
            conn.execute(uploads.delete().where(uploads.c.model_id == model_id))
        with self._store_lock():
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
        self._publish_local(records)
        missing = [r.id for r in records if not self.store.available(r.sha256)]
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
                "family": manifest.family,
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
            stale = current.family != manifest.family or current.sha256 != manifest.weights_sha256
            if stale or not current.builtin:
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
        with self.engine.begin() as conn:
            self.store.lock(conn, sha256)  # an upload of the same weights waits, or we do
            query = (
                sa.select(sa.func.count())
                .select_from(models)
                .where(models.c.sha256 == sha256, models.c.builtin.is_(False))
            )
            users = conn.execute(query).scalar_one()
            if users == 0:
                self.store.forget(conn, sha256)
        if users == 0 and self.store.has(sha256):
            self.store.remove(sha256)

    def _publish_local(self, records: Sequence[ModelRecord]) -> None:
        """Shared files switched on for a registry that kept its bundles in the data folder:
        copy each one the database lacks into it (once, at startup)."""
        if self.store.blobs is None:
            return
        for sha256 in sorted({r.sha256 for r in records}):
            if self.store.has(sha256) and not self.store.published(sha256):
                with self.engine.begin() as conn:
                    self.store.publish(conn, sha256)
                log.info("registry: copied the bundle %s into the database", sha256)

    def _put(self, weights: MtcnnWeights | Mapping[str, bytes], manifest: ModelManifest) -> str:
        """Store the weights (if not stored yet) and sync the store's folder entry."""
        sha256 = self.store.put(weights, manifest)
        fd = os.open(self.store.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return sha256

    def _bundle_bytes(self, sha256: str) -> int:
        return sum(f.stat().st_size for f in self.store.path(sha256).iterdir() if f.is_file())

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        """Held while a folder is written and its row committed, or its rows counted and it
        removed: across threads, worker processes and hosts sharing the data folder."""
        with open(self.store.root.parent / ".store.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _idempotency_hash(creation: Creation | None) -> str | None:
        if creation is None or creation.idempotency_key is None:
            return None
        text = f"{creation.owner}\0{creation.idempotency_key}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _upload_by_key(self, idempotency: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            query = sa.select(uploads).where(uploads.c.idempotency_key == idempotency)
            return conn.execute(query).mappings().first()

    def _owner(self, model_id: str) -> str | None:
        with self.engine.connect() as conn:
            query = sa.select(uploads.c.owner).where(uploads.c.model_id == model_id)
            owner: str | None = conn.execute(query).scalar_one_or_none()
        return owner

    def _upload_bytes(self, model_id: str) -> int:
        with self.engine.connect() as conn:
            query = sa.select(uploads.c.bytes).where(uploads.c.model_id == model_id)
            return int(conn.execute(query).scalar_one_or_none() or 0)

    def __repr__(self) -> str:
        return f"Registry({self.engine.url!r}, store={str(self.store.root)!r})"
