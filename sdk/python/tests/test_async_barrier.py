"""The asyncio barrier and outbox on psycopg's AsyncConnection (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import psycopg
import pytest

from conftest import Database, req
from kubetx_participant import AsyncBarrier, AsyncOutbox, CheckPreparedRequest, MessageKey, Method, Outcome, PreparedState, Refused, Response, RolledBack


async def aconnect(db: Database) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(db.url)


@pytest.fixture
async def abarrier(pg_db: Database) -> AsyncBarrier:
    b = AsyncBarrier(lock_timeout=10)
    async with await aconnect(pg_db) as conn:
        await b.ensure_table(conn)
        await conn.execute("CREATE TABLE account (id int PRIMARY KEY, held int NOT NULL)")
        await conn.execute("INSERT INTO account VALUES (1, 0)")
        await conn.commit()
    return b


async def arun(db: Database, b: AsyncBarrier, method: Method, r: Any, h: Any) -> Any:
    async with await aconnect(db) as conn:
        return await b.run(conn, method, r, h)


async def test_async_rules(pg_db: Database, abarrier: AsyncBarrier) -> None:
    calls = []

    async def hold(conn: Any, r: Any) -> Response:
        calls.append(r.attempt)
        await conn.execute("UPDATE account SET held = held + 10 WHERE id = 1")
        return Response("held", b'{"amount":10}')

    r = req()
    assert (await arun(pg_db, abarrier, Method.TRY, r, hold)).outcome is Outcome.EXECUTED
    again = await arun(pg_db, abarrier, Method.TRY, req(r.uid, attempt=2), hold)
    assert again.outcome is Outcome.DUPLICATE and again.response == Response("held", b'{"amount":10}') and calls == [1]
    n = req()
    assert (await arun(pg_db, abarrier, Method.CANCEL, n, hold)).outcome is Outcome.NULL_COMPENSATION
    with pytest.raises(Refused) as e:
        await arun(pg_db, abarrier, Method.TRY, n, hold)
    assert e.value.code == grpc.StatusCode.ABORTED
    with pytest.raises(Refused) as e:
        await arun(pg_db, abarrier, Method.CONFIRM, req(), hold)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    # A sync handler works too.
    assert (await arun(pg_db, abarrier, Method.DELIVER, req(), lambda c, r: None)).response == Response()
    assert pg_db.scalar("SELECT held FROM account WHERE id = 1") == 10
    async with await aconnect(pg_db) as conn:
        assert (await abarrier.get(conn, r.uid, r.branch, Method.TRY)) is not None
        assert await abarrier.cleanup(conn, 3600) == 0  # nothing is an hour old


async def test_async_try_cancel_race(pg_db: Database, abarrier: AsyncBarrier) -> None:
    async def try_(conn: Any, r: Any) -> None:
        await conn.execute("UPDATE account SET held = held + 10 WHERE id = 1")

    async def cancel(conn: Any, r: Any) -> None:
        await conn.execute("UPDATE account SET held = held - 10 WHERE id = 1")

    async def call(method: Method, r: Any, h: Any) -> str:
        for attempt in range(1, 30):
            try:
                return str((await arun(pg_db, abarrier, method, req(r.uid, attempt=attempt), h)).outcome)
            except Refused:
                return "refused"
            except psycopg.Error:
                await asyncio.sleep(0.01)
        raise AssertionError("never succeeded")

    async def one_round(i: int) -> tuple[str, str]:
        r = req()
        calls = [call(Method.TRY, r, try_), call(Method.CANCEL, r, cancel)]
        if i % 2:
            calls.reverse()
        got = await asyncio.gather(*calls)
        return (got[0], got[1]) if i % 2 == 0 else (got[1], got[0])

    sem = asyncio.Semaphore(16)

    async def bounded(i: int) -> tuple[str, str]:
        async with sem:
            return await one_round(i)

    results = await asyncio.gather(*(bounded(i) for i in range(60)))
    assert pg_db.scalar("SELECT held FROM account WHERE id = 1") == 0
    assert all((t == "executed") == (c == "executed") for t, c in results)


async def test_async_outbox(pg_db: Database) -> None:
    o = AsyncOutbox()
    async with await aconnect(pg_db) as conn:
        await o.ensure_table(conn)
        uid = str(uuid.uuid4())

        async def noop(c: Any) -> int:
            return 7

        assert await o.run_local(conn, MessageKey(uid, "ns", "m"), noop) == 7
        assert await o.check_prepared(conn, CheckPreparedRequest(uid)) is PreparedState.COMMITTED
        other = str(uuid.uuid4())
        assert await o.check_prepared(conn, CheckPreparedRequest(other)) is PreparedState.ROLLED_BACK
        with pytest.raises(RolledBack):
            await o.run_local(conn, MessageKey(other), noop)
        assert await o.state(conn, other) == "rolled_back"
