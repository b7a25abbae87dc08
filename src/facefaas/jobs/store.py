"""`JobStore`: jobs and their items in the registry's database; their files in the data folder
or, with shared files, in the database too (:class:`~facefaas.jobs.files.JobFiles`).

Claiming (several workers, one queue, no item done twice)
---------------------------------------------------------
A worker claims items with one statement::

    UPDATE job_items SET state='running', claimed_by=:me, claimed_until_ms=:lease, attempts+1
    WHERE id IN (SELECT id FROM job_items WHERE state='queued' OR (state='running' AND
                 claimed_until_ms < :now) ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING ...

On PostgreSQL ``FOR UPDATE SKIP LOCKED`` (the pattern procrastinate and Oban use) lets workers
claim at once without waiting on, or taking, each other's rows. SQLite has no row locks (the
clause is not rendered there) but serialises writers: the statement runs in a ``BEGIN
IMMEDIATE`` transaction, which takes the database's write lock before reading, so two workers'
claims cannot interleave. The queue is hand-rolled rather than a library's because the embedded
default is SQLite: procrastinate is PostgreSQL-only, and a queue on its own server is what the
default must not need.

A claim is a lease: a worker renews it while it works (:meth:`JobStore.renew`); an item whose
lease ran out (its worker crashed or was SIGKILLed) is claimed again by another. A result is
written whole (a file replaced atomically, or a blob replaced in a transaction), and the item is
marked done in a transaction that checks the claim is still this worker's
(:meth:`JobStore.complete`): a crashed worker's item is redone, but recorded once. The
transaction that records a job's last item also ends the job and queues its webhook event
(locking the job's row, so two workers finishing its last two items cannot both miss the end).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from facefaas.errors import JobNotFoundError
from facefaas.jobs import webhooks
from facefaas.jobs.files import JobFiles
from facefaas.jobs.tables import create_tables, job_items, jobs
from facefaas.registry.blobs import BlobStore

__all__ = ["ClaimedItem", "DueWebhook", "JobInput", "JobStore", "NewJob", "hash_token"]

log = logging.getLogger(__name__)

OPEN = ("queued", "running")
ENDED = ("done", "failed", "cancelled")
RUNNING_GRACE_MS = 86_400_000  # an unfinished job is kept a day past its lifetime at most
MAX_ERRORS_SHOWN = 100
MAX_BACKOFF_S = 600.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class JobInput:
    """One input: a URL (``data`` None), or an uploaded file's name and bytes."""

    source: str
    data: bytes | None = None


@dataclass(frozen=True)
class NewJob:
    owner: str
    model_id: str
    function: str
    params: dict[str, Any]
    lifetime: float
    webhook_url: str | None = None


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    job_id: str
    index: int
    source: str
    input_path: str | None
    attempts: int


@dataclass(frozen=True)
class DueWebhook:
    job_id: str
    url: str
    secret: str
    webhook_id: str
    body: bytes
    attempts: int


