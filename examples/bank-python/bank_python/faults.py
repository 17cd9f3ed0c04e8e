"""Injected transient failures for tests, as bank-go's: with probability rate/2 a call answers
UNAVAILABLE before doing anything, with rate/2 UNAVAILABLE after its effect committed (the reply is
"lost"). Both are retryable: the operator calls again, and the barrier must answer the repeat
without applying it twice."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import grpc

from kubetx_participant import Request, StatusError


class Faults:
    def __init__(self, rate: float, seed: int, log: logging.Logger) -> None:
        self.rate, self._log = rate, log
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _hit(self) -> bool:
        with self._lock:
            return self._rng.random() < self.rate / 2

    def around(self, method: str, r: Request, call: Callable[[], Any]) -> Any:
        fields = {"method": method, "uid": r.transaction_uid, "branch": r.branch, "attempt": r.attempt}
        if self._hit():
            self._log.info("fault injected", extra={"fields": {"when": "before", **fields}})
            raise StatusError(grpc.StatusCode.UNAVAILABLE, "injected fault (before the call)")
        resp = call()
        if self._hit():
            self._log.info("fault injected", extra={"fields": {"when": "after", **fields}})
            raise StatusError(grpc.StatusCode.UNAVAILABLE, "injected fault (after the commit)")
        return resp


class Faulty:
    """Wraps a TccParticipant or SagaParticipant: every method goes through Faults.around."""

    def __init__(self, faults: Faults, inner: Any, methods: dict[str, str]) -> None:
        for attr, method in methods.items():
            fn = getattr(inner, attr)
            setattr(self, attr, lambda r, fn=fn, method=method: faults.around(method, r, lambda: fn(r)))


TCC_METHODS = {"try_": "Try", "confirm": "Confirm", "cancel": "Cancel"}
SAGA_METHODS = {"execute": "Execute", "compensate": "Compensate"}
