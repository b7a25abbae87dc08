"""`BlobStore`: files every service process can read, in the registry's database.

Why the database and not an object store
----------------------------------------
A scaled-out service (several processes, replicas on several machines: ``docs/scale-out.md``)
needs model bundles, job inputs and job results that every replica can read, whatever its own
data folder holds. They live in a ``blobs`` table of the database that already holds the
registry and the job queue, because:

* the operator already runs that database; nothing more to deploy, secure or back up;
* a blob is written in the **same transaction** as the row that refers to it (a model's row, a
  job's rows), so there is no moment at which a replica sees the row and not its files, and a
  rolled-back upload leaves no file behind;
* sizes are bounded: a bundle is at most the upload limit, a job image at most the per-image
  limit, far under PostgreSQL's 1 GB per ``bytea`` value;
* it is tested here for real, on PostgreSQL; an S3 store could only be faked on this machine.

An object store (fsspec/s3fs) can be added later behind the same small interface
(:meth:`BlobStore.add`, :meth:`~BlobStore.read`, :meth:`~BlobStore.read_owner`,
:meth:`~BlobStore.delete`, :meth:`~BlobStore.sweep`); what it would lose is the shared
transaction, which it would have to replace with write-then-commit ordering and a sweep of
orphans.

A blob is addressed by its ``owner`` (a model bundle's weights digest: content-addressed, so
models with the same weights share one copy, as their folders do; or a job's id) and a ``name``
in it (``pnet.onnx``, ``inputs/3``, ``results/3.json``), and carries the SHA-256 of its bytes,
checked on every read: a damaged blob reads as a missing one (and is logged), never as wrong
bytes. Addressing by owner rather than by the bytes' digest alone keeps deletion one statement
per owner (two jobs that uploaded the same image each delete their own copy, no reference
counts). ``expires_at_ms`` bounds a job's blobs even if the sweep that deletes them with their
job never sees them (a result written after its job was swept); a model's blobs never expire
(they go when the last model using their digest is deleted).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

__all__ = ["BlobKind", "BlobStore", "SharedFiles", "blobs", "uses_database"]

log = logging.getLogger(__name__)

BlobKind = Literal["model", "job-input", "job-result"]
SharedFiles = Literal["auto", "local", "database"]

# A metadata of its own, not the registry's: `create_schema` creates every table of that one, and
# a registry that keeps its files in the data folder (the embedded default) has no blobs table.
blobs = sa.Table(
    "blobs",
    sa.MetaData(),
    # A model bundle's weights digest, or a job's id.
    sa.Column("owner", sa.String(96), primary_key=True),
    # The file's name within its owner: "pnet.onnx", "inputs/3", "results/3.json".
    sa.Column("name", sa.String(160), primary_key=True),
    # What owns it: "model", "job-input" or "job-result".
    sa.Column("kind", sa.String(16), nullable=False),
    # SHA-256 of ``data``, checked on every read.
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    # Milliseconds since the epoch; NULL: kept until its owner deletes it.
    sa.Column("expires_at_ms", sa.BigInteger, nullable=True, index=True),
)


# Stored out of line, uncompressed: ONNX weights are floats that PostgreSQL's pglz cannot shrink
# but tries to, which made publishing a 2 MB bundle take 3x as long (benchmarks/shared_files.py).
@sa.event.listens_for(blobs, "after_create")
def _stored_uncompressed(_table: sa.Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL")


def uses_database(shared_files: SharedFiles, database_url: str | None) -> bool:
    """Whether files go to the database: ``auto`` means yes exactly when the registry is on a
    database server (``database_url`` set and not SQLite), so the embedded default keeps its
    files in the data folder."""
    if shared_files != "auto":
        return shared_files == "database"
    return bool(database_url) and not str(database_url).startswith("sqlite")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """The ``blobs`` table of one database (module docstring). Methods that take a
    ``conn`` run in the caller's transaction, so blobs commit (or roll back) with its rows."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        try:
            blobs.create(engine, checkfirst=True)
        except (OperationalError, ProgrammingError):
            blobs.create(engine, checkfirst=True)  # another process created it first

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writing (in the caller's transaction) --------------------------------------------

    def lock(self, conn: Connection, owner: str) -> set[str]:
        """The names of ``owner``'s blobs, locked until ``conn``'s transaction ends
        (``FOR UPDATE``; SQLite serialises writers instead): whoever decides to delete an
        owner's blobs and whoever starts using them again take turns."""
        query = sa.select(blobs.c.name).where(blobs.c.owner == owner).with_for_update()
        return set(conn.execute(query).scalars())

    def add(
        self,
        conn: Connection,
        owner: str,
        files: Mapping[str, bytes],
        *,
        kind: BlobKind,
        expires_at_ms: int | None = None,
        replace: bool = False,
    ) -> None:
        """Store ``files`` (name -> bytes) under ``owner``. A name already stored is kept
        (content-addressed owners: same name, same bytes) unless ``replace`` (a redone job
        item's result replaces the earlier one whole)."""
        if not files:
            return
        now = self.now_ms()
        rows = [
            {"owner": owner, "name": name, "kind": kind, "sha256": _digest(data),
             "size": len(data), "data": data, "created_at_ms": now,
             "expires_at_ms": expires_at_ms}
            for name, data in files.items()
        ]  # fmt: skip
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert: Any
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            statement = insert(blobs)
            keys = [blobs.c.owner, blobs.c.name]
            if replace:
                changed = ("kind", "sha256", "size", "data", "created_at_ms", "expires_at_ms")
                statement = statement.on_conflict_do_update(
                    index_elements=keys,
                    set_={column: statement.excluded[column] for column in changed},
                )
            else:
                statement = statement.on_conflict_do_nothing(index_elements=keys)
            conn.execute(statement, rows)
            return
        names = list(files)  # another database: the portable way, in the same transaction
        present = blobs.c.owner == owner
        if replace:
            conn.execute(blobs.delete().where(present, blobs.c.name.in_(names)))
        else:
            stored = self.lock(conn, owner)
            rows = [row for row in rows if row["name"] not in stored]
        if rows:
            conn.execute(blobs.insert(), rows)

    def delete(self, conn: Connection, owner: str) -> int:
        """Delete every blob of ``owner``; how many."""
        return int(conn.execute(blobs.delete().where(blobs.c.owner == owner)).rowcount or 0)

    # -- reading ---------------------------------------------------------------------------

    def read(self, owner: str, name: str) -> bytes | None:
        """The bytes of one blob, or ``None`` when it is missing, expired or damaged."""
        query = sa.select(blobs.c.name, blobs.c.sha256, blobs.c.data, blobs.c.expires_at_ms).where(
            blobs.c.owner == owner, blobs.c.name == name
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return self._checked(owner, row)

    def read_owner(self, owner: str) -> dict[str, bytes] | None:
        """Every blob of ``owner`` (name -> bytes), or ``None`` when it has none or one of
        them is damaged (a bundle is used whole or not at all)."""
        query = sa.select(blobs.c.name, blobs.c.sha256, blobs.c.data, blobs.c.expires_at_ms).where(
            blobs.c.owner == owner
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        files: dict[str, bytes] = {}
        for row in rows:
            data = self._checked(owner, row)
            if data is None:
                return None
            files[row.name] = data
        return files or None

    def names(self, owner: str) -> set[str]:
        with self.engine.connect() as conn:
            query = sa.select(blobs.c.name).where(blobs.c.owner == owner)
            return set(conn.execute(query).scalars())

    def owners(self, kind: BlobKind) -> set[str]:
        with self.engine.connect() as conn:
            query = sa.select(blobs.c.owner).where(blobs.c.kind == kind).distinct()
            return set(conn.execute(query).scalars())

    def _checked(self, owner: str, row: Any) -> bytes | None:
        if row.expires_at_ms is not None and row.expires_at_ms <= self.now_ms():
            return None
        data = bytes(row.data)
        if _digest(data) != row.sha256:
            log.error("blob %s/%s is damaged (its bytes do not match its sha256)", owner, row.name)
            return None
        return data

    # -- upkeep ----------------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete expired blobs; how many."""
        with self.engine.begin() as conn:
            expired = blobs.c.expires_at_ms <= self.now_ms()
            return int(conn.execute(blobs.delete().where(expired)).rowcount or 0)
