"""The barrier rules on PostgreSQL (psycopg 3) and SQLite (sqlite3), over real databases."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from conftest import Database, req
from kubetx_participant import Barrier, DataTooLarge, Method, Outcome, Refused, Response
from kubetx_participant.barrier import DEFAULT_TABLE


class Counting:
    """A handler that writes one row per run into `effects`, in the barrier's transaction."""

    def __init__(self, db: Database, data: bytes = b'{"hold":1}', fail: Exception | None = None) -> None:
        self.db, self.data, self.fail, self.calls = db, data, fail, 0
        self._lock = threading.Lock()

    def __call__(self, conn: Any, r: Any) -> Response:
        with self._lock:
            self.calls += 1
        conn.execute(self.db.q("INSERT INTO effects (uid, method) VALUES (?, ?)"), (r.transaction_uid, "x"))
        if self.fail is not None:
            raise self.fail
        return Response(message=f"done {r.attempt}", data=self.data)


@pytest.fixture
def barrier(db: Database) -> Barrier:
    b = Barrier(db.dialect)
    conn = db.connect()
    try:
        b.ensure_table(conn)
        b.ensure_table(conn)  # idempotent
    finally:
        conn.close()
    db.exec("CREATE TABLE effects (uid TEXT NOT NULL, method TEXT NOT NULL)")
    return b


def run(db: Database, b: Barrier, method: Method, r: Any, h: Any) -> Any:
    conn = db.connect()
    try:
        return b.run(conn, method, r, h)
    finally:
        conn.close()


def effects(db: Database, uid: str) -> int:
    return int(db.scalar("SELECT count(*) FROM effects WHERE uid = ?", uid))


def test_repeated_try_answers_the_same_and_runs_once(db: Database, barrier: Barrier) -> None:
    h = Counting(db)
    r = req()
    first = run(db, barrier, Method.TRY, r, h)
    again = run(db, barrier, Method.TRY, req(r.uid, attempt=2), h)
    assert first.outcome is Outcome.EXECUTED and again.outcome is Outcome.DUPLICATE
    assert again.response == first.response == Response("done 1", b'{"hold":1}')
    assert h.calls == 1 and effects(db, r.uid) == 1


@pytest.mark.parametrize("method", [Method.CANCEL, Method.COMPENSATE])
def test_null_compensation_runs_nothing_and_blocks_the_late_forward_call(db: Database, barrier: Barrier, method: Method) -> None:
    h = Counting(db)
    r = req()
    res = run(db, barrier, method, r, h)
    assert res.outcome is Outcome.NULL_COMPENSATION and h.calls == 0
    assert "null compensation" in res.response.message
    assert run(db, barrier, method, req(r.uid, attempt=2), h).outcome is Outcome.DUPLICATE
    fwd = method.forward
    assert fwd is not None
    with pytest.raises(Refused) as e:  # anti-hanging
        run(db, barrier, fwd, r, h)
    assert e.value.code == grpc.StatusCode.ABORTED and "anti-hanging" in e.value.message
    assert h.calls == 0 and effects(db, r.uid) == 0
    conn = db.connect()
    try:
        row = barrier.get(conn, r.uid, r.branch, fwd)
    finally:
        conn.close()
    assert row is not None and row.origin == "blocker"


def test_confirm_without_try_is_refused_and_not_recorded(db: Database, barrier: Barrier) -> None:
    h = Counting(db)
    r = req()
    with pytest.raises(Refused) as e:
        run(db, barrier, Method.CONFIRM, r, h)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and h.calls == 0
    assert db.scalar(f"SELECT count(*) FROM {DEFAULT_TABLE} WHERE uid = ?", r.uid) == 0


def test_try_confirm_then_cancel_is_a_protocol_violation(db: Database, barrier: Barrier) -> None:
    h = Counting(db)
    r = req()
    run(db, barrier, Method.TRY, r, h)
    assert run(db, barrier, Method.CONFIRM, r, h).outcome is Outcome.EXECUTED
    with pytest.raises(Refused) as e:
        run(db, barrier, Method.CANCEL, r, h)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert run(db, barrier, Method.CONFIRM, req(r.uid, attempt=2), h).outcome is Outcome.DUPLICATE
    assert h.calls == 2


def test_try_cancel_runs_the_compensation_once(db: Database, barrier: Barrier) -> None:
    h = Counting(db)
    r = req()
    run(db, barrier, Method.TRY, r, h)
    assert run(db, barrier, Method.CANCEL, r, h).outcome is Outcome.EXECUTED
    assert run(db, barrier, Method.CANCEL, r, h).outcome is Outcome.DUPLICATE
    with pytest.raises(Refused):
        run(db, barrier, Method.CONFIRM, r, h)
    assert h.calls == 2 and effects(db, r.uid) == 2


