"""Test helpers: a throwaway PostgreSQL server, and participants on free ports.

``PostgresServer`` runs ``initdb`` into a temp dir and starts ``postgres`` on a
free localhost port (fsync off, trust authentication, the socket in the same
dir), like sdk/go/internal/testdb: no system cluster is touched. As root it
runs as the ``postgres`` user (initdb refuses root). Binaries: ``$PG_BIN``,
else the newest ``$PG_LIB_DIR/<version>/bin`` (default /usr/lib/postgresql),
else ``initdb`` on PATH; missing binaries raise ``PostgresMissing`` saying to
run ``bash hack/postgres.sh``.

In a conftest.py::

    @pytest.fixture(scope="session")
    def postgres():
        with PostgresServer() as server:
            yield server
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: stop() still stops the server
        return None


_PRCTL = _load_prctl()  # looked up here: a preexec_fn must not import


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGQUIT))  # PR_SET_PDEATHSIG


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_postgres_bin() -> Path:
    candidates: list[Path] = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    root = Path(os.environ.get("PG_LIB_DIR", "/usr/lib/postgresql"))
    if root.is_dir():
        versions = sorted((d for d in root.iterdir() if d.name.replace(".", "").isdigit()), key=lambda d: float(d.name), reverse=True)
        candidates += [d / "bin" for d in versions]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for d in candidates:
        if all(os.access(d / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return d
    raise PostgresMissing(
        f"PostgreSQL server binaries (initdb, postgres) not found in $PG_BIN, {root}/*/bin or PATH: "
        "install them with `bash hack/postgres.sh` (as root; Debian: apt-get install -y postgresql) or set PG_BIN"
    )


class PostgresServer:
    """A throwaway PostgreSQL server; ``url(db)`` is a postgres:// URL, ``create_database(name)`` makes one."""

    def __init__(self, *, max_connections: int = 300) -> None:
        self.bin = find_postgres_bin()
        self._as_postgres = os.geteuid() == 0
        self._max_connections = max_connections
        self.dir = Path(tempfile.mkdtemp(prefix="kubetx-py-pg-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def _cmd(self, tool: str, *args: str) -> list[str]:
        return [str(self.bin / tool), *args]

    def _popen_args(self) -> dict[str, Any]:
        """Run as the postgres user when root; die with this process (Linux: PR_SET_PDEATHSIG, SIGQUIT is
        PostgreSQL's immediate shutdown), so a killed test run leaves no server behind."""
        kw: dict[str, Any] = {"cwd": self.dir, "preexec_fn": _die_with_parent}
        if self._as_postgres:
            kw.update(user="postgres", group="postgres", extra_groups=[])
        return kw

    def start(self) -> PostgresServer:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        out = subprocess.run(self._cmd("initdb", "-D", str(data), "-U", "kubetx", "--auth=trust", "--encoding=UTF8",
                                       "--locale=C", "--no-sync", "--no-instructions"), capture_output=True, **self._popen_args())
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stdout.decode()} {out.stderr.decode()}")
        last = ""
        for _ in range(3):
            self.port = free_port()
            log = open(self.dir / "server.log", "ab")
            self._proc = subprocess.Popen(
                self._cmd("postgres", "-D", str(data), "-p", str(self.port), "-k", str(self.dir),
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                          "-c", "full_page_writes=off", "-c", f"max_connections={self._max_connections}", "-c", "shared_buffers=32MB"),
                stdout=log, stderr=log, **self._popen_args())
            log.close()
            if self._wait_ready():
                return self
            last = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            self._kill()
        raise RuntimeError(f"postgres did not start: {last}")

    def _wait_ready(self) -> bool:
        import psycopg

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://kubetx@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGQUIT)  # PostgreSQL's immediate shutdown
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
