"""The TransOut/TransIn operations of one bank, as TCC and as Saga (the same semantics as examples/bank-go/bank.go)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import grpc

from kubetx_participant import InvalidPayload, Refused, Request, Response, StatusError

OP_TRANS_OUT = "TransOut"
OP_TRANS_IN = "TransIn"

# Created at start-up. Every statement is idempotent, and the whole script runs
# under a transaction-scoped advisory lock, so two processes starting at once
# against one database do not race on CREATE TABLE. The same tables as bank-go.
SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
  id      text PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0),
  held    bigint NOT NULL DEFAULT 0 CHECK (held >= 0)
);
-- TCC TransIn: a credit announced by Try, applied by Confirm, dropped by Cancel.
CREATE TABLE IF NOT EXISTS pending_credits (
  uid     text NOT NULL,
  branch  text NOT NULL,
  account text NOT NULL REFERENCES accounts (id),
  amount  bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (uid, branch)
);
-- Audit: one row each time a handler's business effect commits. No key on
-- purpose: a duplicate effect would show up as a second row.
CREATE TABLE IF NOT EXISTS applied (
  seq        bigserial PRIMARY KEY,
  uid        text NOT NULL,
  branch     text NOT NULL,
  method     text NOT NULL,
  operation  text NOT NULL,
  account    text NOT NULL,
  amount     bigint NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
"""
SCHEMA_LOCK = 0x6B75626574780001  # the advisory lock key of the schema script (bank-go's)


def migrate(conn: Any) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(SCHEMA)


@dataclass(frozen=True)
class Transfer:
    """The payload of both operations: {"account": "...", "amount": n}."""

    account: str
    amount: int


def parse(r: Request) -> Transfer:
    p = r.json()
    if not isinstance(p, dict):
        raise InvalidPayload('payload: want {"account": string, "amount": integer}')
    account, amount = p.get("account"), p.get("amount")
    if not isinstance(account, str) or not account:
        raise InvalidPayload("payload: account is missing")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidPayload(f"payload: amount must be a positive integer, got {amount!r}")
    return Transfer(account, amount)


def amount_of(r: Request, t: Transfer) -> int:
    """What a Confirm/Cancel/Compensate acts on: the amount its Try/Execute recorded in data, else the payload's."""
    res = r.result_json()
    if isinstance(res, dict) and isinstance(res.get("amount"), int) and res["amount"] > 0:
        return int(res["amount"])
    return t.amount


def reply(message: str, amount: int) -> Response:
    return Response(message, json.dumps({"amount": amount}, separators=(",", ":")).encode())


# The one way a compensation can fail: TransIn's credit was spent before the Saga
# rolled back. Retryable (UNAVAILABLE): the transaction stays Compensating, visibly,
# until the account is funded again; no balance goes negative, no money is made up.
CREDIT_SPENT = "the credit to undo has already been spent; retrying until the account is funded"