@pytest.mark.parametrize("fail", [RuntimeError("boom"), Refused("no funds")])
def test_a_handler_exception_records_nothing(db: Database, barrier: Barrier, fail: Exception) -> None:
    r = req()
    with pytest.raises(type(fail)):
        run(db, barrier, Method.TRY, r, Counting(db, fail=fail))
    assert effects(db, r.uid) == 0
    assert db.scalar(f"SELECT count(*) FROM {DEFAULT_TABLE} WHERE uid = ?", r.uid) == 0
    ok = Counting(db)
    assert run(db, barrier, Method.TRY, r, ok).outcome is Outcome.EXECUTED and ok.calls == 1


def test_data_over_4_kib_records_nothing(db: Database, barrier: Barrier) -> None:
    r = req()
    with pytest.raises(DataTooLarge):
        run(db, barrier, Method.EXECUTE, r, Counting(db, data=b"x" * 4097))
    assert effects(db, r.uid) == 0
    assert run(db, barrier, Method.EXECUTE, r, Counting(db, data=b"x" * 4096)).response.data == b"x" * 4096


def test_none_response_is_empty_ok(db: Database, barrier: Barrier) -> None:
    r = req()
    res = run(db, barrier, Method.DELIVER, r, lambda conn, rq: None)
    assert res.response == Response("", b"")
    assert run(db, barrier, Method.DELIVER, r, lambda conn, rq: None).outcome is Outcome.DUPLICATE


def test_run_in_transaction_commits_with_the_callers_transaction(db: Database, barrier: Barrier) -> None:
    r = req()
    conn = db.connect()
    try:
        with barrier.transaction(conn):
            res = barrier.run_in_transaction(conn, Method.TRY, r, Counting(db))
            conn.execute(db.q("INSERT INTO effects (uid, method) VALUES (?, 'own')"), (r.uid,))
            raise_ = False
        assert res.outcome is Outcome.EXECUTED and not raise_
        assert effects(db, r.uid) == 2
        # The caller rolls back: neither its own change nor the barrier row stays.
        r2 = req()
        with pytest.raises(ZeroDivisionError):
            with barrier.transaction(conn):
                barrier.run_in_transaction(conn, Method.TRY, r2, Counting(db))
                1 / 0  # noqa: B018
        assert effects(db, r2.uid) == 0
        assert db.scalar(f"SELECT count(*) FROM {DEFAULT_TABLE} WHERE uid = ?", r2.uid) == 0
        # Outside a transaction it refuses to run (each statement would commit by itself).
        if db.dialect.value == "sqlite":
            with pytest.raises(RuntimeError, match="no transaction"):
                barrier.run_in_transaction(conn, Method.TRY, req(), Counting(db))
    finally:
        conn.close()


def test_missing_uid_or_branch_is_refused(db: Database, barrier: Barrier) -> None:
    with pytest.raises(Refused) as e:
        run(db, barrier, Method.TRY, req(branch=""), Counting(db))
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_cleanup_deletes_whole_old_transactions(db: Database) -> None:
    now = [1_000_000.0]
    b = Barrier(db.dialect, table="kubetx_barrier_clean", clock=lambda: now[0])
    conn = db.connect()
    try:
        b.ensure_table(conn)
        old, young = req(), req()
        b.run(conn, Method.TRY, old, lambda c, r: None)
        b.run(conn, Method.CANCEL, old, lambda c, r: None)
        now[0] += 3600
        b.run(conn, Method.TRY, young, lambda c, r: None)
        now[0] += 1800
        assert b.cleanup(conn, dt.timedelta(minutes=45)) == 2  # old's Try and Cancel; young is 30 min old
        assert b.get(conn, old.uid, old.branch, Method.TRY) is None
        assert b.get(conn, young.uid, young.branch, Method.TRY) is not None
        with pytest.raises(ValueError):
            b.cleanup(conn, -1)
    finally:
        conn.close()


def test_invalid_table_name_is_rejected(db: Database) -> None:
    with pytest.raises(ValueError):
        Barrier(db.dialect, table="x; DROP TABLE y")


def call_until_ok(db: Database, b: Barrier, method: Method, r: Any, h: Any, tries: int = 50) -> Any:
    """As the operator would: retry a call that failed with anything but a refusal."""
    last: Exception | None = None
    for attempt in range(1, tries + 1):
        try:
            return run(db, b, method, req(r.uid, r.branch, attempt=attempt), h)
        except Refused:
            raise
        except Exception as exc:  # lock timeouts, deadlocks, busy: retryable
            last = exc
    raise AssertionError(f"{method} never succeeded: {last}")


