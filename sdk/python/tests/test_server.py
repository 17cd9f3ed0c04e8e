"""The status-code contract, health and shutdown over a real gRPC channel, sync and asyncio servers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import sqlite_connect
from kubetx_participant import Barrier, CheckPreparedRequest, Dialect, InvalidPayload, Participant, PreparedState, Refused, Request, Response, StatusError, connect_each_time
from kubetx_participant.aio import AsyncParticipant
from kubetx_participant.pb import participant_pb2 as pb
from kubetx_participant.pb import participant_pb2_grpc as pb_grpc

# What each payload makes the handler do, and the code the caller must see.
CASES: list[tuple[bytes, grpc.StatusCode]] = [
    (b"ok", grpc.StatusCode.OK),
    (b"none", grpc.StatusCode.OK),
    (b"refuse", grpc.StatusCode.ABORTED),
    (b"precondition", grpc.StatusCode.FAILED_PRECONDITION),
    (b"invalid", grpc.StatusCode.INVALID_ARGUMENT),
    (b"bad-json", grpc.StatusCode.INVALID_ARGUMENT),
    (b"boom", grpc.StatusCode.UNAVAILABLE),
    (b"status", grpc.StatusCode.RESOURCE_EXHAUSTED),
    (b"big", grpc.StatusCode.INTERNAL),
    (b"wrong-type", grpc.StatusCode.UNAVAILABLE),
]


def behave(r: Request) -> Any:
    p = r.payload
    if p == b"ok":
        return Response(f"ok {r.transaction_uid} {r.attempt}", b'{"x":1}')
    if p == b"none":
        return None
    if p == b"refuse":
        raise Refused("no funds")
    if p == b"precondition":
        raise Refused("protocol", grpc.StatusCode.FAILED_PRECONDITION)
    if p == b"invalid":
        raise InvalidPayload("bad payload")
    if p == b"bad-json":
        return r.json()
    if p == b"boom":
        raise RuntimeError("database down")
    if p == b"status":
        raise StatusError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
    if p == b"big":
        return Response(data=b"x" * 4097)
    if p == b"slow":
        time.sleep(0.5)
        return Response("slow done")
    return "a string"


class Sync:
    def try_(self, r: Request) -> Any:
        return behave(r)

    confirm = cancel = execute = compensate = deliver = try_

    def check_prepared(self, r: CheckPreparedRequest) -> PreparedState:
        return {"c": PreparedState.COMMITTED, "r": PreparedState.ROLLED_BACK}.get(r.transaction_uid, 42)  # type: ignore[return-value]


class Async:
    async def try_(self, r: Request) -> Any:
        if r.payload == b"slow":
            await asyncio.sleep(0.5)
            return Response("slow done")
        return behave(r)

    confirm = cancel = execute = compensate = deliver = try_

    async def check_prepared(self, r: CheckPreparedRequest) -> PreparedState:
        return Sync().check_prepared(r)


def branch(payload: bytes) -> pb.BranchRequest:
    return pb.BranchRequest(transaction_uid="u1", namespace="ns", name="tx", branch="b", operation="op", payload=payload, attempt=3)


def code_of(fn: Any, request: Any) -> tuple[grpc.StatusCode, Any]:
    try:
        return grpc.StatusCode.OK, fn(request, timeout=5)
    except grpc.RpcError as e:
        return e.code(), e


@pytest.fixture
def sync_server() -> Iterator[Participant]:
    h = Sync()
    p = Participant(tcc=h, saga=h, receiver=h, source=h, address="127.0.0.1:0", shutdown_grace=2)
    p.start()
    yield p
    p.stop(0)


def test_sync_status_codes(sync_server: Participant) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{sync_server.port}") as ch:
        tcc, saga, recv = pb_grpc.TccParticipantStub(ch), pb_grpc.SagaParticipantStub(ch), pb_grpc.MessageReceiverStub(ch)
        for fn in (tcc.Try, tcc.Confirm, tcc.Cancel, saga.Execute, saga.Compensate, recv.Deliver):
            for payload, want in CASES:
                got, resp = code_of(fn, branch(payload))
                assert got == want, (fn, payload, resp)
        _, resp = code_of(tcc.Try, branch(b"ok"))
        assert resp.message == "ok u1 3" and resp.data == b'{"x":1}'
        _, resp = code_of(tcc.Try, branch(b"none"))
        assert resp.message == "" and resp.data == b""
        got, err = code_of(tcc.Try, branch(b"refuse"))
        assert err.details() == "no funds"
        src = pb_grpc.MessageSourceStub(ch)
        assert src.CheckPrepared(pb.CheckPreparedRequest(transaction_uid="c"), timeout=5).state == pb.CheckPreparedResponse.STATE_COMMITTED
        assert src.CheckPrepared(pb.CheckPreparedRequest(transaction_uid="r"), timeout=5).state == pb.CheckPreparedResponse.STATE_ROLLED_BACK
        assert code_of(src.CheckPrepared, pb.CheckPreparedRequest(transaction_uid="x"))[0] == grpc.StatusCode.UNAVAILABLE
        hc = health_pb2_grpc.HealthStub(ch)
        for service in ("", "kubetx.v1.TccParticipant", "kubetx.v1.MessageSource"):
            assert hc.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_sync_unregistered_service_is_unimplemented() -> None:
    with Participant(saga=Sync(), address="127.0.0.1:0") as p, grpc.insecure_channel(f"127.0.0.1:{p.port}") as ch:
        assert code_of(pb_grpc.TccParticipantStub(ch).Try, branch(b"ok"))[0] == grpc.StatusCode.UNIMPLEMENTED
        assert code_of(pb_grpc.SagaParticipantStub(ch).Execute, branch(b"ok"))[0] == grpc.StatusCode.OK


def test_sync_graceful_shutdown_finishes_calls_in_flight() -> None:
    p = Participant(tcc=Sync(), address="127.0.0.1:0", shutdown_grace=5)
    p.start()
    result: dict[str, Any] = {}
    with grpc.insecure_channel(f"127.0.0.1:{p.port}") as ch:
        stub = pb_grpc.TccParticipantStub(ch)
        t = threading.Thread(target=lambda: result.update(r=code_of(stub.Try, branch(b"slow"))))
        t.start()
        time.sleep(0.2)
        p.stop()
        t.join()
        assert result["r"][0] == grpc.StatusCode.OK and result["r"][1].message == "slow done"
        assert code_of(stub.Try, branch(b"ok"))[0] == grpc.StatusCode.UNAVAILABLE  # gone
    p.wait()  # returns at once after stop


def test_participant_needs_a_handler() -> None:
    with pytest.raises(ValueError):
        Participant(address="127.0.0.1:0")
    with pytest.raises(TypeError):
        Participant(tcc=object(), address="127.0.0.1:0").start()


def test_barrier_backed_server_on_sqlite(tmp_path: Path) -> None:
    """The whole stack: serve(tcc=barrier.tcc(...)) over a real channel, answering repeats from the table."""
    connect = sqlite_connect(tmp_path / "bank.db")
    b = Barrier(Dialect.SQLITE, lock_timeout=5)
    conn = connect()
    b.ensure_table(conn)
    conn.execute("CREATE TABLE holds (uid TEXT PRIMARY KEY)")
    conn.close()

    class Holds:
        def try_(self, conn: Any, r: Request) -> Response:
            conn.execute("INSERT INTO holds (uid) VALUES (?)", (r.uid,))
            return Response("held", b'{"hold":"' + r.uid.encode() + b'"}')

        def confirm(self, conn: Any, r: Request) -> None:
            conn.execute("DELETE FROM holds WHERE uid = ?", (r.uid,))

        cancel = confirm

    with Participant(tcc=b.tcc(Holds(), connect_each_time(connect)), address="127.0.0.1:0") as p, \
            grpc.insecure_channel(f"127.0.0.1:{p.port}") as ch:
        stub = pb_grpc.TccParticipantStub(ch)
        first = stub.Try(branch(b"{}"), timeout=5)
        assert stub.Try(branch(b"{}"), timeout=5) == first
        assert stub.Confirm(branch(b"{}"), timeout=5).message == ""
        assert code_of(stub.Cancel, branch(b"{}"))[0] == grpc.StatusCode.FAILED_PRECONDITION
        null = pb.BranchRequest(transaction_uid="u2", branch="b")
        assert "null compensation" in stub.Cancel(null, timeout=5).message
        assert code_of(stub.Try, null)[0] == grpc.StatusCode.ABORTED
    conn = connect()
    assert conn.execute("SELECT count(*) FROM holds").fetchone()[0] == 0
    conn.close()


async def test_async_status_codes() -> None:
    h = Async()
    async with AsyncParticipant(tcc=h, saga=h, receiver=h, source=h, address="127.0.0.1:0", shutdown_grace=2) as p:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{p.port}") as ch:
            tcc, saga, recv = pb_grpc.TccParticipantStub(ch), pb_grpc.SagaParticipantStub(ch), pb_grpc.MessageReceiverStub(ch)
            for fn in (tcc.Try, tcc.Confirm, tcc.Cancel, saga.Execute, saga.Compensate, recv.Deliver):
                for payload, want in CASES:
                    try:
                        await fn(branch(payload), timeout=5)
                        got = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as e:
                        got = e.code()
                    assert got == want, (fn, payload)
            resp = await tcc.Try(branch(b"ok"), timeout=5)
            assert resp.message == "ok u1 3" and resp.data == b'{"x":1}'
            src = pb_grpc.MessageSourceStub(ch)
            assert (await src.CheckPrepared(pb.CheckPreparedRequest(transaction_uid="c"), timeout=5)).state == pb.CheckPreparedResponse.STATE_COMMITTED
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await src.CheckPrepared(pb.CheckPreparedRequest(transaction_uid="x"), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            hc = health_pb2_grpc.HealthStub(ch)
            assert (await hc.Check(health_pb2.HealthCheckRequest(service="kubetx.v1.SagaParticipant"), timeout=5)).status == health_pb2.HealthCheckResponse.SERVING

            # Graceful: a call in flight finishes during stop().
            slow = asyncio.ensure_future(tcc.Try(branch(b"slow"), timeout=5))
            await asyncio.sleep(0.2)
            await p.stop()
            assert (await slow).message == "slow done"
            await p.wait()
