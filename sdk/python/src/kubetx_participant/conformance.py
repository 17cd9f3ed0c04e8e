"""The conformance kit's test hook (proto/kubetx/conformance/v1/hook.proto) for Python participants.

``add_conformance_hook(server, accounts)`` (or ``add_conformance_hook_async``
for grpc.aio) serves ``kubetx.conformance.v1.ConformanceHook`` over an object
with ``open_account(account, balance)``, ``read_account(account) -> (balance,
held) | None`` and, for a MessageSource, ``prepare_message(key, account,
amount, commit)``; pass it as ``register=`` to ``serve``. Serve the hook only
in test deployments (it opens accounts and moves money), behind an explicit
opt-in.

``SqlHookAccounts`` keeps the accounts in an extra table and implements the
kit's business operation for every service (TCC, Saga, Deliver, and the
outbox's PrepareMessage) through the barrier's connection, for a participant
whose own tables cannot express "balance and held".

``python -m kubetx_participant.conformance --sqlite FILE | --database-url URL``
serves a reference participant built only from the SDK (all four services
and the hook, on that table), for the kit:
``bin/kubetx-conformance --target 127.0.0.1:50051 --services tcc,saga,receiver,source``.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from typing import Any, Protocol

import grpc

from kubetx_participant import _sql
from kubetx_participant._gen.kubetx.conformance.v1 import hook_pb2, hook_pb2_grpc
from kubetx_participant.barrier import Barrier, ConnectionProvider, connect_each_time
from kubetx_participant.errors import InvalidPayload, Refused, StatusError, status_for
from kubetx_participant.message import MessageKey, Outbox, RolledBack
from kubetx_participant.types import Dialect, Request, Response

DEFAULT_ACCOUNTS_TABLE = "kubetx_conformance_accounts"


class HookAccounts(Protocol):
    def open_account(self, account: str, balance: int) -> None: ...
    def read_account(self, account: str) -> tuple[int, int] | None: ...


def _hook_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, RolledBack):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    return status_for(exc)


class _SyncHook(hook_pb2_grpc.ConformanceHookServicer):
    def __init__(self, accounts: Any) -> None:
        self._a = accounts

    def OpenAccount(self, request: Any, context: Any) -> Any:
        if not request.account or request.balance < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account must be named and balance must not be negative")
        try:
            self._a.open_account(request.account, request.balance)
        except Exception as exc:  # the contract's mapping
            context.abort(*_hook_status(exc))
        return hook_pb2.OpenAccountResponse()

    def ReadAccount(self, request: Any, context: Any) -> Any:
        try:
            got = self._a.read_account(request.account)
        except Exception as exc:
            context.abort(*_hook_status(exc))
        if got is None:
            return hook_pb2.ReadAccountResponse()
        return hook_pb2.ReadAccountResponse(found=True, balance=got[0], held=got[1])

    def PrepareMessage(self, request: Any, context: Any) -> Any:
        prepare: Any = getattr(self._a, "prepare_message", None)
        if prepare is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this participant is not a message source")
        try:
            prepare(MessageKey(request.transaction_uid, request.namespace, request.name), request.account, request.amount, request.commit)
        except Exception as exc:
            context.abort(*_hook_status(exc))
        return hook_pb2.PrepareMessageResponse()


class _AsyncHook(hook_pb2_grpc.ConformanceHookServicer):
    def __init__(self, accounts: Any) -> None:
        self._a = accounts

    @staticmethod
    async def _call(fn: Any, *args: Any) -> Any:
        got = fn(*args)
        return await got if inspect.isawaitable(got) else got

    async def OpenAccount(self, request: Any, context: Any) -> Any:
        if not request.account or request.balance < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account must be named and balance must not be negative")
        try:
            await self._call(self._a.open_account, request.account, request.balance)
        except Exception as exc:
            await context.abort(*_hook_status(exc))
        return hook_pb2.OpenAccountResponse()

    async def ReadAccount(self, request: Any, context: Any) -> Any:
        try:
            got = await self._call(self._a.read_account, request.account)
        except Exception as exc:
            await context.abort(*_hook_status(exc))
        if got is None:
            return hook_pb2.ReadAccountResponse()
        return hook_pb2.ReadAccountResponse(found=True, balance=got[0], held=got[1])

    async def PrepareMessage(self, request: Any, context: Any) -> Any:
        prepare: Any = getattr(self._a, "prepare_message", None)
        if prepare is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this participant is not a message source")
        try:
            await self._call(prepare, MessageKey(request.transaction_uid, request.namespace, request.name), request.account, request.amount, request.commit)
        except Exception as exc:
            await context.abort(*_hook_status(exc))
        return hook_pb2.PrepareMessageResponse()


def add_conformance_hook(server: grpc.Server, accounts: HookAccounts) -> None:
    """Registers the ConformanceHook on a sync server (e.g. ``serve(register=lambda s: add_conformance_hook(s, accounts))``)."""
    hook_pb2_grpc.add_ConformanceHookServicer_to_server(_SyncHook(accounts), server)


def add_conformance_hook_async(server: Any, accounts: Any) -> None:
    """The same for a grpc.aio server; the methods may be ``async def``."""
    hook_pb2_grpc.add_ConformanceHookServicer_to_server(_AsyncHook(accounts), server)


class _RollBack(Exception):
    pass


class SqlHookAccounts:
    """Accounts in an extra table (account, balance, held), written through the barrier's connection.

    As handlers (``barrier.tcc(accounts, connect)``, ``.saga``, ``.receiver``)
    it does the kit's business operation to the payload's account:
    Try holds, Confirm takes, Cancel releases, Execute debits, Compensate
    credits back, Deliver credits. With an ``outbox`` it is also the source's
    ``prepare_message``: the debit and the prepared message in one local
    transaction.
    """

    def __init__(self, dialect: Dialect | str, connect: ConnectionProvider, *, table: str = DEFAULT_ACCOUNTS_TABLE, outbox: Outbox | None = None) -> None:
        self.dialect = Dialect(dialect)
        _sql.validate_table(self.dialect, table)
        self.table, self._connect, self._outbox = table, connect, outbox
        p = _sql.placeholder(self.dialect)
        self._p = p
        self._upsert = (f"INSERT INTO {table} (account, balance, held) VALUES ({p}, {p}, 0) "
                        "ON CONFLICT (account) DO UPDATE SET balance = excluded.balance, held = 0")
        self._read = f"SELECT balance, held FROM {table} WHERE account = {p}"

    def ensure_table(self, conn: Any) -> None:
        with _sql.transaction(self.dialect, conn, None):
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (account TEXT PRIMARY KEY, balance BIGINT NOT NULL, held BIGINT NOT NULL DEFAULT 0)")

    # ---- the hook ----

    def open_account(self, account: str, balance: int) -> None:
        with self._connect() as conn, _sql.transaction(self.dialect, conn, None):
            conn.execute(self._upsert, (account, balance))

    def read_account(self, account: str) -> tuple[int, int] | None:
        with self._connect() as conn, _sql.transaction(self.dialect, conn, None):
            row = conn.execute(self._read, (account,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def prepare_message(self, key: MessageKey, account: str, amount: int, commit: bool) -> None:
        if self._outbox is None:
            raise grpc_unimplemented()

        def debit(conn: Any) -> None:
            self._change(conn, "balance = balance - {p}", "balance - held >= {p}", amount, account, refuse=True)
            if not commit:
                raise _RollBack()

        with self._connect() as conn:
            try:
                self._outbox.run_local(conn, key, debit)
            except _RollBack:
                pass

    # ---- the business operation, as barrier handlers ----

    def _args(self, r: Request) -> tuple[str, int]:
        p = r.json()
        if not isinstance(p, dict) or not isinstance(p.get("account"), (str, int)) or not isinstance(p.get("amount"), int) or p["amount"] <= 0:
            raise InvalidPayload('payload: want {"account": id, "amount": positive integer}')
        return str(p["account"]), int(p["amount"])

    def _change(self, conn: Any, set_: str, cond: str, amount: int, account: str | None = None, refuse: bool = False) -> None:
        p = self._p
        where = f"account = {p}" + (f" AND {cond.format(p=p)}" if cond else "")
        params: tuple[Any, ...] = (amount, account) + ((amount,) if cond else ())
        cur = conn.execute(f"UPDATE {self.table} SET {set_.format(p=p)} WHERE {where}", params)
        if cur.rowcount != 1:
            if refuse:
                raise Refused(f"insufficient funds on {account} for {amount}")
            raise RuntimeError(f"no account {account}")

    def try_(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        self._change(conn, "held = held + {p}", "balance - held >= {p}", amount, account, refuse=True)
        return Response.of_json({"account": account, "amount": amount}, f"held {amount}")

    def confirm(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        p = self._p
        cur = conn.execute(f"UPDATE {self.table} SET balance = balance - {p}, held = held - {p} WHERE account = {p}", (amount, amount, account))
        if cur.rowcount != 1:
            raise RuntimeError(f"no account {account}")
        return Response(f"took {amount}")

    def cancel(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        self._change(conn, "held = held - {p}", "", amount, account)
        return Response(f"released {amount}")

    def execute(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        self._change(conn, "balance = balance - {p}", "balance - held >= {p}", amount, account, refuse=True)
        return Response.of_json({"account": account, "amount": amount}, f"debited {amount}")

    def compensate(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        self._change(conn, "balance = balance + {p}", "", amount, account)
        return Response(f"credited back {amount}")

    def deliver(self, conn: Any, r: Request) -> Response:
        account, amount = self._args(r)
        self._change(conn, "balance = balance + {p}", "", amount, account)
        return Response(f"credited {amount}")


def grpc_unimplemented() -> Exception:
    return StatusError(grpc.StatusCode.UNIMPLEMENTED, "this participant is not a message source")


def main(argv: list[str] | None = None) -> int:
    """A reference participant from the SDK alone: every service and the hook, on one accounts table."""
    from kubetx_participant.server import Participant, stop_on_signals

    ap = argparse.ArgumentParser(prog="python -m kubetx_participant.conformance", description=main.__doc__)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite", help="an SQLite file")
    where.add_argument("--database-url", help="a PostgreSQL URL (psycopg 3)")
    ap.add_argument("--listen", default="127.0.0.1:50051", help="host:port; port 0 picks a free one (printed as 'listening on PORT')")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    if a.sqlite:
        import sqlite3

        dialect = Dialect.SQLITE
        path = a.sqlite

        def factory() -> Any:
            conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn

        connect = connect_each_time(factory)
        pool = None
    else:
        from psycopg_pool import ConnectionPool

        dialect = Dialect.POSTGRES
        pool = ConnectionPool(a.database_url, min_size=1, max_size=20, open=True)
        connect = pool.connection
    try:
        barrier, outbox = Barrier(dialect, lock_timeout=10), Outbox(dialect, lock_timeout=10)
        accounts = SqlHookAccounts(dialect, connect, outbox=outbox)
        with connect() as conn:
            barrier.ensure_table(conn)
            outbox.ensure_table(conn)
            accounts.ensure_table(conn)
        p = Participant(tcc=barrier.tcc(accounts, connect), saga=barrier.saga(accounts, connect), receiver=barrier.receiver(accounts, connect),
                        source=outbox.source(connect), register=lambda s: add_conformance_hook(s, accounts), address=a.listen, max_workers=40)
        port = p.start()
        stop_on_signals(p)
        print(f"listening on {port}", flush=True)
        p.wait()
        return 0
    finally:
        if pool is not None:
            pool.close()


if __name__ == "__main__":
    sys.exit(main())
