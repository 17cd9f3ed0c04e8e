"""The sub-transaction barrier: idempotency, null compensation and anti-hanging in one table.

Every call runs in one local transaction with its row in ``kubetx_barrier``
(the TypeScript, Go and Java SDKs' table, same columns), written in the same
transaction as the business change:

1. **Claim the own key** ``(uid, branch, method)`` with ``INSERT … ON
   CONFLICT DO NOTHING``. A row already there with origin ``call`` is a
   repeat: answer from its message and data, run nothing. With origin
   ``blocker`` (a Try/Execute after its Cancel/Compensate): refuse, ABORTED.
2. **Cancel/Compensate** lock and read the Try/Execute row; with none, insert
   it as a ``blocker``: if that went in, this is a null compensation (answer
   OK, the handler does not run); if it conflicted, the Try committed
   meanwhile and the compensation runs.
3. **Confirm without a Try that ran** (or after a Cancel) is a protocol
   violation: FAILED_PRECONDITION. Confirm and Cancel both lock the Try row
   before looking for each other.
4. **Run the handler** on the same connection, record its response in the
   claimed row, commit. Any exception rolls everything back, claim included,
   so the next attempt starts clean.

Concurrency. PostgreSQL runs the barrier's transaction at READ COMMITTED: an
identical concurrent call waits on the claimed row's lock and is then
answered from the committed row (or runs itself, if the first rolled back); a
Cancel's blocker insert waits on an in-flight Try's uncommitted row. SQLite
has no row locks: ``BEGIN IMMEDIATE`` serializes writers (one write
transaction at a time, across processes too). Lock timeouts, deadlocks,
serialization failures and lost connections are plain exceptions, answered
UNAVAILABLE: the operator retries, and a commit that did happen answers the
retry from its row.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from kubetx_participant import _sql
from kubetx_participant.errors import Refused, check_data
from kubetx_participant.types import Dialect, Method, Outcome, Request, Response

DEFAULT_TABLE = "kubetx_barrier"
DEFAULT_RETENTION = _dt.timedelta(days=7)
"""Cleanup's customary age: longer than a transaction's timeout plus the operator's retry horizon."""

Handler = Callable[[Any, Request], "Response | None"]
"""A business handler run inside the barrier: ``handler(conn, request)``. It
reads and writes through ``conn`` (in the barrier's transaction) and must not
commit or roll back."""

AsyncHandler = Callable[[Any, Request], Awaitable["Response | None"]]


@dataclass(frozen=True, slots=True)
class Result:
    """What the barrier answered, and how."""

    response: Response
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Row:
    """A stored barrier row (inspection and tests)."""

    origin: str  # "call" (the method ran) or "blocker" (fences out a late Try/Execute)
    message: str
    data: bytes


class _Statements:
    def __init__(self, dialect: Dialect, table: str) -> None:
        p = _sql.placeholder(dialect)
        where = f"uid = {p} AND branch = {p} AND method = {p}"
        cols = "(uid, branch, method, origin, created_at, message, data)"
        self.select_row = f"SELECT origin, message, data FROM {table} WHERE {where}"
        self.fill = f"UPDATE {table} SET origin = {p}, created_at = {p}, message = {p}, data = {p} WHERE {where}"
        self.cleanup = f"DELETE FROM {table} WHERE uid IN (SELECT uid FROM {table} GROUP BY uid HAVING MAX(created_at) < {p})"
        self.claim = f"INSERT INTO {table} {cols} VALUES ({p}, {p}, {p}, 'call', {p}, '', NULL) ON CONFLICT (uid, branch, method) DO NOTHING"
        self.insert = f"INSERT INTO {table} {cols} VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (uid, branch, method) DO NOTHING"
        if dialect is Dialect.POSTGRES:
            self.select_for_update = self.select_row + " FOR UPDATE"
            self.ddl = f"""CREATE TABLE IF NOT EXISTS {table} (
  uid text NOT NULL,
  branch text NOT NULL,
  method text NOT NULL,
  origin text NOT NULL CHECK (origin IN ('call', 'blocker')),
  created_at bigint NOT NULL,
  message text NOT NULL DEFAULT '',
  data bytea,
  PRIMARY KEY (uid, branch, method)
)"""
        else:
            # SQLite has no row locks (writers are serialized): a plain read is the same as FOR UPDATE.
            self.select_for_update = self.select_row
            self.ddl = f"""CREATE TABLE IF NOT EXISTS {table} (
  uid TEXT NOT NULL,
  branch TEXT NOT NULL,
  method TEXT NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('call', 'blocker')),
  created_at INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  data BLOB,
  PRIMARY KEY (uid, branch, method)
)"""


