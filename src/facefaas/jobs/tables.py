"""The jobs' tables, on the registry's metadata and engine (SQLite or PostgreSQL).

``jobs`` holds one row per job (with its webhook delivery: a job has at most one event, sent when
it ends, so the delivery's state lives in the job's row and survives restarts); ``job_items``
one row per input image. Times are milliseconds since the epoch (exact and portable).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from facefaas.registry.tables import metadata

__all__ = ["create_tables", "job_items", "jobs"]

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    # Who submitted it ("address:<client address>"): the bound on unfinished jobs per client.
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("model_id", sa.String(64), nullable=False),
    sa.Column("function", sa.String(32), nullable=False),
    # The parameters as given (validated at submit by building the typed request).
    sa.Column("params", sa.JSON, nullable=False),
    # queued, running, done, failed, cancelled
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("lifetime_ms", sa.BigInteger, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_at_ms", sa.BigInteger, nullable=True),
    # Until the job ends: created + lifetime + a day of running; then finished + lifetime.
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False, index=True),
    # The webhook (Standard Webhooks): its target, the per-job secret ("whsec_..."), the event's
    # id and body (fixed when the job ends: every retry sends the same), and the delivery.
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("webhook_secret", sa.String(128), nullable=True),
    sa.Column("webhook_id", sa.String(64), nullable=True),
    sa.Column("webhook_body", sa.Text, nullable=True),
    # none, pending, delivered, failed
    sa.Column("webhook_state", sa.String(16), nullable=False, default="none"),
    sa.Column("webhook_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("webhook_next_ms", sa.BigInteger, nullable=True, index=True),
    sa.Column("webhook_until_ms", sa.BigInteger, nullable=True),
    sa.Column("webhook_claimed_until_ms", sa.BigInteger, nullable=True),
    sa.Column("webhook_last_status", sa.Integer, nullable=True),
)

job_items = sa.Table(
    "job_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    # A URL, or the file name of an upload (stored under jobs/<id>/inputs/<idx>).
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("input_path", sa.Text, nullable=True),
    # queued, running, done, failed, cancelled
    sa.Column("state", sa.String(16), nullable=False),
    # {"file": name under jobs/<id>/results/, "media_type": ..., "faces": n}
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),  # a problem+json body
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # The worker that holds (or, once done, did) the item, and until when its claim holds.
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until_ms", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("job_id", "idx", name="uq_job_items_job_idx"),
    sa.Index("ix_job_items_state", "state", "claimed_until_ms"),
    # "is any item of this job still open?", asked at every item's completion
    sa.Index("ix_job_items_job_state", "job_id", "state"),
)


def create_tables(engine: Engine) -> None:
    """Create the tables when missing (safe when several workers start at once)."""
    for table in (jobs, job_items):
        try:
            table.create(engine, checkfirst=True)
        except (OperationalError, ProgrammingError):
            table.create(engine, checkfirst=True)  # another worker created it first
    for index in job_items.indexes:  # indexes added since a database's tables were made
        try:
            index.create(engine, checkfirst=True)
        except (OperationalError, ProgrammingError):
            index.create(engine, checkfirst=True)
