"""The gRPC server around your handlers: the participant services, health, graceful shutdown.

``serve(...)`` (this module, a thread pool) and ``serve_async(...)``
(``kubetx_participant.aio``, grpc.aio) register the services whose handlers
are given (``tcc``, ``saga``, ``receiver``, ``source``; at least one), call
``register(server)`` for extra services (e.g. a ConformanceHook), and add
``grpc.health.v1.Health``: SERVING for ``""`` and every registered service.
On stop (SIGTERM with ``handle_signals``) health turns NOT_SERVING, new calls
are refused, calls in flight get ``shutdown_grace`` seconds and are then
cancelled.

Every call is mapped to its status by kubetx_participant.errors.status_for and
logged in one line (identity, attempt, outcome, duration; never the payload)
on the logger ``kubetx_participant``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kubetx_participant._gen.kubetx.v1 import participant_pb2 as pb
from kubetx_participant._gen.kubetx.v1 import participant_pb2_grpc as pb_grpc
from kubetx_participant.errors import StatusError, check_data, status_for
from kubetx_participant.types import CheckPreparedRequest, PreparedState, Request, Response

DEFAULT_ADDRESS = "0.0.0.0:50051"
DEFAULT_SHUTDOWN_GRACE = 10.0
LOG = logging.getLogger("kubetx_participant")


class TccParticipant(Protocol):
    """kubetx.v1.TccParticipant. ``try_`` because ``try`` is a keyword."""

    def try_(self, request: Request) -> Response | None: ...
    def confirm(self, request: Request) -> Response | None: ...
    def cancel(self, request: Request) -> Response | None: ...


class SagaParticipant(Protocol):
    def execute(self, request: Request) -> Response | None: ...
    def compensate(self, request: Request) -> Response | None: ...


class MessageReceiver(Protocol):
    def deliver(self, request: Request) -> Response | None: ...


class MessageSource(Protocol):
    def check_prepared(self, request: CheckPreparedRequest) -> PreparedState: ...


# (service name in the proto, adder, {proto method: handler attribute})
SERVICES: dict[str, tuple[str, Callable[[Any, Any], None], dict[str, str]]] = {
    "tcc": ("kubetx.v1.TccParticipant", pb_grpc.add_TccParticipantServicer_to_server, {"Try": "try_", "Confirm": "confirm", "Cancel": "cancel"}),
    "saga": ("kubetx.v1.SagaParticipant", pb_grpc.add_SagaParticipantServicer_to_server, {"Execute": "execute", "Compensate": "compensate"}),
    "receiver": ("kubetx.v1.MessageReceiver", pb_grpc.add_MessageReceiverServicer_to_server, {"Deliver": "deliver"}),
    "source": ("kubetx.v1.MessageSource", pb_grpc.add_MessageSourceServicer_to_server, {"CheckPrepared": "check_prepared"}),
}


def normalize_response(resp: Any) -> Response:
    """None → an empty OK; data checked against MAX_DATA_BYTES (DataTooLarge → INTERNAL)."""
    if resp is None:
        return Response()
    if not isinstance(resp, Response):
        raise TypeError(f"a handler must return a Response or None, not {type(resp).__name__}")
    data = resp.data or b""
    check_data(data)
    return Response(resp.message or "", data)


def describe(method: str, r: Any) -> tuple[str, dict[str, Any]]:
    """The call's identity for a log line (never the payload): a text and the same as fields.

    The fields go to the record as ``extra={"fields": {...}}``, for a JSON formatter.
    """
    fields: dict[str, Any] = {"method": method, "uid": r.transaction_uid, "namespace": r.namespace, "name": r.name}
    if getattr(r, "branch", None) is not None:
        fields["branch"] = r.branch
    fields["operation"] = r.operation
    if getattr(r, "attempt", None) is not None:
        fields["attempt"] = r.attempt
    text = f"{method} " + " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("method", "namespace", "name"))
    return text, fields


def check_state(state: Any) -> pb.CheckPreparedResponse:
    try:
        return pb.CheckPreparedResponse(state=int(PreparedState(state)))  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"CheckPrepared returned state {state!r}; want COMMITTED, ROLLED_BACK or UNKNOWN") from None


def log_ok(log: logging.Logger, what: tuple[str, dict[str, Any]], started: float, state: str | None = None) -> None:
    ms = int((time.monotonic() - started) * 1000)
    fields = {**what[1], "durationMs": ms}
    if state is not None:
        fields["state"] = state
        log.info("%s ok state=%s durationMs=%d", what[0], state, ms, extra={"fields": fields})
    else:
        log.info("%s ok durationMs=%d", what[0], ms, extra={"fields": fields})


def log_failure(log: logging.Logger, what: tuple[str, dict[str, Any]], code: grpc.StatusCode, exc: BaseException, started: float) -> None:
    ms = int((time.monotonic() - started) * 1000)
    fields = {**what[1], "code": code.name, "err": str(exc), "durationMs": ms}
    if code in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION):
        log.info("%s refused code=%s reason=%s durationMs=%d", what[0], code.name, exc, ms, extra={"fields": fields})
    else:
        # A traceback for the unexpected ones (a bug or a database error), not for StatusError and the like.
        trace = code == grpc.StatusCode.UNAVAILABLE and not _expected(exc)
        log.warning("%s failed code=%s err=%s durationMs=%d", what[0], code.name, exc, ms, exc_info=trace, extra={"fields": fields})


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, StatusError)


class _SyncServicer:
    """One servicer object with the proto's method names, calling the handler's attributes."""

    def __init__(self, kind: str, handler: Any, log: logging.Logger) -> None:
        _, _, methods = SERVICES[kind]
        for proto_name, attr in methods.items():
            fn = getattr(handler, attr, None)
            if fn is None:
                raise TypeError(f"{kind} handler {type(handler).__name__} has no method {attr}()")
            setattr(self, proto_name, self._wrap(proto_name, fn, log, kind == "source"))

    @staticmethod
    def _wrap(method: str, fn: Callable[[Any], Any], log: logging.Logger, source: bool) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            r = CheckPreparedRequest.from_proto(request) if source else Request.from_proto(request)
            what = describe(method, r)
            try:
                out: Any = check_state(fn(r)) if source else normalize_response(fn(r))
            except Exception as exc:  # every exception has its status: errors.status_for
                code, message = status_for(exc)
                log_failure(log, what, code, exc, started)
                context.abort(code, message)
            if source:
                log_ok(log, what, started, PreparedState(out.state).name)
                return out
            log_ok(log, what, started)
            return pb.BranchResponse(message=out.message, data=out.data)

        return handle


def register_services(server: Any, handlers: dict[str, Any], servicer: Callable[[str, Any], Any]) -> list[str]:
    """Adds the participant services whose handler is given; returns their full names."""
    names = []
    for kind, handler in handlers.items():
        if handler is None:
            continue
        name, add, _ = SERVICES[kind]
        add(servicer(kind, handler), server)
        names.append(name)
    if not names:
        raise ValueError("give at least one of tcc, saga, receiver, source")
    return names


class Participant:
    """A participant server on a thread pool (``grpc.server``).

    ``start()`` binds and returns the port (``address`` ``"127.0.0.1:0"`` picks a
    free one); ``stop()`` drains; ``wait()`` blocks until stopped. Also a
    context manager (start on enter, stop on exit).
    """

    def __init__(
        self,
        *,
        tcc: TccParticipant | None = None,
        saga: SagaParticipant | None = None,
        receiver: MessageReceiver | None = None,
        source: MessageSource | None = None,
        register: Callable[[grpc.Server], None] | None = None,
        address: str = DEFAULT_ADDRESS,
        max_workers: int = 32,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        credentials: grpc.ServerCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Iterable[grpc.ServerInterceptor] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self._handlers = {"tcc": tcc, "saga": saga, "receiver": receiver, "source": source}
        if all(h is None for h in self._handlers.values()):
            raise ValueError("give at least one of tcc, saga, receiver, source")
        self._register = register
        self.address = address
        self._max_workers = max_workers
        self.shutdown_grace = shutdown_grace
        self._credentials = credentials
        self._options = list(options)
        self._interceptors = list(interceptors)
        self._log = logger or LOG
        self._server: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self._stopped = threading.Event()
        self.port = 0

    def start(self) -> int:
        """Binds, starts serving, reports SERVING; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("participant already started")
        server = grpc.server(ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="kubetx"),
                             options=self._options, interceptors=self._interceptors)
        log = self._log
        names = register_services(server, self._handlers, lambda kind, h: _SyncServicer(kind, h, log))
        if self._register is not None:
            self._register(server)
        hs = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(hs, server)
        if self._credentials is not None:
            port = server.add_secure_port(self.address, self._credentials)
        else:
            port = server.add_insecure_port(self.address)
        if not port:
            raise RuntimeError(f"participant: cannot listen on {self.address}")
        server.start()
        for name in ["", *names]:
            hs.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._health, self.port = server, hs, port
        log.info("participant listening address=%s services=%s", self.address.rsplit(":", 1)[0] + f":{port}", ",".join(names))
        return port

    def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, no new calls; waits up to ``grace`` (default shutdown_grace) for calls in flight, then cancels them."""
        if self._server is None or self._stopped.is_set():
            return
        g = self.shutdown_grace if grace is None else grace
        self._log.info("participant draining grace=%ss", g)
        assert self._health is not None
        self._health.enter_graceful_shutdown()
        self._server.stop(g).wait()
        self._stopped.set()
        self._log.info("participant stopped")

    def wait(self) -> None:
        """Blocks until stop() is done (signals are still handled meanwhile)."""
        while not self._stopped.wait(0.5):
            pass

    def __enter__(self) -> Participant:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_on_signals(participant: Participant, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """On any of ``signals`` (main thread only), stop the participant gracefully in a background thread."""

    def on_signal(signum: int, _frame: Any) -> None:
        participant._log.info("participant got signal %s", signal.Signals(signum).name)
        threading.Thread(target=participant.stop, name="kubetx-stop", daemon=True).start()

    for s in signals:
        signal.signal(s, on_signal)


def serve(
    *,
    handle_signals: bool = True,
    on_listening: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> None:
    """Serves until stopped: ``Participant(**kwargs)``, started, with SIGTERM/SIGINT
    stopping it gracefully when ``handle_signals``; ``on_listening(port)`` once bound."""
    p = Participant(**kwargs)
    p.start()
    if handle_signals:
        stop_on_signals(p)
    if on_listening is not None:
        on_listening(p.port)
    p.wait()
