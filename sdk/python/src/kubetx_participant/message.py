"""The upstream of a reliable message: the outbox table and its check-back.

The upstream does three steps, in this order (sdk/typescript/src/message.ts explains why
each crash point is safe):

1. create the DistributedTransaction (``spec.mode: Message``, no
   ``spec.message.decision``) and keep its ``metadata.uid``;
2. run the local transaction: ``outbox.run_local(conn, key, fn)`` inserts the
   outbox row (``committed``) first and runs ``fn`` in the same transaction, or
   call ``outbox.prepare(conn, key)`` in a transaction of your own, before
   your business change;
3. set ``spec.message.decision: Commit``. If that never happens, the operator
   asks ``CheckPrepared`` after ``checkAfter``, which answers from the row.

``check_prepared`` with no row first **claims** the uid as ``rolled_back`` in
its own short transaction, so a local transaction still running can no longer
commit: its insert waits for the claim and then conflicts, and
``prepare``/``run_local`` raise ``RolledBack`` (the business change rolls back
with it). Whichever insert comes first decides; the answer never contradicts
the database.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubetx_participant import _sql
from kubetx_participant.barrier import AsyncConnectionProvider, ConnectionProvider
from kubetx_participant.types import CheckPreparedRequest, Dialect, PreparedState

DEFAULT_TABLE = "kubetx_prepared_messages"
STATE_COMMITTED = "committed"
STATE_ROLLED_BACK = "rolled_back"

T = TypeVar("T")


class MessageError(Exception):
    """The message cannot be prepared (already prepared, or resolved as rolled back)."""


class RolledBack(MessageError):
    """A check-back already answered ROLLED_BACK for this uid: the local transaction must not commit."""


@dataclass(frozen=True, slots=True)
class MessageKey:
    """A prepared message: the DistributedTransaction's metadata.uid, namespace and name."""

    uid: str
    namespace: str = ""
    name: str = ""