def _row(r: Any) -> Row | None:
    if r is None:
        return None
    return Row(origin=r[0], message=r[1] or "", data=bytes(r[2] or b""))


def _normalize(resp: Any) -> Response:
    if resp is None:
        return Response()
    if not isinstance(resp, Response):
        raise TypeError(f"a handler must return a Response or None, not {type(resp).__name__}")
    if resp.data is None:  # type: ignore[comparison-overlap]
        return Response(resp.message or "", b"")
    return resp


class _Base:
    def __init__(
        self,
        dialect: Dialect | str,
        *,
        table: str = DEFAULT_TABLE,
        lock_timeout: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.dialect = Dialect(dialect)
        _sql.validate_table(self.dialect, table)
        if lock_timeout is not None and lock_timeout < 0:
            raise ValueError(f"negative lock timeout {lock_timeout}")
        self.table = table
        self.lock_timeout = lock_timeout
        self._clock = clock
        self._sql = _Statements(self.dialect, table)

    def _check(self, method: Method | str, req: Request) -> Method:
        m = Method(method)
        if not req.transaction_uid or not req.branch:
            raise Refused("transaction_uid and branch are required", grpc.StatusCode.FAILED_PRECONDITION)
        return m

    def _rules(self, method: Method, req: Request) -> _sql.Rules:
        """The barrier rules as steps; ("handler",) asks the driver to run the handler."""
        s, uid, branch, now = self._sql, req.transaction_uid, req.branch, _sql.now_ms(self._clock)
        claimed = yield ("exec", s.claim, (uid, branch, str(method), now))
        if claimed != 1:
            # Conflict: the row is committed (possibly by a call we just waited for);
            # a new statement reads it under READ COMMITTED.
            own = _row((yield ("one", s.select_row, (uid, branch, str(method)))))
            if own is None:
                raise RuntimeError(f"barrier: the {method} row of {uid}/{branch} changed concurrently; try again")
            if own.origin == "blocker":
                raise Refused(f"{method} arrived after its {method.compensation} (anti-hanging): refused")
            return Result(Response(own.message, own.data), Outcome.DUPLICATE)

        if method in (Method.CANCEL, Method.COMPENSATE):
            fwd = method.forward
            assert fwd is not None
            row = _row((yield ("one", s.select_for_update, (uid, branch, str(fwd)))))
            if row is None:
                # Waits on an in-flight Try/Execute's uncommitted row, if any.
                inserted = yield ("exec", s.insert, (uid, branch, str(fwd), "blocker", now, "", b""))
                if inserted == 1:
                    resp = Response(f"null compensation: no {fwd} had arrived, nothing to undo", b"")
                    yield ("exec", s.fill, ("call", now, resp.message, resp.data, uid, branch, str(method)))
                    return Result(resp, Outcome.NULL_COMPENSATION)
                # The Try/Execute was in flight and has committed meanwhile: an ordinary compensation.
                row = _row((yield ("one", s.select_for_update, (uid, branch, str(fwd)))))
                if row is None:
                    raise RuntimeError(f"barrier: the {fwd} row of {uid}/{branch} changed concurrently; try again")
            if method is Method.CANCEL:
                confirm = yield ("one", s.select_for_update, (uid, branch, str(Method.CONFIRM)))
                if confirm is not None:
                    raise Refused("Cancel after Confirm: protocol violation", grpc.StatusCode.FAILED_PRECONDITION)
        elif method is Method.CONFIRM:
            tried = _row((yield ("one", s.select_for_update, (uid, branch, str(Method.TRY)))))
            if tried is None or tried.origin != "call":
                raise Refused("Confirm without a successful Try: protocol violation", grpc.StatusCode.FAILED_PRECONDITION)
            cancel = yield ("one", s.select_for_update, (uid, branch, str(Method.CANCEL)))
            if cancel is not None:
                raise Refused("Confirm after Cancel: protocol violation", grpc.StatusCode.FAILED_PRECONDITION)

        resp = _normalize((yield ("handler",)))
        check_data(resp.data)
        yield ("exec", s.fill, ("call", _sql.now_ms(self._clock), resp.message, resp.data, uid, branch, str(method)))
        return Result(resp, Outcome.EXECUTED)

    def _cleanup_steps(self, older_than: _dt.timedelta | float) -> _sql.Rules:
        age = older_than.total_seconds() if isinstance(older_than, _dt.timedelta) else float(older_than)
        if age < 0:
            raise ValueError(f"cleanup: negative age {older_than}")
        n = yield ("exec", self._sql.cleanup, (_sql.now_ms(self._clock) - int(age * 1000),))
        return max(n, 0)

    def _get_steps(self, uid: str, branch: str, method: Method | str) -> _sql.Rules:
        return _row((yield ("one", self._sql.select_row, (uid, branch, str(Method(method))))))


ConnectionProvider = Callable[[], AbstractContextManager[Any]]
"""Gives a connection for one call: ``with provider() as conn: ...``, e.g.
``psycopg_pool.ConnectionPool(...).connection`` or ``connect_each_time(factory)``."""

AsyncConnectionProvider = Callable[[], AbstractAsyncContextManager[Any]]


def connect_each_time(factory: Callable[[], Any]) -> ConnectionProvider:
    """A provider that opens a new connection per call (``factory()``) and closes it after."""
    import contextlib

    @contextlib.contextmanager
    def provide() -> Iterator[Any]:
        conn = factory()
        try:
            yield conn
        finally:
            conn.close()

    return provide


class Barrier(_Base):
    """The barrier over DB-API connections: psycopg 3 (``Dialect.POSTGRES``) or sqlite3 (``Dialect.SQLITE``).

    It holds no connection: pass one to each call. Safe for concurrent use
    (each thread with its own connection).
    """

    def ensure_table(self, conn: Any) -> None:
        """Creates the table and its ``<table>_created_at`` index if missing (safe when several processes start at once)."""
        with _sql.transaction(self.dialect, conn, None):
            _sql.drive(conn, _sql.ensure_steps(self.dialect, _sql.TableSpec(self.table, self._sql.ddl)))

    def transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A transaction as the barrier wants it, committed at the end of the block
        (rolled back on an exception): READ COMMITTED and ``lock_timeout`` on
        PostgreSQL, ``BEGIN IMMEDIATE`` and ``busy_timeout`` on SQLite."""
        return _sql.transaction(self.dialect, conn, self.lock_timeout)

    def run_in_transaction(self, conn: Any, method: Method | str, request: Request, handler: Handler) -> Result:
        """Applies the rules and runs ``handler(conn, request)`` in the caller's open transaction on ``conn``;
        the caller commits (or rolls back on an exception).

        Exceptions: ``Refused`` for anti-hanging (ABORTED) and protocol violations
        (FAILED_PRECONDITION); the handler's own, unchanged; anything else is retryable.
        """
        m = self._check(method, request)
        _sql.require_transaction(self.dialect, conn)
        return _sql.drive(conn, self._rules(m, request), lambda _step: handler(conn, request))

    def run(self, conn: Any, method: Method | str, request: Request, handler: Handler) -> Result:
        """run_in_transaction in a transaction of its own on ``conn``, committed when the handler returns."""
        m = self._check(method, request)
        with self.transaction(conn):
            return _sql.drive(conn, self._rules(m, request), lambda _step: handler(conn, request))

    def cleanup(self, conn: Any, older_than: _dt.timedelta | float = DEFAULT_RETENTION) -> int:
        """Deletes whole transactions (every row of a uid) whose newest row is older than ``older_than``
        (a timedelta or seconds) and returns how many rows went.

        Choose the age longer than the transaction's timeout plus the operator's
        whole retry horizon: deleting earlier breaks idempotency (a late repeated
        Cancel would run again) and anti-hanging (a late Try would find no blocker).
        """
        with _sql.transaction(self.dialect, conn, None):
            return _sql.drive(conn, self._cleanup_steps(older_than))

    def get(self, conn: Any, uid: str, branch: str, method: Method | str) -> Row | None:
        """The committed row for (uid, branch, method), or None."""
        with _sql.transaction(self.dialect, conn, None):
            return _sql.drive(conn, self._get_steps(uid, branch, method))

    # ---- adapters for the server ----

    def tcc(self, handlers: TxTcc, connect: ConnectionProvider) -> _TccAdapter:
        """A TccParticipant for ``serve``: each method runs through ``run`` on a connection from ``connect``."""
        return _TccAdapter(self, handlers, connect)

    def saga(self, handlers: TxSaga, connect: ConnectionProvider) -> _SagaAdapter:
        return _SagaAdapter(self, handlers, connect)

    def receiver(self, handlers: TxReceiver, connect: ConnectionProvider) -> _ReceiverAdapter:
        """Deliver deduplicated on (uid, branch)."""
        return _ReceiverAdapter(self, handlers, connect)

    def _call(self, connect: ConnectionProvider, method: Method, req: Request, handler: Handler) -> Response:
        with connect() as conn:
            return self.run(conn, method, req, handler).response


class TxTcc(Protocol):
    """TCC handlers run inside the barrier's transaction: write through ``conn``, never commit it."""

    def try_(self, conn: Any, request: Request) -> Response | None: ...
    def confirm(self, conn: Any, request: Request) -> Response | None: ...
    def cancel(self, conn: Any, request: Request) -> Response | None: ...


class TxSaga(Protocol):
    def execute(self, conn: Any, request: Request) -> Response | None: ...
    def compensate(self, conn: Any, request: Request) -> Response | None: ...


class TxReceiver(Protocol):
    def deliver(self, conn: Any, request: Request) -> Response | None: ...


class _TccAdapter:
    def __init__(self, b: Barrier, h: TxTcc, connect: ConnectionProvider) -> None:
        self._b, self._h, self._connect = b, h, connect

    def try_(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.TRY, request, self._h.try_)

    def confirm(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.CONFIRM, request, self._h.confirm)

    def cancel(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.CANCEL, request, self._h.cancel)


class _SagaAdapter:
    def __init__(self, b: Barrier, h: TxSaga, connect: ConnectionProvider) -> None:
        self._b, self._h, self._connect = b, h, connect

    def execute(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.EXECUTE, request, self._h.execute)

    def compensate(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.COMPENSATE, request, self._h.compensate)


class _ReceiverAdapter:
    def __init__(self, b: Barrier, h: TxReceiver, connect: ConnectionProvider) -> None:
        self._b, self._h, self._connect = b, h, connect

    def deliver(self, request: Request) -> Response:
        return self._b._call(self._connect, Method.DELIVER, request, self._h.deliver)


# ---- asyncio: psycopg's AsyncConnection -------------------------------------------------------


class AsyncBarrier(_Base):
    """The barrier on psycopg 3's ``AsyncConnection`` (PostgreSQL only); the same rules and table."""

    def __init__(self, *, table: str = DEFAULT_TABLE, lock_timeout: float | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__(Dialect.POSTGRES, table=table, lock_timeout=lock_timeout, clock=clock)

    async def ensure_table(self, conn: Any) -> None:
        async with _sql.transaction_async(conn, None):
            await _sql.drive_async(conn, _sql.ensure_steps(self.dialect, _sql.TableSpec(self.table, self._sql.ddl)))

    def transaction(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        return _sql.transaction_async(conn, self.lock_timeout)

    async def run_in_transaction(self, conn: Any, method: Method | str, request: Request, handler: AsyncHandler | Handler) -> Result:
        m = self._check(method, request)
        _sql.require_transaction(self.dialect, conn)
        return await _sql.drive_async(conn, self._rules(m, request), lambda _step: handler(conn, request))

    async def run(self, conn: Any, method: Method | str, request: Request, handler: AsyncHandler | Handler) -> Result:
        m = self._check(method, request)
        async with self.transaction(conn):
            return await _sql.drive_async(conn, self._rules(m, request), lambda _step: handler(conn, request))

    async def cleanup(self, conn: Any, older_than: _dt.timedelta | float = DEFAULT_RETENTION) -> int:
        async with _sql.transaction_async(conn, None):
            return await _sql.drive_async(conn, self._cleanup_steps(older_than))

    async def get(self, conn: Any, uid: str, branch: str, method: Method | str) -> Row | None:
        async with _sql.transaction_async(conn, None):
            return await _sql.drive_async(conn, self._get_steps(uid, branch, method))

    def tcc(self, handlers: Any, connect: AsyncConnectionProvider) -> _AsyncAdapter:
        """An async TccParticipant for ``serve_async``; handlers are ``async def try_(conn, request)`` etc."""
        return _AsyncAdapter(self, handlers, connect, {"try_": Method.TRY, "confirm": Method.CONFIRM, "cancel": Method.CANCEL})

    def saga(self, handlers: Any, connect: AsyncConnectionProvider) -> _AsyncAdapter:
        return _AsyncAdapter(self, handlers, connect, {"execute": Method.EXECUTE, "compensate": Method.COMPENSATE})

    def receiver(self, handlers: Any, connect: AsyncConnectionProvider) -> _AsyncAdapter:
        return _AsyncAdapter(self, handlers, connect, {"deliver": Method.DELIVER})


class _AsyncAdapter:
    def __init__(self, b: AsyncBarrier, h: Any, connect: AsyncConnectionProvider, methods: dict[str, Method]) -> None:
        for attr, method in methods.items():
            setattr(self, attr, self._bind(b, getattr(h, attr), connect, method))

    @staticmethod
    def _bind(b: AsyncBarrier, handler: Any, connect: AsyncConnectionProvider, method: Method) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            async with connect() as conn:
                return (await b.run(conn, method, request, handler)).response

        return call


__all__ = [
    "DEFAULT_RETENTION",
    "DEFAULT_TABLE",
    "AsyncBarrier",
    "Barrier",
    "ConnectionProvider",
    "Handler",
    "Result",
    "Row",
    "TxReceiver",
    "TxSaga",
    "TxTcc",
    "connect_each_time",
]

