"""The registry's schema (SQLAlchemy Core) and database engines.

The SQL is portable: the same tables run on SQLite (the embedded default, in WAL mode) and on
PostgreSQL (``postgresql+psycopg://...``). Usage counters are updated with ``col = col + n`` so
concurrent workers never lose an increment.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

__all__ = ["create_schema", "make_engine", "metadata", "models", "uploads"]

log = logging.getLogger(__name__)

metadata = sa.MetaData()

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # MtcnnWeights.digest() of the current weights: the store folder holding them.
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("format", sa.String(64), nullable=False),
    # The detector family (facefaas.families); registries made before families gain the column
    # (every model then was MTCNN) when create_schema runs.
    sa.Column("family", sa.String(32), nullable=False, default="mtcnn", server_default="mtcnn"),
    sa.Column("builtin", sa.Boolean, nullable=False, default=False),
    sa.Column("admin_key_hash", sa.String(64), nullable=True),
    # NULL: public model; set: private, running it needs the usage (or admin) key.
    sa.Column("usage_key_hash", sa.String(64), nullable=True),
    # The manifest's recommended DetectionParams.
    sa.Column("parameters", sa.JSON, nullable=False),
    # Default run parameters set through PUT /api/models/{id}/config (the seed's "state").
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("calls", sa.BigInteger, nullable=False, default=0),
    sa.Column("faces", sa.BigInteger, nullable=False, default=0),
    sa.Column("errors", sa.BigInteger, nullable=False, default=0),
    sa.Column("latency_ms_total", sa.Float, nullable=False, default=0.0),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
)

# Who uploaded each model, what it costs them and how its creation is replayed. A table of its
# own, not columns of `models`: `create_schema` only creates missing tables, so registries made
# before it gain it on their next start (their models have no row here: nobody's quota).
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("model_id", sa.String(64), primary_key=True),
    # The uploader's identity: "token:<digest>" or "address:<client address>".
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    # Bytes of the model's bundle folder, charged to the owner even when weights are shared.
    sa.Column("bytes", sa.BigInteger, nullable=False),
    # SHA-256 of (owner, Idempotency-Key): a retry finds its model; NULL without a key.
    sa.Column("idempotency_key", sa.String(64), nullable=True, unique=True),
    # SHA-256 of the request (files and fields): a key reused for another request is refused.
    sa.Column("request_digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that returned is on disk, so an acknowledged upload survives power loss.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and cross-thread connections."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create missing tables and add missing columns. Safe when several workers start at once."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except (OperationalError, ProgrammingError) as exc:
        # Another process created the table between our check and our CREATE.
        log.debug("create_all raced with another process (%s); checking again", exc)
        metadata.create_all(engine, checkfirst=True)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to ``models`` since a registry was made (each with a default)."""
    present = {column["name"] for column in sa.inspect(engine).get_columns("models")}
    if "family" in present:
        return
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("ALTER TABLE models ADD COLUMN family VARCHAR(32) NOT NULL DEFAULT 'mtcnn'")
            )
        log.info("registry: added the models.family column (existing models are MTCNN)")
    except (OperationalError, ProgrammingError) as exc:  # another worker added it first
        log.debug("adding models.family raced with another process (%s)", exc)
