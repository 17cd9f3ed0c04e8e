"""status_for and the small pieces of the contract, without a server."""

from __future__ import annotations

import sqlite3

import grpc
import pytest

from kubetx_participant import DataTooLarge, InvalidPayload, Method, Refused, Request, Response, StatusError, status_for
from kubetx_participant.errors import MAX_DATA_BYTES, check_data, is_retryable_db_error


@pytest.mark.parametrize(("exc", "code"), [
    (Refused("no"), grpc.StatusCode.ABORTED),
    (Refused("no", grpc.StatusCode.FAILED_PRECONDITION), grpc.StatusCode.FAILED_PRECONDITION),
    (Refused("no", grpc.StatusCode.INTERNAL), grpc.StatusCode.ABORTED),  # any other code is ABORTED
    (InvalidPayload("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (DataTooLarge(5000), grpc.StatusCode.INTERNAL),
    (StatusError(grpc.StatusCode.NOT_FOUND, "x"), grpc.StatusCode.NOT_FOUND),
    (StatusError(grpc.StatusCode.OK, "x"), grpc.StatusCode.UNAVAILABLE),
    (ValueError(), grpc.StatusCode.UNAVAILABLE),
    (TimeoutError("slow"), grpc.StatusCode.UNAVAILABLE),
])
def test_status_for(exc: Exception, code: grpc.StatusCode) -> None:
    got, message = status_for(exc)
    assert got == code and message


def test_check_data() -> None:
    check_data(b"x" * MAX_DATA_BYTES)
    with pytest.raises(DataTooLarge):
        check_data(b"x" * (MAX_DATA_BYTES + 1))


def test_request_helpers() -> None:
    r = Request("u", "b", payload=b'{"a":1}', result=b"not json")
    assert r.uid == "u" and r.json() == {"a": 1} and r.result_json() is None
    assert Request.from_proto(r.to_proto()) == r
    with pytest.raises(InvalidPayload):
        Request("u", "b", payload=b"{").json()
    assert Response.of_json({"amount": 10}).data == b'{"amount":10}'
    assert Method.CANCEL.forward is Method.TRY and Method.COMPENSATE.forward is Method.EXECUTE and Method.TRY.forward is None


def test_is_retryable_db_error() -> None:
    assert is_retryable_db_error(sqlite3.OperationalError("database is locked"))
    assert not is_retryable_db_error(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_retryable_db_error(ValueError())

    class PgError(Exception):
        sqlstate = "40P01"

    assert is_retryable_db_error(PgError())
