"""python -m bank_python --bank NAME --database-url postgres://... [--listen :50051] [--conformance-hook] [--fault-rate R]

The flags are bank-go's; each can also be set from the environment (KUBETX_BANK_<NAME>).
Logs are JSON lines on stdout; "bank listening" carries the bound address.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from typing import Any

from psycopg_pool import ConnectionPool

from bank_python.bank import OP_TRANS_OUT, Bank, migrate
from bank_python.faults import SAGA_METHODS, TCC_METHODS, Faults, Faulty
from bank_python.hook import CONFORMANCE_OPERATION, Hook
from kubetx_participant import Barrier, Dialect, Participant, stop_on_signals
from kubetx_participant.pb import hook_pb2_grpc


class JsonLines(logging.Formatter):
    """One JSON object a line, like bank-go's slog JSON handler: time, level, msg, bank, fields."""

    def __init__(self, bank: str) -> None:
        super().__init__()
        self.bank = bank

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                               "level": record.levelname, "msg": record.getMessage(), "bank": self.bank}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def env(name: str, default: str) -> str:
    return os.environ.get(f"KUBETX_BANK_{name}", default)


def duration(text: str) -> float:
    """'10s', '500ms', '1m' or plain seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10s, 500ms)")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m[2]]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bank-python", description="kubetx example participant: one bank (TransOut/TransIn, TCC and Saga) on PostgreSQL")
    p.add_argument("--bank", default=env("NAME", ""), help="name of this bank, shown in messages and logs (env KUBETX_BANK_NAME)")
    p.add_argument("--listen", default=env("LISTEN", ":50051"), help="gRPC listen address; port 0 picks a free one (logged as \"bank listening\") (env KUBETX_BANK_LISTEN)")
    p.add_argument("--database-url", default=env("DATABASE_URL", ""), help="PostgreSQL URL, e.g. postgres://user@host:5432/bank (env KUBETX_BANK_DATABASE_URL)")
    p.add_argument("--conformance-hook", action="store_true", default=env("CONFORMANCE_HOOK", "false").lower() in ("1", "true", "yes"),
                   help="also serve kubetx.conformance.v1.ConformanceHook, and take operation \"conformance\" as TransOut (tests only: it opens accounts) (env KUBETX_BANK_CONFORMANCE_HOOK)")
    p.add_argument("--fault-rate", type=float, default=float(env("FAULT_RATE", "0")), help="tests only: fraction of calls answered UNAVAILABLE, half before and half after committing (env KUBETX_BANK_FAULT_RATE)")
    p.add_argument("--fault-seed", type=int, default=int(env("FAULT_SEED", "0")), help="seed of the fault draws; 0 = from the clock (env KUBETX_BANK_FAULT_SEED)")
    p.add_argument("--max-conns", type=int, default=20, help="database connections at most")
    p.add_argument("--shutdown-grace", type=duration, default=10.0, help="how long in-flight calls may finish after SIGTERM")
    a = p.parse_args(argv)
    if not a.bank:
        p.error("--bank is required")
    if not a.database_url:
        p.error("--database-url is required")
    if not 0 <= a.fault_rate <= 1:
        p.error(f"--fault-rate must be between 0 and 1, got {a.fault_rate}")
    if a.fault_seed == 0:
        a.fault_seed = time.time_ns()
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines(a.bank))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
    log = logging.getLogger("bank")

    listen = a.listen if not a.listen.startswith(":") else "0.0.0.0" + a.listen
    pool = ConnectionPool(a.database_url, min_size=1, max_size=a.max_conns, open=True, name=f"bank-{a.bank}")
    try:
        with pool.connection() as conn:
            migrate(conn)
            barrier = Barrier(Dialect.POSTGRES)
            barrier.ensure_table(conn)
        bank = Bank(a.bank)
        if a.conformance_hook:
            # The kit names its operation "conformance"; its semantics are TransOut's (hook.proto).
            bank.aliases[CONFORMANCE_OPERATION] = OP_TRANS_OUT
        tcc: Any = barrier.tcc(bank, pool.connection)
        saga: Any = barrier.saga(bank, pool.connection)
        if a.fault_rate > 0:
            faults = Faults(a.fault_rate, a.fault_seed, log)
            tcc, saga = Faulty(faults, tcc, TCC_METHODS), Faulty(faults, saga, SAGA_METHODS)
            log.warning("fault injection on", extra={"fields": {"rate": a.fault_rate, "seed": a.fault_seed}})
        register = None
        if a.conformance_hook:
            hook = Hook(pool)
            register = lambda server: hook_pb2_grpc.add_ConformanceHookServicer_to_server(hook, server)  # noqa: E731
            log.warning("serving the conformance hook: anyone reaching this port can open accounts")
        log.info("bank starting", extra={"fields": {"listen": a.listen, "conformanceHook": a.conformance_hook}})
        participant = Participant(tcc=tcc, saga=saga, register=register, address=listen, max_workers=max(8, a.max_conns + 8),
                                  shutdown_grace=a.shutdown_grace, logger=logging.getLogger("kubetx_participant"))
        port = participant.start()
        stop_on_signals(participant)
        host = listen.rsplit(":", 1)[0]
        log.info("bank listening", extra={"fields": {"address": f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"}})
        participant.wait()
        log.info("bank stopped")
        return 0
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
