"""`EphemeralStore`: short-lived JSON values under random keys, the seed's ephemeral storage.

Values live in the registry's database (a table next to the registry's, on the same engine), so
they survive a restart and every worker sees them. Each value is kept ``ttl`` seconds from its
last write; an expired value is gone for every read (lazy expiry) and its row is deleted by the
next :meth:`EphemeralStore.sweep` (run periodically by the service, and before refusing a new
value for want of room). The store is bounded: ``max_value_bytes`` per value (413) and
``max_values`` live values (507).

Keys are ``secrets.token_urlsafe`` (192 random bits): whoever holds one may read, replace and
delete its value, and nobody can guess one. The value is kept as the JSON text it was sent as
and given back unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from facefaas.errors import InputError, StorageFullError, TooLargeError, ValueNotFoundError
from facefaas.registry.tables import metadata

__all__ = ["EphemeralStore", "ephemeral_values"]

log = logging.getLogger(__name__)

KEY_BYTES = 24  # 32 URL-safe characters
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

ephemeral_values = sa.Table(
    "ephemeral_values",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    # The JSON text as it was sent (UTF-8), given back unchanged.
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    # Milliseconds since the epoch: portable and exact on SQLite and PostgreSQL alike.
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False, index=True),
)


def _create_table(engine: Engine) -> None:
    try:
        ephemeral_values.create(engine, checkfirst=True)
    except (OperationalError, ProgrammingError):
        # Another worker created it between our check and our CREATE.
        ephemeral_values.create(engine, checkfirst=True)


class EphemeralStore:
    """JSON values under random keys, each kept ``ttl`` seconds (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = 3600.0,
        max_value_bytes: int = 64 * 1024,
        max_values: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.max_value_bytes = max_value_bytes
        self.max_values = max_values
        self._clock = clock
        _create_table(engine)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _expiry_ms(self) -> int:
        return self._now_ms() + int(self.ttl * 1000)

    def _checked(self, text: bytes) -> str:
        if len(text) > self.max_value_bytes:
            raise TooLargeError(
                f"the value is over the limit of {self.max_value_bytes} bytes",
                limit=self.max_value_bytes,
                unit="bytes",
            )
        try:
            decoded = text.decode("utf-8")
            json.loads(decoded)
        except (UnicodeDecodeError, ValueError):
            raise InputError("the value must be JSON (UTF-8)") from None
        return decoded

    def add(self, text: bytes) -> str:
        """Keep the JSON ``text`` and return its new key (413 too large, 507 store full)."""
        value = self._checked(text)
        key = secrets.token_urlsafe(KEY_BYTES)
        if not self._insert(key, value, len(text)):
            self.sweep()  # expired rows may be what fills it
            if not self._insert(key, value, len(text)):
                raise StorageFullError(
                    f"the ephemeral storage holds its limit of {self.max_values} values; "
                    "try again when some have expired",
                    limit=self.max_values,
                    unit="values",
                )
        return key

    def _insert(self, key: str, value: str, size: int) -> bool:
        # One statement: the count and the insert cannot be split by another writer's.
        table = ephemeral_values
        live = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.expires_at_ms > self._now_ms())
            .scalar_subquery()
        )
        row = sa.select(
            sa.literal(key, sa.String), sa.literal(value, sa.Text),
            sa.literal(size, sa.Integer), sa.literal(self._expiry_ms(), sa.BigInteger),
        ).where(live < self.max_values)  # fmt: skip
        statement = (
            table.insert()
            .from_select(["key", "value", "bytes", "expires_at_ms"], row)
            .returning(table.c.key)
        )
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... SELECT, so a value kept on
        # PostgreSQL read as refused and was inserted again (a 500 on every POST).
        with self.engine.begin() as conn:
            return conn.execute(statement).first() is not None

    def get(self, key: str) -> str:
        """The JSON text kept under ``key`` (404 when there is none or it expired)."""
        if _KEY.match(key):
            with self.engine.connect() as conn:
                value = conn.execute(
                    sa.select(ephemeral_values.c.value).where(
                        ephemeral_values.c.key == key,
                        ephemeral_values.c.expires_at_ms > self._now_ms(),
                    )
                ).scalar()
            if value is not None:
                return str(value)
        raise _not_found()

    def replace(self, key: str, text: bytes) -> None:
        """Put new JSON ``text`` under an existing ``key``; it is kept ``ttl`` from now."""
        value = self._checked(text)
        table = ephemeral_values
        with self.engine.begin() as conn:
            updated = conn.execute(
                table.update()
                .where(table.c.key == key, table.c.expires_at_ms > self._now_ms())
                .values(value=value, bytes=len(text), expires_at_ms=self._expiry_ms())
            ).rowcount
        if updated != 1:
            raise _not_found()

    def delete(self, key: str) -> None:
        """Remove ``key``'s value (404 when there is none or it expired)."""
        table = ephemeral_values
        with self.engine.begin() as conn:
            deleted = conn.execute(
                table.delete().where(table.c.key == key, table.c.expires_at_ms > self._now_ms())
            ).rowcount
        if deleted != 1:
            raise _not_found()

    def sweep(self) -> int:
        """Delete every expired value; how many were."""
        table = ephemeral_values
        with self.engine.begin() as conn:
            swept = conn.execute(
                table.delete().where(table.c.expires_at_ms <= self._now_ms())
            ).rowcount
        if swept:
            log.debug("swept %d expired ephemeral values", swept)
        return int(swept)

    def count(self) -> int:
        """Live values."""
        table = ephemeral_values
        with self.engine.connect() as conn:
            live = conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.expires_at_ms > self._now_ms())
            ).scalar()
        return int(live or 0)


def _not_found() -> ValueNotFoundError:
    return ValueNotFoundError("key not found: no such value, or it expired")
