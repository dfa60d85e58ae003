"""Helpers shared by the HTTP tests (no tests here): a real `python -m tistate.http` server process
on a loopback port, its own migrated database, token minting and DAG fixtures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
import psycopg

from tistate import Client

SECRET = "test-secret-" + "0123456789abcdef" * 4
AUDIENCE = "urn:airflow.apache.org:task"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STARTUP_TIMEOUT = 30.0

PRODUCER = {
    "dag_id": "producer",
    "tasks": [
        {
            "task_id": f"t{i}",
            "max_tries": 1,
            "outlets": [
                {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
                {"type": "AssetAlias", "name": "daily-tables"},
            ],
        }
        for i in range(8)
    ],
}
CONSUMER = {
    "dag_id": "consumer",
    "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mint(
    sub: str | UUID,
    *,
    secret: str = SECRET,
    algorithm: str = "HS256",
    audience: str | None = AUDIENCE,
    issuer: str | None = None,
    expires_in: float = 600,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": str(sub), "iat": now, "nbf": now, "exp": now + expires_in}
    if audience is not None:
        payload["aud"] = audience
    if issuer is not None:
        payload["iss"] = issuer
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm=algorithm)


def auth(ti_id: str | UUID, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(ti_id, **kwargs)}"}


@dataclass
class Server:
    """A running `python -m tistate.http` process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def threads(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads line")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


#: `tistate serve` from this interpreter (the console script may belong to another one)
CLI_SERVE = [sys.executable, "-c", "from tistate.cli import app; app()", "serve"]


def start_server(
    database_url: str | None,
    log_path: Path,
    *,
    wait_ready: bool = True,
    command: list[str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    **settings: Any,
) -> Server:
    """Start the server with TISTATE_* settings (keyword names without the prefix).

    The default command is `python -m tistate.http` (settings from the environment only)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TISTATE_")}
    env.update(
        {
            "TISTATE_PORT": str(port),
            "TISTATE_HOST": "127.0.0.1",
            "TISTATE_JWT_SECRET": SECRET,
            "TISTATE_GRACEFUL_TIMEOUT": "20",
        }
    )
    if database_url is not None:
        env["TISTATE_DATABASE_URL"] = database_url
    env.update({f"TISTATE_{k.upper()}": str(v) for k, v in settings.items()})
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        command or [sys.executable, "-m", "tistate.http"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()
    server = Server(process, port, log_path, env)
    deadline = time.monotonic() + startup_timeout
    path = "/ready" if wait_ready else "/health"
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}:\n{server.log()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"server not ready in {startup_timeout}s:\n{server.log()}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_server(database_url: str, log_path: Path, **settings: Any) -> Iterator[Server]:
    server = start_server(database_url, log_path, **settings)
    try:
        yield server
    finally:
        server.stop()


class Dags:
    """Creates runs of the PRODUCER DAG and moves task instances through the library."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._runs = 0
        with Client(dsn) as client:
            client.define_dag(PRODUCER)
            client.define_dag(CONSUMER)

    def run(self) -> list[UUID]:
        """A new run; the ids of its queued task instances, by task id."""
        self._runs += 1
        with Client(self.dsn) as client:
            tasks = client.create_dag_run("producer", f"run_{self._runs}", now=NOW)
        return [t.ti_id for t in sorted(tasks, key=lambda t: t.task_id)]

    def queued(self) -> UUID:
        return self.run()[0]

    def running(self, hostname: str = "worker-1", pid: int = 100) -> UUID:
        ti_id = self.queued()
        with Client(self.dsn) as client:
            client.ti_run(ti_id, running_payload(hostname, pid))
        return ti_id

    def state(self, ti_id: UUID) -> str | None:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT state FROM task_instance WHERE id = %s", (ti_id,)).fetchone()
        assert row is not None
        value: str | None = row[0]
        return value


def running_payload(hostname: str = "worker-1", pid: int = 100) -> dict[str, Any]:
    return {
        "state": "running",
        "hostname": hostname,
        "unixname": "airflow",
        "pid": pid,
        "start_date": NOW.isoformat(),
    }


def success_payload(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": "success",
        "end_date": (NOW + timedelta(minutes=1)).isoformat(),
        "task_outlets": [{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}],
        "outlet_events": [],
    }
    body.update(extra)
    return body


def wait_for_lock_waiters(dsn: str, count: int, timeout: float = 20.0) -> None:
    """Block until `count` server sessions wait on a lock (a deterministic step, not a sleep)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tistate-http' "
                "AND wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} sessions waiting on a lock")
            time.sleep(0.01)
