"""The asyncio server (grpc.aio): the same services, contract and shutdown as kubetx_participant.server.

Handlers may be ``async def`` or plain functions (a plain one runs on the
event loop: keep it short, or use the sync server).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kubetx_participant._gen.kubetx.v1 import participant_pb2 as pb
from kubetx_participant.errors import status_for
from kubetx_participant.server import (
    DEFAULT_ADDRESS,
    DEFAULT_SHUTDOWN_GRACE,
    LOG,
    SERVICES,
    check_state,
    describe,
    log_failure,
    log_ok,
    normalize_response,
    register_services,
)
from kubetx_participant.types import CheckPreparedRequest, PreparedState, Request


class _AsyncServicer:
    def __init__(self, kind: str, handler: Any, log: logging.Logger) -> None:
        _, _, methods = SERVICES[kind]
        for proto_name, attr in methods.items():
            fn = getattr(handler, attr, None)
            if fn is None:
                raise TypeError(f"{kind} handler {type(handler).__name__} has no method {attr}()")
            setattr(self, proto_name, self._wrap(proto_name, fn, log, kind == "source"))

    @staticmethod
    def _wrap(method: str, fn: Callable[[Any], Any], log: logging.Logger, source: bool) -> Callable[..., Any]:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.monotonic()
            r = CheckPreparedRequest.from_proto(request) if source else Request.from_proto(request)
            what = describe(method, r)
            try:
                got = fn(r)
                if inspect.isawaitable(got):
                    got = await got
                out: Any = check_state(got) if source else normalize_response(got)
            except Exception as exc:  # asyncio.CancelledError (the call is gone) is not an Exception
                code, message = status_for(exc)
                log_failure(log, what, code, exc, started)
                await context.abort(code, message)
            if source:
                log_ok(log, what, started, PreparedState(out.state).name)
                return out
            log_ok(log, what, started)
            return pb.BranchResponse(message=out.message, data=out.data)

        return handle


class AsyncParticipant:
    """A participant server on grpc.aio; ``await start()`` returns the port, ``await stop()`` drains."""

    def __init__(
        self,
        *,
        tcc: Any = None,
        saga: Any = None,
        receiver: Any = None,
        source: Any = None,
        register: Callable[[grpc.aio.Server], None] | None = None,
        address: str = DEFAULT_ADDRESS,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        credentials: grpc.ServerCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self._handlers = {"tcc": tcc, "saga": saga, "receiver": receiver, "source": source}
        if all(h is None for h in self._handlers.values()):
            raise ValueError("give at least one of tcc, saga, receiver, source")
        self._register = register
        self.address = address
        self.shutdown_grace = shutdown_grace
        self._credentials = credentials
        self._options = list(options)
        self._interceptors = list(interceptors)
        self._log = logger or LOG
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self._stopping: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        if self._server is not None:
            raise RuntimeError("participant already started")
        server = grpc.aio.server(options=self._options, interceptors=self._interceptors)
        log = self._log
        names = register_services(server, self._handlers, lambda kind, h: _AsyncServicer(kind, h, log))
        if self._register is not None:
            self._register(server)
        hs = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(hs, server)
        if self._credentials is not None:
            port = server.add_secure_port(self.address, self._credentials)
        else:
            port = server.add_insecure_port(self.address)
        if not port:
            raise RuntimeError(f"participant: cannot listen on {self.address}")
        await server.start()
        for name in ["", *names]:
            await hs.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._health, self.port = server, hs, port
        log.info("participant listening address=%s services=%s", self.address.rsplit(":", 1)[0] + f":{port}", ",".join(names))
        return port

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, no new calls; calls in flight get ``grace`` seconds (default shutdown_grace), then are cancelled."""
        if self._server is None:
            return
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(self.shutdown_grace if grace is None else grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        assert self._server is not None
        self._log.info("participant draining grace=%ss", grace)
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._log.info("participant stopped")

    async def wait(self) -> None:
        """Returns once the server has stopped."""
        assert self._server is not None
        await self._server.wait_for_termination()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def __aenter__(self) -> AsyncParticipant:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def stop_on_signals(participant: AsyncParticipant, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """On any of ``signals``, stop the participant gracefully (the running loop's signal handlers)."""
    loop = asyncio.get_running_loop()
    for s in signals:
        loop.add_signal_handler(s, lambda: asyncio.ensure_future(participant.stop()))


async def serve_async(
    *,
    handle_signals: bool = True,
    on_listening: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> None:
    """Serves until stopped: ``AsyncParticipant(**kwargs)``, started, stopped gracefully on SIGTERM/SIGINT."""
    p = AsyncParticipant(**kwargs)
    await p.start()
    if handle_signals:
        stop_on_signals(p)
    if on_listening is not None:
        on_listening(p.port)
    await p.wait()
