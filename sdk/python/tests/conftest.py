"""Fixtures: one throwaway PostgreSQL server per session (a fresh database per test) and SQLite files.

Missing PostgreSQL binaries FAIL the PostgreSQL tests (run `bash hack/postgres.sh`); they are never skipped.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kubetx_participant import Dialect, Request
from kubetx_participant.testing import PostgresServer

_db_seq = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@dataclass
class Database:
    """How a test opens connections to its own database, in either dialect."""

    dialect: Dialect
    connect: Callable[[], Any]
    url: str = ""

    def q(self, sql: str) -> str:
        """sql written with ? placeholders, in this dialect."""
        return sql.replace("?", "%s") if self.dialect is Dialect.POSTGRES else sql

    def scalar(self, sql: str, *params: Any) -> Any:
        conn = self.connect()
        try:
            row = conn.execute(self.q(sql), params).fetchone()
            if self.dialect is Dialect.POSTGRES:
                conn.rollback()
            return None if row is None else row[0]
        finally:
            conn.close()

    def exec(self, sql: str, *params: Any) -> None:
        conn = self.connect()
        try:
            conn.execute(self.q(sql), params)
            conn.commit()
        finally:
            conn.close()


def sqlite_connect(path: Path) -> Callable[[], sqlite3.Connection]:
    # WAL is a property of the file: set it once, here. Switching the journal mode needs the
    # database to itself, so doing it in every connect made connections opened at once fail
    # with "database is locked" (and a thread that failed before a threading.Barrier hung the rest).
    first = sqlite3.connect(path, timeout=10)
    first.execute("PRAGMA journal_mode=WAL")
    first.close()

    def connect() -> sqlite3.Connection:
        # isolation_level=None: no implicit BEGIN; the barrier says BEGIN IMMEDIATE itself.
        return sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)

    return connect


@pytest.fixture
def pg_db(postgres: PostgresServer) -> Database:
    url = postgres.create_database(f"t{next(_db_seq)}")
    return Database(Dialect.POSTGRES, lambda: psycopg.connect(url), url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(Dialect.SQLITE, sqlite_connect(tmp_path / "test.db"))


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("pg_db" if request.param == "postgres" else "sqlite_db")


def req(uid: str | None = None, branch: str = "b1", payload: bytes = b'{"account":"a","amount":10}', attempt: int = 1, result: bytes = b"") -> Request:
    return Request(transaction_uid=uid or str(uuid.uuid4()), branch=branch, namespace="ns", name="tx", operation="op",
                   payload=payload, attempt=attempt, result=result)
