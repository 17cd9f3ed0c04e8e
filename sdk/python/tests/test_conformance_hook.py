"""The ConformanceHook helpers over a real channel (the kit itself runs them in test/integration/bank-python.test.ts)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from conftest import sqlite_connect
from kubetx_participant import Barrier, CheckPreparedRequest, Dialect, Outbox, Participant, PreparedState, connect_each_time
from kubetx_participant.aio import AsyncParticipant
from kubetx_participant.conformance import SqlHookAccounts, add_conformance_hook, add_conformance_hook_async
from kubetx_participant.pb import hook_pb2, hook_pb2_grpc


def accounts_on(tmp_path: Path) -> tuple[SqlHookAccounts, Outbox, object]:
    connect = connect_each_time(sqlite_connect(tmp_path / "hook.db"))
    outbox = Outbox(Dialect.SQLITE)
    accounts = SqlHookAccounts(Dialect.SQLITE, connect, outbox=outbox)
    with connect() as conn:
        outbox.ensure_table(conn)
        accounts.ensure_table(conn)
        Barrier(Dialect.SQLITE).ensure_table(conn)
    return accounts, outbox, connect


def test_sync_hook(tmp_path: Path) -> None:
    accounts, outbox, connect = accounts_on(tmp_path)
    with Participant(source=outbox.source(connect), register=lambda s: add_conformance_hook(s, accounts), address="127.0.0.1:0") as p, \
            grpc.insecure_channel(f"127.0.0.1:{p.port}") as ch:
        hook = hook_pb2_grpc.ConformanceHookStub(ch)
        assert not hook.ReadAccount(hook_pb2.ReadAccountRequest(account="1"), timeout=5).found
        hook.OpenAccount(hook_pb2.OpenAccountRequest(account="1", balance=100), timeout=5)
        hook.PrepareMessage(hook_pb2.PrepareMessageRequest(transaction_uid="u1", account="1", amount=10, commit=True), timeout=5)
        hook.PrepareMessage(hook_pb2.PrepareMessageRequest(transaction_uid="u2", account="1", amount=10, commit=False), timeout=5)
        got = hook.ReadAccount(hook_pb2.ReadAccountRequest(account="1"), timeout=5)
        assert (got.found, got.balance, got.held) == (True, 90, 0)
        with connect() as conn:  # type: ignore[operator]
            assert outbox.check_prepared(conn, CheckPreparedRequest("u1")) is PreparedState.COMMITTED
            assert outbox.check_prepared(conn, CheckPreparedRequest("u2")) is PreparedState.ROLLED_BACK
        with pytest.raises(grpc.RpcError) as e:  # claimed by the check-back: the late prepare is fenced out
            hook.PrepareMessage(hook_pb2.PrepareMessageRequest(transaction_uid="u2", account="1", amount=10, commit=True), timeout=5)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as e:
            hook.OpenAccount(hook_pb2.OpenAccountRequest(account="", balance=1), timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert hook.ReadAccount(hook_pb2.ReadAccountRequest(account="1"), timeout=5).balance == 90


class MemoryAccounts:
    """Hook accounts with async methods and no prepare_message (not a source)."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[int, int]] = {}

    async def open_account(self, account: str, balance: int) -> None:
        self.accounts[account] = (balance, 0)

    async def read_account(self, account: str) -> tuple[int, int] | None:
        return self.accounts.get(account)


async def test_async_hook(tmp_path: Path) -> None:
    _, outbox, connect = accounts_on(tmp_path)
    accounts = MemoryAccounts()
    async with AsyncParticipant(source=outbox.source(connect), register=lambda s: add_conformance_hook_async(s, accounts), address="127.0.0.1:0") as p:  # type: ignore[arg-type]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{p.port}") as ch:
            hook = hook_pb2_grpc.ConformanceHookStub(ch)
            await hook.OpenAccount(hook_pb2.OpenAccountRequest(account="7", balance=5), timeout=5)
            got = await hook.ReadAccount(hook_pb2.ReadAccountRequest(account="7"), timeout=5)
            assert (got.found, got.balance, got.held) == (True, 5, 0)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await hook.PrepareMessage(hook_pb2.PrepareMessageRequest(transaction_uid="u", account="7", amount=1, commit=True), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
