"""SQL shared by the barrier and the outbox: tables, transactions, a tiny statement driver.

Tables are the other SDKs' (sdk/go/internal/sqldb/schema.go, sdk/typescript/src/): same
names, columns and types per dialect, so services in every language can
share one database.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from kubetx_participant.types import Dialect

# A step of a rules generator: ("exec", sql, params) → rowcount; ("one", sql, params) → row or None;
# anything else is passed to the driver's own hook (the barrier's handler call).
Step = tuple[Any, ...]
Rules = Generator[Step, Any, Any]

_QUALIFIED = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_table(dialect: Dialect, table: str) -> None:
    """A table name goes into SQL text (it cannot be a bind parameter): an identifier only."""
    pattern = _PLAIN if dialect is Dialect.SQLITE else _QUALIFIED
    if not pattern.match(table) or len(table) > 120:
        qualified = "" if dialect is Dialect.SQLITE else ", optionally schema-qualified"
        raise ValueError(f"invalid table name {table!r}: want an SQL identifier ([A-Za-z_][A-Za-z0-9_]*){qualified}")


def index_name(table: str) -> tuple[str, str]:
    """The created_at index of table: (<schema.>table_created_at, table_created_at)."""
    schema, dot, bare = table.rpartition(".")
    idx = f"{bare}_created_at"
    return (f"{schema}.{idx}" if dot else idx), idx


def placeholder(dialect: Dialect) -> str:
    return "%s" if dialect is Dialect.POSTGRES else "?"


def now_ms(clock: Callable[[], float] | None) -> int:
    return int((clock or time.time)() * 1000)


@dataclass(frozen=True)
class TableSpec:
    name: str
    ddl: str


def _pg_ensure_steps(t: TableSpec) -> Rules:
    idx, bare = index_name(t.name)
    row = yield ("one", "SELECT to_regclass(%s)::text, to_regclass(%s)::text", (t.name, idx))
    if row is not None and row[0] is not None and row[1] is not None:
        return
    # CREATE TABLE IF NOT EXISTS is not safe against itself run concurrently: serialize it.
    yield ("one", "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"kubetx_init:{t.name}",))
    yield ("exec", t.ddl, ())
    yield ("exec", f"CREATE INDEX IF NOT EXISTS {bare} ON {t.name} (created_at)", ())


def _sqlite_ensure_steps(t: TableSpec) -> Rules:
    _, bare = index_name(t.name)
    yield ("exec", t.ddl, ())
    yield ("exec", f"CREATE INDEX IF NOT EXISTS {bare} ON {t.name} (created_at)", ())


def ensure_steps(dialect: Dialect, t: TableSpec) -> Rules:
    return _pg_ensure_steps(t) if dialect is Dialect.POSTGRES else _sqlite_ensure_steps(t)


# ---- drivers: run a rules generator on a connection ------------------------------------------


def drive(conn: Any, rules: Rules, hook: Callable[[Step], Any] | None = None) -> Any:
    """Runs the steps of ``rules`` on a DB-API connection; returns the generator's value."""
    value: Any = None
    try:
        step = rules.send(None)
        while True:
            kind = step[0]
            if kind == "exec" or kind == "one":
                cur = conn.cursor()
                try:
                    cur.execute(step[1], step[2])
                    value = cur.rowcount if kind == "exec" else cur.fetchone()
                finally:
                    cur.close()
            elif hook is not None:
                value = hook(step)
            else:  # pragma: no cover - a programming error
                raise RuntimeError(f"unexpected step {kind!r}")
            step = rules.send(value)
    except StopIteration as stop:
        return stop.value
    finally:
        rules.close()


async def drive_async(conn: Any, rules: Rules, hook: Callable[[Step], Any] | None = None) -> Any:
    """drive() for psycopg's AsyncConnection; ``hook`` may return an awaitable."""
    import inspect

    value: Any = None
    try:
        step = rules.send(None)
        while True:
            kind = step[0]
            if kind == "exec" or kind == "one":
                async with conn.cursor() as cur:
                    await cur.execute(step[1], step[2])
                    value = cur.rowcount if kind == "exec" else await cur.fetchone()
            elif hook is not None:
                value = hook(step)
                if inspect.isawaitable(value):
                    value = await value
            else:  # pragma: no cover
                raise RuntimeError(f"unexpected step {kind!r}")
            step = rules.send(value)
    except StopIteration as stop:
        return stop.value
    finally:
        rules.close()


# ---- transactions ----------------------------------------------------------------------------


def _pg_idle(conn: Any) -> bool:
    from psycopg import pq

    return conn.info.transaction_status == pq.TransactionStatus.IDLE


@contextlib.contextmanager
def transaction(dialect: Dialect, conn: Any, lock_timeout: float | None) -> Iterator[Any]:
    """One local transaction on ``conn``, committed at the end or rolled back on an exception.

    PostgreSQL (psycopg 3): READ COMMITTED, ``SET LOCAL lock_timeout`` when set.
    SQLite (sqlite3): ``BEGIN IMMEDIATE`` (the write lock at once, so a read
    before the first write cannot fail with SQLITE_BUSY), ``busy_timeout``
    set on the connection when given and restored afterwards.
    """
    if dialect is Dialect.POSTGRES:
        if not _pg_idle(conn):
            raise RuntimeError("the connection is already in a transaction: use run_in_transaction inside it, or commit first")
        with conn.transaction():
            # Every decision reads rows committed before the statement making it and waits on
            # row locks; under REPEATABLE READ a conflicting INSERT would fail instead.
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if lock_timeout:
                conn.execute(f"SET LOCAL lock_timeout = {max(1, int(lock_timeout * 1000))}")
            yield conn
        return
    if conn.in_transaction:
        raise RuntimeError("the connection is already in a transaction: use run_in_transaction inside it, or commit first")
    old: int | None = None
    if lock_timeout:
        old = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute(f"PRAGMA busy_timeout = {max(1, int(lock_timeout * 1000))}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:
            conn.execute("COMMIT")  # not conn.commit(): a no-op on an autocommit=True connection
    finally:
        if old is not None:
            conn.execute(f"PRAGMA busy_timeout = {int(old)}")


@contextlib.asynccontextmanager
async def transaction_async(conn: Any, lock_timeout: float | None) -> AsyncIterator[Any]:
    """transaction() for psycopg's AsyncConnection (PostgreSQL)."""
    if not _pg_idle(conn):
        raise RuntimeError("the connection is already in a transaction: use run_in_transaction inside it, or commit first")
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        if lock_timeout:
            await conn.execute(f"SET LOCAL lock_timeout = {max(1, int(lock_timeout * 1000))}")
        yield conn


def require_transaction(dialect: Dialect, conn: Any) -> None:
    """run_in_transaction needs the caller's transaction to be open already."""
    if dialect is Dialect.POSTGRES:
        if conn.autocommit and _pg_idle(conn):
            raise RuntimeError("run_in_transaction: the connection is in autocommit mode and no transaction is open (use `with conn.transaction():`)")
        return
    if not conn.in_transaction:
        raise RuntimeError("run_in_transaction: no transaction is open on the sqlite3 connection (execute BEGIN IMMEDIATE first, or use barrier.transaction(conn))")
