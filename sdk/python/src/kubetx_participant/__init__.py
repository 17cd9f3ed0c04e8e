"""kubetx participant SDK for Python: the protocol of proto/kubetx/v1/participant.proto.

- ``serve`` / ``Participant`` (thread pool) and ``kubetx_participant.aio``
  (``serve_async`` / ``AsyncParticipant``, grpc.aio): the gRPC services around
  your handlers, health, graceful shutdown, the status-code contract.
- ``Refused``, ``InvalidPayload``, ``StatusError``: what a handler raises.
- ``kubetx_participant.barrier``: the sub-transaction barrier on DB-API
  connections (psycopg 3, sqlite3), the other SDKs' ``kubetx_barrier`` table.
- ``kubetx_participant.message``: the reliable-message outbox
  (``kubetx_prepared_messages``) and its check-back.
- ``kubetx_participant.pb``: the generated messages and stubs, for clients and tests.

See docs/python.md.
"""

from kubetx_participant.barrier import DEFAULT_RETENTION, AsyncBarrier, Barrier, connect_each_time
from kubetx_participant.errors import MAX_DATA_BYTES, DataTooLarge, InvalidPayload, Refused, StatusError, status_for
from kubetx_participant.message import AsyncOutbox, MessageKey, Outbox, RolledBack
from kubetx_participant.server import Participant, serve, stop_on_signals
from kubetx_participant.types import CheckPreparedRequest, Dialect, Method, Outcome, PreparedState, Request, Response

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RETENTION",
    "MAX_DATA_BYTES",
    "AsyncBarrier",
    "AsyncOutbox",
    "Barrier",
    "CheckPreparedRequest",
    "DataTooLarge",
    "Dialect",
    "InvalidPayload",
    "MessageKey",
    "Method",
    "Outbox",
    "Outcome",
    "Participant",
    "PreparedState",
    "Refused",
    "Request",
    "Response",
    "RolledBack",
    "StatusError",
    "connect_each_time",
    "serve",
    "status_for",
    "stop_on_signals",
]
