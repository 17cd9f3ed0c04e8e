"""The conformance kit's test hook (proto/kubetx/conformance/v1/hook.proto) on the accounts table.

Served only with --conformance-hook: it opens accounts and sets balances,
which no production bank should let a caller do. PrepareMessage stays
UNIMPLEMENTED: the bank is not a message source.
"""

from __future__ import annotations

from typing import Any

import grpc

from kubetx_participant.pb import hook_pb2, hook_pb2_grpc

CONFORMANCE_OPERATION = "conformance"  # the operation the kit sends; TransOut's semantics


class Hook(hook_pb2_grpc.ConformanceHookServicer):
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def OpenAccount(self, request: hook_pb2.OpenAccountRequest, context: grpc.ServicerContext) -> hook_pb2.OpenAccountResponse:
        if not request.account or request.balance < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account must be named and balance must not be negative")
        try:
            with self._pool.connection() as conn:
                conn.execute("INSERT INTO accounts (id, balance, held) VALUES (%s, %s, 0) "
                             "ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance, held = 0", (request.account, request.balance))
        except Exception as exc:  # noqa: BLE001 - any database error is "try again"
            context.abort(grpc.StatusCode.UNAVAILABLE, f"open account: {exc}")
        return hook_pb2.OpenAccountResponse()

    def ReadAccount(self, request: hook_pb2.ReadAccountRequest, context: grpc.ServicerContext) -> hook_pb2.ReadAccountResponse:
        try:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT balance, held FROM accounts WHERE id = %s", (request.account,)).fetchone()
        except Exception as exc:  # noqa: BLE001
            context.abort(grpc.StatusCode.UNAVAILABLE, f"read account: {exc}")
        if row is None:
            return hook_pb2.ReadAccountResponse()
        return hook_pb2.ReadAccountResponse(found=True, balance=row[0], held=row[1])