def test_try_cancel_race_leaves_nothing_held(db: Database, barrier: Barrier) -> None:
    """Try and Cancel of one uid at once, on separate connections from many threads: after Cancel is OK nothing is held."""
    rounds = 100 if db.dialect.value == "postgres" else 40
    db.exec("CREATE TABLE account (id INTEGER PRIMARY KEY, held INTEGER NOT NULL)")
    db.exec("INSERT INTO account (id, held) VALUES (1, 0)")

    def try_(conn: Any, r: Any) -> Response:
        conn.execute(db.q("UPDATE account SET held = held + 10 WHERE id = 1"))
        return Response(data=b'{"amount":10}')

    def cancel(conn: Any, r: Any) -> Response:
        conn.execute(db.q("UPDATE account SET held = held - 10 WHERE id = 1"))
        return Response()

    start = threading.Barrier(2, timeout=30)
    outcomes: list[tuple[str, str]] = []

    def one_round(i: int) -> None:
        r = req()
        local = threading.Barrier(2, timeout=30)

        def do_try() -> str:
            local.wait()
            try:
                call_until_ok(db, barrier, Method.TRY, r, try_)
                return "ok"
            except Refused:
                return "refused"

        def do_cancel() -> str:
            local.wait()
            return str(call_until_ok(db, barrier, Method.CANCEL, r, cancel).outcome)

        with ThreadPoolExecutor(2) as pool:
            first, second = (do_cancel, do_try) if i % 2 else (do_try, do_cancel)
            f1, f2 = pool.submit(first), pool.submit(second)
            a, b_ = f1.result(), f2.result()
        outcomes.append((a, b_) if first is do_try else (b_, a))

    del start
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one_round, range(rounds)))
    assert db.scalar("SELECT held FROM account WHERE id = 1") == 0
    assert len(outcomes) == rounds
    # Both orders happened at least once in 100 rounds on PostgreSQL; SQLite serializes, so either is fine.
    assert all(t in ("ok", "refused") for t, _ in outcomes)
    assert all(c in ("executed", "null-compensation") for _, c in outcomes)
    assert all((t == "ok") == (c == "executed") for t, c in outcomes)
    print(f"{db.dialect}: {sum(c == 'executed' for _, c in outcomes)} Cancels compensated a Try, "
          f"{sum(c == 'null-compensation' for _, c in outcomes)} were null compensations")


def test_concurrent_identical_confirms_apply_once(db: Database, barrier: Barrier) -> None:
    r = req()
    h = Counting(db)
    run(db, barrier, Method.TRY, r, h)
    go = threading.Barrier(8, timeout=30)

    def confirm(i: int) -> Any:
        go.wait()
        return call_until_ok(db, barrier, Method.CONFIRM, r, h)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(confirm, range(8)))
    assert sum(1 for x in results if x.outcome is Outcome.EXECUTED) == 1
    assert len({x.response for x in results}) == 1
    assert h.calls == 2 and effects(db, r.uid) == 2  # one Try, one Confirm


def test_concurrent_ensure_table(db: Database) -> None:
    go = threading.Barrier(6, timeout=30)
    name = f"kubetx_barrier_{uuid.uuid4().hex[:8]}"

    def ensure(_: int) -> None:
        conn = db.connect()
        try:
            go.wait()
            Barrier(db.dialect, table=name).ensure_table(conn)
        finally:
            conn.close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(ensure, range(6)))
    assert db.scalar(f"SELECT count(*) FROM {name}") == 0


def test_table_layout_is_the_other_sdks(db: Database, barrier: Barrier) -> None:
    """Same columns and types as sdk/go (and the TypeScript SDK), so services in every language share the table."""
    if db.dialect.value == "postgres":
        conn = db.connect()
        try:
            cols = conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (DEFAULT_TABLE,)).fetchall()
            pk = conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)", (DEFAULT_TABLE,)).fetchall()
            idx = conn.execute("SELECT to_regclass('kubetx_barrier_created_at')::text").fetchone()
        finally:
            conn.close()
        assert cols == [("uid", "text", "NO"), ("branch", "text", "NO"), ("method", "text", "NO"), ("origin", "text", "NO"),
                        ("created_at", "bigint", "NO"), ("message", "text", "NO"), ("data", "bytea", "YES")]
        assert [c[0] for c in pk] == ["uid", "branch", "method"]
        assert idx == ("kubetx_barrier_created_at",)
    else:
        conn = db.connect()
        try:
            cols = [(r[1], r[2], r[3], r[5]) for r in conn.execute(f"PRAGMA table_info({DEFAULT_TABLE})")]
            idx = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'kubetx_barrier_created_at'").fetchone()
        finally:
            conn.close()
        assert cols == [("uid", "TEXT", 1, 1), ("branch", "TEXT", 1, 2), ("method", "TEXT", 1, 3), ("origin", "TEXT", 1, 0),
                        ("created_at", "INTEGER", 1, 0), ("message", "TEXT", 1, 0), ("data", "BLOB", 0, 0)]
        assert idx is not None