class _Base:
    def __init__(self, dialect: Dialect | str, *, table: str = DEFAULT_TABLE, lock_timeout: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.dialect = Dialect(dialect)
        _sql.validate_table(self.dialect, table)
        self.table = table
        self.lock_timeout = lock_timeout
        self._clock = clock
        p = _sql.placeholder(self.dialect)
        self._state = f"SELECT state FROM {table} WHERE uid = {p}"
        self._cleanup = f"DELETE FROM {table} WHERE created_at < {p}"
        self._insert = (f"INSERT INTO {table} (uid, namespace, name, state, created_at) VALUES ({p}, {p}, {p}, {p}, {p}) "
                        "ON CONFLICT (uid) DO NOTHING")
        if self.dialect is Dialect.POSTGRES:
            self._ddl = f"""CREATE TABLE IF NOT EXISTS {table} (
  uid text PRIMARY KEY,
  namespace text NOT NULL DEFAULT '',
  name text NOT NULL DEFAULT '',
  state text NOT NULL CHECK (state IN ('committed', 'rolled_back')),
  created_at bigint NOT NULL
)"""
        else:
            self._ddl = f"""CREATE TABLE IF NOT EXISTS {table} (
  uid TEXT PRIMARY KEY,
  namespace TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL CHECK (state IN ('committed', 'rolled_back')),
  created_at INTEGER NOT NULL
)"""

    def _prepare_steps(self, key: MessageKey) -> _sql.Rules:
        if not key.uid:
            raise ValueError("prepare: the key needs a transaction uid")
        n = yield ("exec", self._insert, (key.uid, key.namespace, key.name, STATE_COMMITTED, _sql.now_ms(self._clock)))
        if n == 1:
            return None
        row = yield ("one", self._state, (key.uid,))
        if row is not None and row[0] == STATE_ROLLED_BACK:
            raise RolledBack(f"message {key.namespace}/{key.name} ({key.uid}): already resolved as rolled back by a check-back; "
                             "the local transaction must not commit")
        raise MessageError(f"message {key.namespace}/{key.name} ({key.uid}): the local transaction already committed")

    def _check_steps(self, req: CheckPreparedRequest) -> _sql.Rules:
        if not req.transaction_uid:
            raise ValueError("CheckPrepared without a transaction_uid")
        # Waits on the key lock of a local transaction in flight on the same uid.
        yield ("exec", self._insert, (req.transaction_uid, req.namespace, req.name, STATE_ROLLED_BACK, _sql.now_ms(self._clock)))
        row = yield ("one", self._state, (req.transaction_uid,))
        state = row[0] if row else None
        if state == STATE_COMMITTED:
            return PreparedState.COMMITTED
        if state == STATE_ROLLED_BACK:
            return PreparedState.ROLLED_BACK
        raise RuntimeError(f"{req.transaction_uid}: row {state!r} after the claim")

    def _state_steps(self, uid: str) -> _sql.Rules:
        row = yield ("one", self._state, (uid,))
        return row[0] if row else None

    def _cleanup_steps(self, older_than: _dt.timedelta | float) -> _sql.Rules:
        age = older_than.total_seconds() if isinstance(older_than, _dt.timedelta) else float(older_than)
        if age < 0:
            raise ValueError(f"cleanup: negative age {older_than}")
        n = yield ("exec", self._cleanup, (_sql.now_ms(self._clock) - int(age * 1000),))
        return max(n, 0)


class Outbox(_Base):
    """The upstream's local message table on DB-API connections (psycopg 3 or sqlite3)."""

    def ensure_table(self, conn: Any) -> None:
        """Creates the table and its ``<table>_created_at`` index if missing."""
        with _sql.transaction(self.dialect, conn, None):
            _sql.drive(conn, _sql.ensure_steps(self.dialect, _sql.TableSpec(self.table, self._ddl)))

    def prepare(self, conn: Any, key: MessageKey) -> None:
        """Inserts the ``committed`` row for ``key`` in the caller's open transaction on ``conn``.

        Call it before the business change: the row's key lock then holds off a
        concurrent check-back until the transaction ends. Raises RolledBack when
        a check-back already claimed the uid (roll back), MessageError when it
        was already prepared.
        """
        _sql.require_transaction(self.dialect, conn)
        _sql.drive(conn, self._prepare_steps(key))

    def run_local(self, conn: Any, key: MessageKey, fn: Callable[[Any], T]) -> T:
        """One local transaction on ``conn``: prepare, then ``fn(conn)``, then commit; returns fn's value.

        When a check-back already claimed the key, fn does not run and RolledBack
        is raised; fn's exception rolls everything back and propagates unchanged.
        """
        with _sql.transaction(self.dialect, conn, self.lock_timeout):
            _sql.drive(conn, self._prepare_steps(key))
            return fn(conn)

    def check_prepared(self, conn: Any, request: CheckPreparedRequest) -> PreparedState:
        """The check-back: COMMITTED or ROLLED_BACK from the row, claiming the uid as rolled back when there is none."""
        with _sql.transaction(self.dialect, conn, self.lock_timeout):
            return _sql.drive(conn, self._check_steps(request))

    def state(self, conn: Any, uid: str) -> str | None:
        """The stored state of uid (None when there is no row), without claiming anything."""
        with _sql.transaction(self.dialect, conn, None):
            return _sql.drive(conn, self._state_steps(uid))

    def cleanup(self, conn: Any, older_than: _dt.timedelta | float = _dt.timedelta(days=7)) -> int:
        """Deletes rows older than ``older_than``; keep them longer than the operator may still ask."""
        with _sql.transaction(self.dialect, conn, None):
            return _sql.drive(conn, self._cleanup_steps(older_than))

    def source(self, connect: ConnectionProvider) -> _Source:
        """A MessageSource for ``serve``: CheckPrepared on a connection from ``connect``."""
        return _Source(self, connect)


class _Source:
    def __init__(self, outbox: Outbox, connect: ConnectionProvider) -> None:
        self._outbox, self._connect = outbox, connect

    def check_prepared(self, request: CheckPreparedRequest) -> PreparedState:
        with self._connect() as conn:
            return self._outbox.check_prepared(conn, request)


class AsyncOutbox(_Base):
    """The outbox on psycopg 3's ``AsyncConnection`` (PostgreSQL)."""

    def __init__(self, *, table: str = DEFAULT_TABLE, lock_timeout: float | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__(Dialect.POSTGRES, table=table, lock_timeout=lock_timeout, clock=clock)

    async def ensure_table(self, conn: Any) -> None:
        async with _sql.transaction_async(conn, None):
            await _sql.drive_async(conn, _sql.ensure_steps(self.dialect, _sql.TableSpec(self.table, self._ddl)))

    async def prepare(self, conn: Any, key: MessageKey) -> None:
        _sql.require_transaction(self.dialect, conn)
        await _sql.drive_async(conn, self._prepare_steps(key))

    async def run_local(self, conn: Any, key: MessageKey, fn: Callable[[Any], Awaitable[T]]) -> T:
        async with _sql.transaction_async(conn, self.lock_timeout):
            await _sql.drive_async(conn, self._prepare_steps(key))
            return await fn(conn)

    async def check_prepared(self, conn: Any, request: CheckPreparedRequest) -> PreparedState:
        async with _sql.transaction_async(conn, self.lock_timeout):
            return await _sql.drive_async(conn, self._check_steps(request))

    async def state(self, conn: Any, uid: str) -> str | None:
        async with _sql.transaction_async(conn, None):
            return await _sql.drive_async(conn, self._state_steps(uid))

    async def cleanup(self, conn: Any, older_than: _dt.timedelta | float = _dt.timedelta(days=7)) -> int:
        async with _sql.transaction_async(conn, None):
            return await _sql.drive_async(conn, self._cleanup_steps(older_than))

    def source(self, connect: AsyncConnectionProvider) -> _AsyncSource:
        return _AsyncSource(self, connect)


class _AsyncSource:
    def __init__(self, outbox: AsyncOutbox, connect: AsyncConnectionProvider) -> None:
        self._outbox, self._connect = outbox, connect

    async def check_prepared(self, request: CheckPreparedRequest) -> PreparedState:
        async with self._connect() as conn:
            return await self._outbox.check_prepared(conn, request)
