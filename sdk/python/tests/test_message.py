"""The outbox (kubetx_prepared_messages) and its check-back, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import Database
from kubetx_participant import CheckPreparedRequest, MessageKey, Outbox, PreparedState, RolledBack
from kubetx_participant.message import MessageError


@pytest.fixture
def outbox(db: Database) -> Outbox:
    o = Outbox(db.dialect, lock_timeout=10)
    conn = db.connect()
    try:
        o.ensure_table(conn)
    finally:
        conn.close()
    db.exec("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    db.exec("INSERT INTO account (id, balance) VALUES (1, 100)")
    return o


def debit(db: Database) -> Any:
    def fn(conn: Any) -> str:
        conn.execute(db.q("UPDATE account SET balance = balance - 10 WHERE id = 1"))
        return "debited"

    return fn


def check(db: Database, o: Outbox, uid: str) -> PreparedState:
    conn = db.connect()
    try:
        return o.check_prepared(conn, CheckPreparedRequest(uid, "ns", "msg"))
    finally:
        conn.close()


def local(db: Database, o: Outbox, uid: str, fn: Any) -> Any:
    conn = db.connect()
    try:
        return o.run_local(conn, MessageKey(uid, "ns", "msg"), fn)
    finally:
        conn.close()


def balance(db: Database) -> int:
    return int(db.scalar("SELECT balance FROM account WHERE id = 1"))


def test_committed_is_committed_stably(db: Database, outbox: Outbox) -> None:
    uid = str(uuid.uuid4())
    assert local(db, outbox, uid, debit(db)) == "debited"
    assert check(db, outbox, uid) is PreparedState.COMMITTED
    assert check(db, outbox, uid) is PreparedState.COMMITTED
    assert balance(db) == 90
    with pytest.raises(MessageError, match="already committed"):
        local(db, outbox, uid, debit(db))
    assert balance(db) == 90


def test_rolled_back_local_transaction(db: Database, outbox: Outbox) -> None:
    uid = str(uuid.uuid4())

    def fail(conn: Any) -> None:
        debit(db)(conn)
        raise ValueError("business failure")

    with pytest.raises(ValueError):
        local(db, outbox, uid, fail)
    assert check(db, outbox, uid) is PreparedState.ROLLED_BACK
    assert balance(db) == 100


def test_check_back_claims_an_unknown_uid(db: Database, outbox: Outbox) -> None:
    uid = str(uuid.uuid4())
    assert check(db, outbox, uid) is PreparedState.ROLLED_BACK
    with pytest.raises(RolledBack):
        local(db, outbox, uid, debit(db))
    assert balance(db) == 100
    assert check(db, outbox, uid) is PreparedState.ROLLED_BACK
    conn = db.connect()
    try:
        assert outbox.state(conn, uid) == "rolled_back"
        assert outbox.state(conn, "nope") is None
    finally:
        conn.close()


def test_prepare_in_the_callers_transaction(db: Database, outbox: Outbox) -> None:
    uid = str(uuid.uuid4())
    conn = db.connect()
    try:
        with _tx(db, conn):
            outbox.prepare(conn, MessageKey(uid, "ns", "msg"))
            debit(db)(conn)
    finally:
        conn.close()
    assert check(db, outbox, uid) is PreparedState.COMMITTED and balance(db) == 90


def _tx(db: Database, conn: Any) -> Any:
    from kubetx_participant import _sql

    return _sql.transaction(db.dialect, conn, None)


def test_claim_race_never_contradicts_the_database(db: Database, outbox: Outbox) -> None:
    """run_local and check_prepared of one uid at once, many rounds: COMMITTED iff the debit committed."""
    rounds = 60 if db.dialect.value == "postgres" else 30
    answers: dict[str, tuple[PreparedState, bool]] = {}
    lock = threading.Lock()

    def one_round(i: int) -> None:
        uid = str(uuid.uuid4())
        go = threading.Barrier(2, timeout=30)
        committed = [False]

        def do_local() -> None:
            go.wait()
            try:
                local(db, outbox, uid, debit(db))
                committed[0] = True
            except RolledBack:
                pass

        def do_check() -> PreparedState:
            go.wait()
            return check(db, outbox, uid)

        with ThreadPoolExecutor(2) as pool:
            fl, fc = pool.submit(do_local), pool.submit(do_check)
            fl.result()
            state = fc.result()
        with lock:
            answers[uid] = (state, committed[0])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_round, range(rounds)))
    for uid, (state, committed) in answers.items():
        assert (state is PreparedState.COMMITTED) == committed, uid
        assert check(db, outbox, uid) is state  # stable
    debits = sum(1 for _, c in answers.values() if c)
    assert balance(db) == 100 - 10 * debits
    print(f"{db.dialect}: {debits} of {rounds} local transactions committed before their check-back")


def test_cleanup(db: Database) -> None:
    now = [1_000_000.0]
    o = Outbox(db.dialect, table="outbox_clean", clock=lambda: now[0])
    conn = db.connect()
    try:
        o.ensure_table(conn)
        o.check_prepared(conn, CheckPreparedRequest("old"))
        now[0] += 100
        o.check_prepared(conn, CheckPreparedRequest("young"))
        assert o.cleanup(conn, 50) == 1
        assert o.state(conn, "old") is None and o.state(conn, "young") == "rolled_back"
    finally:
        conn.close()
