"""Requests, responses and the names shared by the server, the barrier and the outbox."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from kubetx_participant._gen.kubetx.v1 import participant_pb2 as pb
from kubetx_participant.errors import InvalidPayload


@dataclass(frozen=True, slots=True)
class Request:
    """One branch call (a ``BranchRequest``).

    ``(transaction_uid, branch, method)`` is the idempotency key. ``payload``
    is the user's JSON bytes, passed on undecoded (``json()`` decodes it).
    ``result`` goes to Confirm, Cancel and Compensate: the data that this
    branch's Try or Execute returned. It can be empty although the Try ran (its
    answer may have been lost), so look reservations up by transaction_uid.
    """

    transaction_uid: str
    branch: str
    namespace: str = ""
    name: str = ""
    operation: str = ""
    payload: bytes = b""
    attempt: int = 1
    result: bytes = b""

    @property
    def uid(self) -> str:
        """Short for transaction_uid."""
        return self.transaction_uid

    def json(self) -> Any:
        """The payload decoded as JSON; InvalidPayload (INVALID_ARGUMENT) if it is not JSON."""
        try:
            return json.loads(self.payload or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidPayload(f"payload is not JSON: {exc}") from None

    def result_json(self) -> Any:
        """``result`` decoded as JSON, or None when it is empty or not JSON."""
        if not self.result:
            return None
        try:
            return json.loads(self.result)
        except (ValueError, UnicodeDecodeError):
            return None

    @classmethod
    def from_proto(cls, r: pb.BranchRequest) -> Request:
        return cls(
            transaction_uid=r.transaction_uid,
            branch=r.branch,
            namespace=r.namespace,
            name=r.name,
            operation=r.operation,
            payload=bytes(r.payload),
            attempt=r.attempt,
            result=bytes(r.result),
        )

    def to_proto(self) -> pb.BranchRequest:
        return pb.BranchRequest(
            transaction_uid=self.transaction_uid,
            namespace=self.namespace,
            name=self.name,
            branch=self.branch,
            operation=self.operation,
            payload=self.payload,
            attempt=self.attempt,
            result=self.result,
        )


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a branch call (a ``BranchResponse``).

    ``message`` is shown in the transaction's status and Events: keep secrets
    out of it. ``data`` (Try and Execute only, at most 4 KiB) is kept in status
    and handed back as ``Request.result``.
    """

    message: str = ""
    data: bytes = field(default=b"")

    @classmethod
    def of_json(cls, data: Any, message: str = "") -> Response:
        """A response whose data is ``data`` as compact JSON."""
        return cls(message=message, data=json.dumps(data, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class CheckPreparedRequest:
    """The check-back of a reliable message (``CheckPreparedRequest``)."""

    transaction_uid: str
    namespace: str = ""
    name: str = ""
    operation: str = ""
    payload: bytes = b""

    @classmethod
    def from_proto(cls, r: pb.CheckPreparedRequest) -> CheckPreparedRequest:
        return cls(r.transaction_uid, r.namespace, r.name, r.operation, bytes(r.payload))


class PreparedState(enum.IntEnum):
    """What CheckPrepared answers."""

    UNKNOWN = pb.CheckPreparedResponse.STATE_UNKNOWN
    COMMITTED = pb.CheckPreparedResponse.STATE_COMMITTED
    ROLLED_BACK = pb.CheckPreparedResponse.STATE_ROLLED_BACK


class Method(enum.StrEnum):
    """The protocol method of a call, spelled as stored in the barrier's method column."""

    TRY = "Try"
    CONFIRM = "Confirm"
    CANCEL = "Cancel"
    EXECUTE = "Execute"
    COMPENSATE = "Compensate"
    DELIVER = "Deliver"

    @property
    def forward(self) -> Method | None:
        """The Try/Execute that this Confirm/Cancel/Compensate completes or undoes."""
        return {Method.CONFIRM: Method.TRY, Method.CANCEL: Method.TRY, Method.COMPENSATE: Method.EXECUTE}.get(self)

    @property
    def compensation(self) -> Method:
        """The method whose blocker fences this one out."""
        return Method.CANCEL if self is Method.TRY else Method.COMPENSATE


class Outcome(enum.StrEnum):
    """How the barrier answered, named as the TypeScript and Go SDKs do."""

    EXECUTED = "executed"  # the handler ran now and its response was recorded
    DUPLICATE = "duplicate"  # a repeat, answered from the stored row; the handler did not run
    NULL_COMPENSATION = "null-compensation"  # a Cancel/Compensate with no Try/Execute before it


class Dialect(enum.StrEnum):
    """The SQL dialect of the DB-API connections given to the barrier and the outbox."""

    POSTGRES = "postgres"  # psycopg 3
    SQLITE = "sqlite"  # the standard library's sqlite3
