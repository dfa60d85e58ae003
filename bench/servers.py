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

from bench.common import PG_HOST, PG_PORT, PG_USER, url

# System name -> how to serve it. "tistate" is the product's server; the others are the bench's.
SYSTEMS = ("tistate", "tistate-deepq", "roundtrip", "function")
# tistate-deepq: tistate serve with a deep queue for its connections (TISTATE_POOL_MAX_WAITING), so
# bursts wait in-process for up to pool_timeout instead of answering 503 at once.
DEEPQ_ENV = {"TISTATE_POOL_MAX_WAITING": "1000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tistate_serve_available() -> bool:
    """Whether the installed tistate CLI has a working `serve` command yet."""
    exe = shutil.which("tistate")
    if exe is None:
        return False
    proc = subprocess.run(
        [exe, "serve", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    return proc.returncode == 0


@dataclass
class Server:
    system: str
    base_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def serving_pids(self) -> list[int]:
        """The processes that serve: the workers under `--workers N`, else the server itself."""
        workers = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid and b"spawn_main" in cmdline:
                workers.append(int(entry.name))
        return sorted(workers) or [self.pid]


def _command(system: str, port: int, extra_args: Sequence[str]) -> list[str]:
    if system in ("tistate", "tistate-deepq"):
        exe = shutil.which("tistate") or "tistate"
        return [exe, "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args]
    if workers := re.fullmatch(r"tistate-w(\d+)", system):  # tistate serve --workers N
        exe = shutil.which("tistate") or "tistate"
        return [
            exe,
            "serve",
            "--workers",
            workers.group(1),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra_args,
        ]
    if system in ("tistate-pgbouncer", "tistate-deepq-pgbouncer"):  # no prepared statements
        exe = shutil.which("tistate") or "tistate"
        return [
            exe,
            "serve",
            "--pgbouncer",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra_args,
        ]
    module = {"roundtrip": "bench.roundtrip:app", "function": "bench.fnserver:app"}[system]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
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
    ready_timeout_s: float = 60.0,
) -> Server:
    port = free_port()
    env = dict(os.environ)
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
    log_path = log_dir / f"{system}-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _command(system, port, args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{system} server exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code < 500:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(Server(system, base, proc, log_path))
            raise RuntimeError(f"{system} server not ready after {ready_timeout_s} s: {log_path}")
        time.sleep(0.2)
    return Server(system=system, base_url=base, proc=proc, log_path=log_path)


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
