"""bank-python as a process: flags, schema, the hook, TCC and Saga transfers, refusals, SIGTERM.

(The conformance kit and the operator drive it in test/integration/bank-python.test.ts.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from kubetx_participant.pb import hook_pb2, hook_pb2_grpc
from kubetx_participant.pb import participant_pb2 as pb
from kubetx_participant.pb import participant_pb2_grpc as pb_grpc
from kubetx_participant.testing import PostgresServer

HERE = Path(__file__).resolve().parents[1]


class BankProcess:
    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bank_python", "--bank", "alpha", "--listen", "127.0.0.1:0",
                                      "--database-url", url, "--shutdown-grace", "2s", *args],
                                     cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"bank exited: {self.proc.wait()} {self.proc.stderr.read() if self.proc.stderr else ''}")
            rec = json.loads(line)
            self.lines.append(rec)
            if rec["msg"] == "bank listening":
                self.address = rec["address"]
                return
        raise AssertionError("bank did not listen")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with PostgresServer() as server:
        yield server.create_database("bank")


@pytest.fixture(scope="module")
def bank(database: str) -> Iterator[BankProcess]:
    b = BankProcess(database, "--conformance-hook")
    yield b
    assert b.stop() == 0


def call(fn: Any, op: str, payload: Any, uid: str, branch: str = "out", result: bytes = b"", attempt: int = 1) -> tuple[grpc.StatusCode, Any]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        return grpc.StatusCode.OK, fn(pb.BranchRequest(transaction_uid=uid, namespace="bank", name="t", branch=branch, operation=op,
                                                       payload=raw, attempt=attempt, result=result), timeout=5)
    except grpc.RpcError as e:
        return e.code(), e


def test_transfers(bank: BankProcess, database: str) -> None:
    with grpc.insecure_channel(bank.address) as ch:
        hook, tcc, saga = hook_pb2_grpc.ConformanceHookStub(ch), pb_grpc.TccParticipantStub(ch), pb_grpc.SagaParticipantStub(ch)
        for account, balance in (("alice", 500), ("bob", 100)):
            hook.OpenAccount(hook_pb2.OpenAccountRequest(account=account, balance=balance), timeout=5)

        # TCC: 100 from alice to bob, both halves on this bank.
        uid = str(uuid.uuid4())
        code, out = call(tcc.Try, "TransOut", {"account": "alice", "amount": 100}, uid, "out")
        assert code == grpc.StatusCode.OK and json.loads(out.data) == {"amount": 100}
        assert call(tcc.Try, "TransIn", {"account": "bob", "amount": 100}, uid, "in")[0] == grpc.StatusCode.OK
        assert hook.ReadAccount(hook_pb2.ReadAccountRequest(account="alice"), timeout=5).held == 100
        assert call(tcc.Confirm, "TransOut", {"account": "alice", "amount": 100}, uid, "out", out.data)[0] == grpc.StatusCode.OK
        assert call(tcc.Confirm, "TransIn", {"account": "bob", "amount": 100}, uid, "in")[0] == grpc.StatusCode.OK
        assert call(tcc.Confirm, "TransIn", {"account": "bob", "amount": 100}, uid, "in", attempt=2)[0] == grpc.StatusCode.OK

        # Refused for want of funds, and the Cancel after it changes nothing.
        uid2 = str(uuid.uuid4())
        code, err = call(tcc.Try, "TransOut", {"account": "alice", "amount": 1_000_000}, uid2)
        assert code == grpc.StatusCode.ABORTED and "insufficient funds" in err.details()
        assert call(tcc.Cancel, "TransOut", {"account": "alice", "amount": 1_000_000}, uid2)[0] == grpc.StatusCode.OK

        # Saga: 50 from bob to alice, then compensated.
        uid3 = str(uuid.uuid4())
        assert call(saga.Execute, "TransOut", {"account": "bob", "amount": 50}, uid3, "out")[0] == grpc.StatusCode.OK
        assert call(saga.Execute, "TransIn", {"account": "alice", "amount": 50}, uid3, "in")[0] == grpc.StatusCode.OK
        assert call(saga.Compensate, "TransIn", {"account": "alice", "amount": 50}, uid3, "in")[0] == grpc.StatusCode.OK
        assert call(saga.Compensate, "TransOut", {"account": "bob", "amount": 50}, uid3, "out")[0] == grpc.StatusCode.OK

        # Bad requests: INVALID_ARGUMENT before anything changes; an unknown account is a refusal.
        for op, payload in (("TransOut", b"{"), ("TransOut", {"account": "alice"}), ("TransOut", {"account": "alice", "amount": -1}), ("Nope", {"account": "alice", "amount": 1})):
            assert call(tcc.Try, op, payload, str(uuid.uuid4()))[0] == grpc.StatusCode.INVALID_ARGUMENT, (op, payload)
        assert call(saga.Execute, "TransIn", {"account": "nobody", "amount": 1}, str(uuid.uuid4()))[0] == grpc.StatusCode.ABORTED
        # The kit's operation is taken as TransOut with the hook on.
        assert call(tcc.Try, "conformance", {"account": "alice", "amount": 1}, str(uuid.uuid4()))[0] == grpc.StatusCode.OK

        # A Saga TransIn whose credit was spent cannot be compensated yet: UNAVAILABLE, retried.
        hook.OpenAccount(hook_pb2.OpenAccountRequest(account="carol", balance=0), timeout=5)
        uid4 = str(uuid.uuid4())
        assert call(saga.Execute, "TransIn", {"account": "carol", "amount": 30}, uid4, "in")[0] == grpc.StatusCode.OK
        assert call(saga.Execute, "TransOut", {"account": "carol", "amount": 30}, str(uuid.uuid4()), "out")[0] == grpc.StatusCode.OK
        assert call(saga.Compensate, "TransIn", {"account": "carol", "amount": 30}, uid4, "in")[0] == grpc.StatusCode.UNAVAILABLE

    with psycopg.connect(database) as conn:
        balances = dict(conn.execute("SELECT id, balance - held FROM accounts").fetchall())
        assert balances == {"alice": 399, "bob": 200, "carol": 0}
        dup = conn.execute("SELECT count(*) FROM (SELECT uid, branch, method FROM applied GROUP BY 1, 2, 3 HAVING count(*) > 1) d").fetchone()
        assert dup == (0,)
        assert conn.execute("SELECT count(*) FROM pending_credits").fetchone() == (0,)


def test_flags_and_fault_injection(database: str) -> None:
    bad = subprocess.run([sys.executable, "-m", "bank_python", "--bank", "x"], cwd=HERE, capture_output=True, text=True)
    assert bad.returncode == 2 and "--database-url is required" in bad.stderr
    b = BankProcess(database, "--fault-rate", "1", "--fault-seed", "7")
    try:
        with grpc.insecure_channel(b.address) as ch:
            code, err = call(pb_grpc.TccParticipantStub(ch).Try, "TransOut", {"account": "alice", "amount": 1}, str(uuid.uuid4()))
            assert code == grpc.StatusCode.UNAVAILABLE and "injected fault" in err.details()
    finally:
        assert b.stop() == 0
