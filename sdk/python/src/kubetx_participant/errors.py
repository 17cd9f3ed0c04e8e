"""The status-code contract (docs/participants.md): what a handler's exception is answered with.

| the handler                               | answered as                                        |
| ----------------------------------------- | -------------------------------------------------- |
| returns (a ``Response`` or ``None``)      | ``OK``                                             |
| raises ``Refused(...)``                   | ``ABORTED`` (or ``FAILED_PRECONDITION``): a refusal |
| raises ``InvalidPayload(...)``            | ``INVALID_ARGUMENT``: can never succeed             |
| raises ``StatusError(code, ...)``         | that code, unchanged                               |
| returns data over 4 KiB                   | ``INTERNAL``, nothing recorded                      |
| raises anything else                      | ``UNAVAILABLE`` with its text: retried              |
"""

from __future__ import annotations

import grpc

MAX_DATA_BYTES = 4096
"""The largest ``Response.data`` the operator accepts (it keeps it in status)."""


class Refused(Exception):
    """A definitive business "no".

    From Try/Execute it rolls the transaction back. From Confirm, Cancel,
    Compensate and Deliver the operator still retries (those must eventually
    succeed), so refuse there only on protocol violations.

    ``code`` is ``grpc.StatusCode.ABORTED`` (the default) or
    ``grpc.StatusCode.FAILED_PRECONDITION``; any other value answers ABORTED.
    """

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.ABORTED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code == grpc.StatusCode.FAILED_PRECONDITION else grpc.StatusCode.ABORTED

    def __str__(self) -> str:
        return f"refused: {self.message}"


class InvalidPayload(Exception):
    """The request can never succeed (a malformed payload): INVALID_ARGUMENT.

    From Try/Execute the transaction rolls back at once: raise it only before
    reserving or changing anything. From the other methods the operator keeps
    retrying and marks the transaction Stalled: someone has to fix the data or
    the participant.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StatusError(Exception):
    """Answer with this exact gRPC status code (e.g. UNAVAILABLE with your own text)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DataTooLarge(Exception):
    """A handler returned more than MAX_DATA_BYTES of data: INTERNAL, nothing recorded."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"response data is {size} bytes, over the {MAX_DATA_BYTES}-byte limit of BranchResponse.data; "
            "return a reference (an id) instead of the value"
        )
        self.size = size


def check_data(data: bytes) -> None:
    """Raises DataTooLarge when ``data`` is over MAX_DATA_BYTES."""
    if len(data) > MAX_DATA_BYTES:
        raise DataTooLarge(len(data))


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and message an exception is answered with."""
    if isinstance(exc, Refused):
        return exc.code, exc.message
    if isinstance(exc, InvalidPayload):
        return grpc.StatusCode.INVALID_ARGUMENT, exc.message
    if isinstance(exc, DataTooLarge):
        return grpc.StatusCode.INTERNAL, str(exc)
    if isinstance(exc, StatusError) and exc.code != grpc.StatusCode.OK:
        return exc.code, exc.message
    text = str(exc) or type(exc).__name__
    return grpc.StatusCode.UNAVAILABLE, text


def is_retryable_db_error(exc: BaseException) -> bool:
    """True for the database errors that only mean "try again": lock timeouts,
    deadlocks, serialization failures, a busy SQLite file, a lost connection.

    The server answers them UNAVAILABLE anyway (as any unexpected exception);
    this is for code that retries in process, e.g. a hook or a script.
    """
    sqlstate = getattr(exc, "sqlstate", None)  # psycopg
    if isinstance(sqlstate, str):
        # 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available,
        # 57014 query_canceled (statement_timeout), 08xxx connection exceptions.
        return sqlstate in ("40001", "40P01", "55P03", "57014") or sqlstate.startswith("08")
    try:
        import sqlite3
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    mod = type(exc).__module__
    return mod.startswith("psycopg") and type(exc).__name__ in ("OperationalError", "InterfaceError")
