"""Start and stop the HTTP servers under test, and PgBouncer in transaction-pooling mode."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import tistate
from bench.common import PG_HOST, PG_PORT, PG_USER, url
from bench.procfs import children, cmdline

# System name -> how to serve it: "tistate" (and "tistate-w<N>", "tistate-deepq") is the
# product's server, `tistate serve`; "roundtrip" is the bench's Airflow-shaped baseline.
SYSTEMS = ("tistate", "tistate-deepq", "roundtrip")
# tistate-deepq: tistate serve with a deep queue for its connections (TISTATE_POOL_MAX_WAITING), so
# bursts wait in-process for up to pool_timeout instead of answering 503 at once.
DEEPQ_ENV = {"TISTATE_POOL_MAX_WAITING": "1000"}
REPO = Path(__file__).resolve().parent.parent
# The tree whose tistate this bench imports (PYTHONPATH=<other tree>/wrapper runs a whole matrix
# against another version: its migrations seed the databases, its server serves them).
TISTATE_TREE = Path(tistate.__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    system: str
    base_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    src: Path = REPO
    label: str = ""  # which of several servers of one system (an A/B's "A" and "B")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def serving_pids(self) -> list[int]:
        """The processes that serve: the workers under `--workers N`, else the server itself."""
        workers = [c for c in children(self.pid) if "spawn_main" in cmdline(c)]
        return workers or [self.pid]


def _command(system: str, port: int, extra_args: Sequence[str]) -> list[str]:
    """`python -m tistate serve ...` (the tree on PYTHONPATH, not whatever `tistate` is on PATH),
    or uvicorn for the round-trip baseline."""
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    serve = [sys.executable, "-m", "tistate", "serve"]
    if system in ("tistate", "tistate-deepq"):
        return [*serve, *bind, *extra_args]
    if workers := re.fullmatch(r"tistate-w(\d+)", system):  # tistate serve --workers N
        return [*serve, "--workers", workers.group(1), *bind, *extra_args]
    if system in ("tistate-pgbouncer", "tistate-deepq-pgbouncer"):  # no prepared statements
        return [*serve, "--pgbouncer", *bind, *extra_args]
    if system != "roundtrip":
        raise ValueError(f"unknown system {system!r}")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.roundtrip:app",
        *bind,
        "--no-access-log",
        "--log-level",
        "warning",
        *extra_args,
    ]


def start_server(
    system: str,
    database_url: str,
    *,
    log_dir: Path,
    jwt_secret: str | None,
    env_extra: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    src: Path = TISTATE_TREE,
    label: str | None = None,
    ready_timeout_s: float = 60.0,
) -> Server:
    """Start one server of `system` from source tree `src` (its wrapper/ goes first on
    PYTHONPATH: an A/B runs two trees side by side) and wait until /health answers."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(src / "wrapper"), str(REPO), env.get("PYTHONPATH")) if p
    )
    env["TISTATE_DATABASE_URL"] = database_url
    env.pop("TISTATE_JWT_SECRET", None)
    args = list(extra_args)
    if jwt_secret:
        env["TISTATE_JWT_SECRET"] = jwt_secret
    elif system.startswith("tistate"):
        args.append("--insecure-no-auth")
    if "deepq" in system:
        env.update(DEEPQ_ENV)
    env.update(env_extra or {})
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label or system}-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _command(system, port, args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=src,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server(system, base, proc, log_path, src=src, label=label or system)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{system} server exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code < 500:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"{system} server not ready after {ready_timeout_s} s: {log_path}")
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM (the servers shut down gracefully), SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_server(server: Server) -> None:
    stop_process(server.proc)


@contextmanager
def pgbouncer(dbname: str, *, pool_size: int = 20) -> Iterator[str]:
    """PgBouncer on a loopback port in transaction mode; yields the database URL through it."""
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tistate-bench-pgbouncer-"))
    (workdir / "userlist.txt").write_text(f'"{PG_USER}" ""\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                f"{dbname} = host={PG_HOST} port={PG_PORT} dbname={dbname} user={PG_USER}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {workdir / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 2000",
                "max_db_connections = 0",
                "server_reset_query =",
                "ignore_startup_parameters = extra_float_digits,application_name,options",
                f"logfile = {workdir / 'pgbouncer.log'}",
                f"pidfile = {workdir / 'pgbouncer.pid'}",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: hand it to the postgres user
        with open(ini, "a") as fh:
            fh.write("user = postgres\n")
        shutil.chown(workdir, "postgres")
        for path in workdir.iterdir():
            shutil.chown(path, "postgres")
    proc = subprocess.Popen([exe, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"pgbouncer exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pgbouncer did not listen") from None
                time.sleep(0.1)
        yield url(dbname, host="127.0.0.1", port=port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