class JobStore:
    """The jobs of one registry database and data folder (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        data_dir: Path,
        *,
        webhook_retry_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
        blobs: BlobStore | None = None,
    ) -> None:
        self.engine = engine
        self.files = JobFiles(data_dir, blobs)  # blobs None: files in the data folder
        self.webhook_retry_seconds = webhook_retry_seconds
        self._clock = clock
        self._sqlite = engine.dialect.name == "sqlite"
        self._started_jobs: set[str] = set()  # jobs this process has marked running
        create_tables(engine)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _begin(self, conn: Connection) -> None:
        """Take SQLite's write lock first thing in a writing transaction (see module doc)."""
        if self._sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    # -- files -------------------------------------------------------------------------------

    def write_result(self, job_id: str, name: str, data: bytes) -> None:
        """Keep a result whole (a redone item replaces it, never half). With blobs, a result
        of a job swept meanwhile is not kept, and expires by itself when its job would have."""
        if self.files.blobs is None:
            self.files.write_result_file(job_id, name, data)
            return
        with self.engine.begin() as conn:
            job = conn.execute(
                sa.select(jobs.c.created_at_ms, jobs.c.lifetime_ms).where(jobs.c.id == job_id)
            ).first()
            if job is None:
                log.info("job %s is gone; its result %s is not kept", job_id, name)
                return
            expires = job.created_at_ms + 2 * job.lifetime_ms + RUNNING_GRACE_MS
            self.files.add_result(conn, job_id, name, data, expires)

    def read_result(self, job_id: str, name: str) -> bytes:
        """A result's bytes. Raises JobNotFoundError when it is gone."""
        return self.files.read_result(job_id, name)

    def read_input(self, item: ClaimedItem) -> bytes | None:
        """The uploaded image of ``item``, or ``None`` when its input is a URL. Raises
        JobNotFoundError when it is gone (the job expired)."""
        if item.input_path is None:
            return None
        return self.files.read_input(item.job_id, item.input_path)

    # -- creating and reading ----------------------------------------------------------------

    def create(self, job: NewJob, inputs: Sequence[JobInput]) -> tuple[str, str, str | None]:
        """Store a job and its inputs; returns ``(job id, token, webhook secret)``, each shown
        once (the token is kept hashed)."""
        # Prefixed like the API keys: a value starting with "-" reads as an option on a
        # command line (`facefaas jobs status -xY...` was a usage error one time in 64).
        job_id = "job_" + secrets.token_urlsafe(12)
        token = "ffj_" + secrets.token_urlsafe(24)
        secret = webhooks.new_secret() if job.webhook_url else None
        now = self.now_ms()
        lifetime_ms = int(job.lifetime * 1000)
        uploaded = {index: item.data for index, item in enumerate(inputs) if item.data is not None}
        try:
            paths = self.files.place_inputs(job_id, uploaded)
            rows = [
                {"job_id": job_id, "idx": index, "source": item.source,
                 "input_path": paths.get(index), "state": "queued", "attempts": 0}
                for index, item in enumerate(inputs)
            ]  # fmt: skip
            with self.engine.begin() as conn:
                conn.execute(
                    jobs.insert().values(
                        id=job_id, token_hash=hash_token(token), owner=job.owner,
                        model_id=job.model_id, function=job.function, params=job.params,
                        state="queued", total=len(rows), lifetime_ms=lifetime_ms,
                        created_at_ms=now, expires_at_ms=now + lifetime_ms + RUNNING_GRACE_MS,
                        webhook_url=job.webhook_url, webhook_secret=secret,
                        webhook_state="none", webhook_attempts=0,
                    )
                )  # fmt: skip
                if rows:
                    conn.execute(job_items.insert(), rows)
                self.files.add_inputs(
                    conn, job_id, uploaded, expires_at_ms=now + 2 * lifetime_ms + RUNNING_GRACE_MS
                )
        except BaseException:
            self.files.remove_local(job_id)
            raise
        return job_id, token, secret

    def authorize(self, job_id: str, token: str) -> dict[str, Any]:
        """The job's row if ``token`` is its token (compared as hashes); else 404, as for a job
        that does not exist or expired."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None or row["expires_at_ms"] <= self.now_ms():
            raise _not_found()
        if not hmac.compare_digest(row["token_hash"], hash_token(token)):
            raise _not_found()
        return dict(row)

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return dict(row) if row is not None else None

    def active_jobs(self, owner: str) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(jobs)
                .where(jobs.c.owner == owner, jobs.c.state.in_(OPEN))
            ).scalar()
        return int(count or 0)

    def status(self, job_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._status(conn, job_id)

    def _status(self, conn: Connection, job_id: str) -> dict[str, Any]:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise _not_found()
        counts = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
        for state, count in conn.execute(
            sa.select(job_items.c.state, sa.func.count())
            .where(job_items.c.job_id == job_id)
            .group_by(job_items.c.state)
        ):
            counts[state] = int(count)
        errors = [
            {"index": idx, "source": source, "error": error}
            for idx, source, error in conn.execute(
                sa.select(job_items.c.idx, job_items.c.source, job_items.c.error)
                .where(job_items.c.job_id == job_id, job_items.c.state == "failed")
                .order_by(job_items.c.idx)
                .limit(MAX_ERRORS_SHOWN)
            )
        ]
        total = int(row["total"])
        finished = counts["done"] + counts["failed"] + counts["cancelled"]
        status: dict[str, Any] = {
            "job_id": job_id,
            "state": row["state"],
            "model": row["model_id"],
            "function": row["function"],
            "params": row["params"],
            "counts": {
                "total": total,
                "done": counts["done"],
                "failed": counts["failed"],
                "cancelled": counts["cancelled"],
                "pending": counts["queued"] + counts["running"],
            },
            "progress": round(finished / total, 4) if total else 1.0,
            "created_at": _iso(row["created_at_ms"]),
            "finished_at": _iso(row["finished_at_ms"]),
            "expires_at": _iso(row["expires_at_ms"]) if row["state"] in ENDED else None,
            "errors": errors,
        }
        if row["webhook_url"]:
            status["webhook"] = {
                "state": row["webhook_state"],
                "attempts": row["webhook_attempts"],
                "last_status": row["webhook_last_status"],
            }
        return status

    def items(self, job_id: str, start: int = 0) -> list[dict[str, Any]]:
        """The items from index ``start`` on, in input order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    job_items.c.idx, job_items.c.source, job_items.c.state,
                    job_items.c.result, job_items.c.error,
                )
                .where(job_items.c.job_id == job_id, job_items.c.idx >= start)
                .order_by(job_items.c.idx)
            ).mappings()  # fmt: skip
            return [dict(row) for row in rows]

    # -- the queue ---------------------------------------------------------------------------

    def claim(self, worker: str, limit: int, lease_seconds: float) -> list[ClaimedItem]:
        """Claim up to ``limit`` queued items (or items whose lease ran out), oldest first."""
        if limit <= 0:
            return []
        now = self.now_ms()
        c = job_items.c
        candidates = (
            sa.select(c.id)
            .where(
                sa.or_(
                    c.state == "queued",
                    sa.and_(c.state == "running", c.claimed_until_ms < now),
                )
            )
            .order_by(c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            job_items.update()
            .where(c.id.in_(candidates.scalar_subquery()))
            .values(
                state="running", claimed_by=worker,
                claimed_until_ms=now + int(lease_seconds * 1000), attempts=c.attempts + 1,
            )
            .returning(c.id, c.job_id, c.idx, c.source, c.input_path, c.attempts)
        )  # fmt: skip
        with self.engine.begin() as conn:
            self._begin(conn)
            claimed = [ClaimedItem(*row) for row in conn.execute(statement)]
        # A job is marked running once; this process remembers which it has marked.
        job_ids = {item.job_id for item in claimed} - self._started_jobs
        if job_ids:  # a separate transaction: item locks, then the job's row, never both held
            with self.engine.begin() as conn:
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id.in_(job_ids), jobs.c.state == "queued")
                    .values(state="running")
                )
            if len(self._started_jobs) > 1024:
                self._started_jobs.clear()
            self._started_jobs |= job_ids
        return sorted(claimed, key=lambda item: item.id)

    def renew(self, worker: str, item_ids: Sequence[int], lease_seconds: float) -> None:
        if not item_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                job_items.update()
                .where(
                    job_items.c.id.in_(list(item_ids)),
                    job_items.c.claimed_by == worker,
                    job_items.c.state == "running",
                )
                .values(claimed_until_ms=self.now_ms() + int(lease_seconds * 1000))
            )

    def release(self, worker: str, item_ids: Sequence[int]) -> None:
        """Give items back to the queue unfinished (a worker stopping gracefully)."""
        if not item_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                job_items.update()
                .where(
                    job_items.c.id.in_(list(item_ids)),
                    job_items.c.claimed_by == worker,
                    job_items.c.state == "running",
                )
                .values(state="queued", claimed_until_ms=None, attempts=job_items.c.attempts - 1)
            )

    def reclaim(self, prefix: str, is_dead: Callable[[str], bool]) -> int:
        """Give back at once the items held by workers whose id starts with ``prefix`` and
        that ``is_dead`` says are gone (a worker of this host killed before a restart), instead
        of when their leases run out. Their attempt counts, as a lease running out does. The
        number of items given back."""
        c = job_items.c
        with self.engine.connect() as conn:
            holders = conn.execute(
                sa.select(c.claimed_by)
                .where(c.state == "running", c.claimed_by.startswith(prefix, autoescape=True))
                .distinct()
            ).scalars()
            dead = [worker for worker in holders if worker and is_dead(worker)]
        if not dead:
            return 0
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    job_items.update()
                    .where(c.claimed_by.in_(dead), c.state == "running")
                    .values(state="queued", claimed_until_ms=None)
                ).rowcount
            )

    def complete(
        self,
        worker: str,
        item: ClaimedItem,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        cancelled: bool = False,
    ) -> bool:
        """Record an item's result (or its problem+json ``error``, or that it was ``cancelled``
        before it started) if the claim is still this worker's; ends the job when it was the
        last. False: someone else holds the item now."""
        with self.engine.begin() as conn:
            self._begin(conn)
            self._lock_job(conn, item.job_id)
            recorded = conn.execute(
                job_items.update()
                .where(
                    job_items.c.id == item.id,
                    job_items.c.claimed_by == worker,
                    job_items.c.state == "running",
                )
                .values(
                    state="cancelled" if cancelled else "failed" if error is not None else "done",
                    result=result, error=error, claimed_until_ms=None,
                )
            ).rowcount  # fmt: skip
            if recorded == 1:
                self._finish_if_done(conn, item.job_id)
        return recorded == 1

    def _lock_job(self, conn: Connection, job_id: str) -> None:
        if self._sqlite:
            return  # BEGIN IMMEDIATE (`_begin`) already holds the only write lock
        conn.execute(sa.select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())

    def _finish_if_done(self, conn: Connection, job_id: str) -> bool:
        c = job_items.c
        # One open item is enough to know (every completion asks: no count over the whole job).
        open_item = conn.execute(
            sa.select(c.id).where(c.job_id == job_id, c.state.in_(OPEN)).limit(1)
        ).first()
        if open_item is not None:
            return False

        def some(state: str) -> bool:
            query = sa.select(c.id).where(c.job_id == job_id, c.state == state).limit(1)
            return conn.execute(query).first() is not None

        if some("cancelled"):  # cancelled while images ran: it ends when they have
            state = "cancelled"
        elif some("failed") and not some("done"):
            state = "failed"
        else:
            state = "done"
        return self._end(conn, job_id, state)

    def _end(self, conn: Connection, job_id: str, state: str) -> bool:
        """Move an open job to ``state`` and queue its webhook event (in ``conn``'s
        transaction)."""
        now = self.now_ms()
        ended = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.state.in_(OPEN))
            .values(
                state=state, finished_at_ms=now,
                expires_at_ms=now + jobs.c.lifetime_ms,
            )
        ).rowcount  # fmt: skip
        if ended != 1:
            return False
        row = conn.execute(
            sa.select(jobs.c.webhook_url).where(jobs.c.id == job_id)
        ).scalar_one_or_none()
        if row:
            kind = {"done": "job.completed", "failed": "job.failed"}.get(state, "job.cancelled")
            data = self._status(conn, job_id)
            data.pop("webhook", None)  # the delivery's own state is not the event's
            event = {"type": kind, "timestamp": _iso(now), "data": data}
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    webhook_id="msg_" + secrets.token_urlsafe(16),
                    webhook_body=json.dumps(event, separators=(",", ":")),
                    webhook_state="pending", webhook_next_ms=now,
                    webhook_until_ms=now + int(self.webhook_retry_seconds * 1000),
                )
            )  # fmt: skip
        return True

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the items not started. The job ends ``cancelled`` at once when none is
        running, else when the running ones have finished (its results, zip and webhook are
        then whole); when every item left was already running, nothing is cancelled and the
        job ends as it would have."""
        with self.engine.begin() as conn:
            self._begin(conn)
            self._lock_job(conn, job_id)
            conn.execute(
                job_items.update()
                .where(job_items.c.job_id == job_id, job_items.c.state == "queued")
                .values(state="cancelled")
            )
            self._finish_if_done(conn, job_id)
            return self._status(conn, job_id)

    # -- webhooks ----------------------------------------------------------------------------

    def claim_webhooks(self, limit: int, lease_seconds: float) -> list[DueWebhook]:
        now = self.now_ms()
        c = jobs.c
        due = (
            sa.select(c.id)
            .where(
                c.webhook_state == "pending",
                c.webhook_next_ms <= now,
                sa.or_(c.webhook_claimed_until_ms.is_(None), c.webhook_claimed_until_ms < now),
            )
            .order_by(c.webhook_next_ms)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            jobs.update()
            .where(c.id.in_(due.scalar_subquery()))
            .values(webhook_claimed_until_ms=now + int(lease_seconds * 1000))
            .returning(
                c.id, c.webhook_url, c.webhook_secret, c.webhook_id, c.webhook_body,
                c.webhook_attempts,
            )
        )  # fmt: skip
        with self.engine.begin() as conn:
            self._begin(conn)
            return [
                DueWebhook(row[0], row[1], row[2], row[3], row[4].encode("utf-8"), row[5])
                for row in conn.execute(statement)
            ]

    def webhook_attempted(self, webhook: DueWebhook, status: int | None) -> None:
        """Record one delivery attempt: 2xx delivers it; otherwise it is retried with
        exponential backoff until ``webhook_retry_seconds`` after the job ended."""
        now = self.now_ms()
        attempts = webhook.attempts + 1
        values: dict[str, Any] = {
            "webhook_attempts": attempts,
            "webhook_last_status": status,
            "webhook_claimed_until_ms": None,
        }
        if status is not None and 200 <= status < 300:
            values["webhook_state"] = "delivered"
        else:
            delay_ms = int(min(2.0 ** (attempts - 1), MAX_BACKOFF_S) * 1000)
            values["webhook_next_ms"] = now + delay_ms
            with self.engine.connect() as conn:
                until = conn.execute(
                    sa.select(jobs.c.webhook_until_ms).where(jobs.c.id == webhook.job_id)
                ).scalar()
            if until is None or now + delay_ms > until:
                values["webhook_state"] = "failed"
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == webhook.job_id).values(**values))

    # -- upkeep ------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete expired jobs (rows and files) and end jobs whose items all ended; how many
        jobs were deleted."""
        now = self.now_ms()
        with self.engine.connect() as conn:
            expired = list(
                conn.execute(sa.select(jobs.c.id).where(jobs.c.expires_at_ms <= now)).scalars()
            )
            orphans = list(
                conn.execute(
                    sa.select(jobs.c.id).where(
                        jobs.c.state.in_(OPEN),
                        ~sa.exists().where(
                            job_items.c.job_id == jobs.c.id, job_items.c.state.in_(OPEN)
                        ),
                    )
                ).scalars()
            )
        for job_id in orphans:
            with self.engine.begin() as conn:
                self._begin(conn)
                self._lock_job(conn, job_id)
                self._finish_if_done(conn, job_id)
        for job_id in expired:
            with self.engine.begin() as conn:
                conn.execute(job_items.delete().where(job_items.c.job_id == job_id))
                conn.execute(jobs.delete().where(jobs.c.id == job_id))
                self.files.delete(conn, job_id)
            self.files.remove_local(job_id)
        self.files.sweep(now, self._existing)
        if expired:
            log.info("swept %d expired jobs", len(expired))
        return len(expired)

    def _existing(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` are jobs (for the sweep of files whose job is gone)."""
        with self.engine.connect() as conn:
            query = sa.select(jobs.c.id).where(jobs.c.id.in_(list(job_ids)))
            return set(conn.execute(query).scalars())


def _not_found() -> JobNotFoundError:
    return JobNotFoundError("job not found: no such job, a wrong token, or its results expired")