@dataclass
class Bank:
    """One bank's handlers (barrier.TxTcc and barrier.TxSaga): the barrier runs each method at most
    once per (uid, branch, method) on the connection it passes, and answers null compensations and
    hanging Trys without calling them."""

    name: str
    # Other operation names mapped onto TransOut or TransIn, e.g. the conformance kit's "conformance".
    aliases: dict[str, str] = field(default_factory=dict)

    def _call(self, r: Request) -> tuple[str, Transfer]:
        op = self.aliases.get(r.operation, r.operation)
        if op not in (OP_TRANS_OUT, OP_TRANS_IN):
            raise InvalidPayload(f"unknown operation {r.operation!r} (want {OP_TRANS_OUT} or {OP_TRANS_IN})")
        return op, parse(r)

    # ---- TCC ----

    def try_(self, conn: Any, r: Request) -> Response:
        """TransOut holds the amount (refused on insufficient funds); TransIn records a pending credit."""
        op, t = self._call(r)
        if op == OP_TRANS_OUT:
            cur = conn.execute("UPDATE accounts SET held = held + %s WHERE id = %s AND balance - held >= %s", (t.amount, t.account, t.amount))
            if cur.rowcount == 0:
                raise self._refusal(conn, t)
            audit(conn, r, "Try", op, t.account, t.amount)
            return reply(f"{self.name}: held {t.amount} on {t.account}", t.amount)
        self._must_exist(conn, t.account)
        conn.execute("INSERT INTO pending_credits (uid, branch, account, amount) VALUES (%s, %s, %s, %s)",
                     (r.transaction_uid, r.branch, t.account, t.amount))
        audit(conn, r, "Try", op, t.account, t.amount)
        return reply(f"{self.name}: credit of {t.amount} to {t.account} pending", t.amount)

    def confirm(self, conn: Any, r: Request) -> Response:
        """TransOut debits the held amount; TransIn applies the pending credit."""
        op, t = self._call(r)
        amount = amount_of(r, t)
        if op == OP_TRANS_OUT:
            exec_one(conn, "UPDATE accounts SET balance = balance - %s, held = held - %s WHERE id = %s", (amount, amount, t.account))
            audit(conn, r, "Confirm", op, t.account, amount)
            return Response(f"{self.name}: debited {amount} from {t.account}")
        row = conn.execute("DELETE FROM pending_credits WHERE uid = %s AND branch = %s RETURNING account, amount",
                           (r.transaction_uid, r.branch)).fetchone()
        if row is None:
            # The barrier lets Confirm through only after a Try that took effect.
            raise RuntimeError("no pending credit for this branch")
        account, amount = row
        exec_one(conn, "UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, account))
        audit(conn, r, "Confirm", op, account, amount)
        return Response(f"{self.name}: credited {amount} to {account}")

    def cancel(self, conn: Any, r: Request) -> Response:
        """TransOut releases the hold; TransIn drops the pending credit. Only after a Try that took effect."""
        op, t = self._call(r)
        amount = amount_of(r, t)
        if op == OP_TRANS_OUT:
            exec_one(conn, "UPDATE accounts SET held = held - %s WHERE id = %s", (amount, t.account))
        else:
            conn.execute("DELETE FROM pending_credits WHERE uid = %s AND branch = %s", (r.transaction_uid, r.branch))
        audit(conn, r, "Cancel", op, t.account, amount)
        return Response(f"{self.name}: {op} of {amount} on {t.account} cancelled")

    # ---- Saga ----

    def execute(self, conn: Any, r: Request) -> Response:
        """TransOut debits (refused on insufficient funds); TransIn credits (refused only for an unknown account)."""
        op, t = self._call(r)
        if op == OP_TRANS_OUT:
            cur = conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s AND balance - held >= %s", (t.amount, t.account, t.amount))
            if cur.rowcount == 0:
                raise self._refusal(conn, t)
        else:
            cur = conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (t.amount, t.account))
            if cur.rowcount == 0:
                raise Refused(f"{self.name}: no account {t.account!r}")
        audit(conn, r, "Execute", op, t.account, t.amount)
        verb = "debited" if op == OP_TRANS_OUT else "credited"
        return reply(f"{self.name}: {verb} {t.amount} on {t.account}", t.amount)

    def compensate(self, conn: Any, r: Request) -> Response:
        """TransOut credits the amount back; TransIn debits its credit back. Only after an Execute that took effect."""
        op, t = self._call(r)
        amount = amount_of(r, t)
        if op == OP_TRANS_OUT:
            exec_one(conn, "UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, t.account))
        else:
            cur = conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s AND balance - held >= %s", (amount, t.account, amount))
            if cur.rowcount == 0:
                raise StatusError(grpc.StatusCode.UNAVAILABLE, CREDIT_SPENT)
        audit(conn, r, "Compensate", op, t.account, amount)
        return Response(f"{self.name}: {op} of {amount} on {t.account} compensated")

    def _refusal(self, conn: Any, t: Transfer) -> Refused:
        """Tells an unknown account from insufficient funds."""
        self._must_exist(conn, t.account)
        return Refused(f"{self.name}: insufficient funds on {t.account} for {t.amount}")

    def _must_exist(self, conn: Any, account: str) -> None:
        if conn.execute("SELECT 1 FROM accounts WHERE id = %s", (account,)).fetchone() is None:
            raise Refused(f"{self.name}: no account {account!r}")


def audit(conn: Any, r: Request, method: str, op: str, account: str, amount: int) -> None:
    conn.execute("INSERT INTO applied (uid, branch, method, operation, account, amount) VALUES (%s, %s, %s, %s, %s, %s)",
                 (r.transaction_uid, r.branch, method, op, account, amount))


def exec_one(conn: Any, sql: str, params: tuple[Any, ...]) -> None:
    """An UPDATE that must change exactly one row (a retryable error otherwise)."""
    n = conn.execute(sql, params).rowcount
    if n != 1:
        raise RuntimeError(f"expected to update one account, updated {n}")
