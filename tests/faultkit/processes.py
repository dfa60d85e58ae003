"""Private processes for fault tests: a throwaway PostgreSQL cluster and PgBouncer, on loopback.

The shared PostgreSQL (127.0.0.1:5432) is never restarted: a test that restarts PostgreSQL starts
its own cluster with initdb in a temporary directory (trust auth, fsync off, a free port). Both
refuse to run as root, so when the tests run as root they run as the `postgres` OS user.
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

import psycopg

PG_BIN = Path(os.environ.get("TISTATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class PrivatePostgres:
    """`initdb` + `pg_ctl` in a temporary directory; start, stop, restart, destroy."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tistate-faults-pg-"))
        self.root.chmod(0o755)
        _give_to_postgres(self.root)
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, check: bool = True) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    *args,
                ]
            ),
            check=check,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._ctl("restart", "-m", mode)

    def createdb(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
            # Tests name Airflow's tables unqualified (conftest.create_database does the same).
            conn.execute(f'ALTER DATABASE "{name}" SET search_path = tistate, public')  # type: ignore[arg-type]
        return self.url(name)

    def destroy(self) -> None:
        self._ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """PgBouncer in transaction-pooling mode in front of one database, on a free loopback port."""

    def __init__(
        self, host: str, port: int, dbname: str, *, pool_size: int = 10, user: str = "postgres"
    ) -> None:
        self.dbname = dbname
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tistate-faults-pgbouncer-"))
        self.root.chmod(0o755)
        (self.root / "userlist.txt").write_text(f'"{user}" ""\n')
        lines = [
            "[databases]",
            f"{dbname} = host={host} port={port} dbname={dbname} user={user}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.root / 'userlist.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "max_client_conn = 500",
            "server_reset_query =",
            # psycopg sends these; in transaction mode they cannot be kept per client anyway
            "ignore_startup_parameters = extra_float_digits,application_name,options",
            f"logfile = {self.root / 'pgbouncer.log'}",
            f"pidfile = {self.root / 'pgbouncer.pid'}",
        ]
        if os.geteuid() == 0:
            lines.append("user = postgres")
        ini = self.root / "pgbouncer.ini"
        ini.write_text("\n".join(lines) + "\n")
        for path in [self.root, *self.root.iterdir()]:
            _give_to_postgres(path)
        self.process = subprocess.Popen(
            [PGBOUNCER, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise AssertionError(f"pgbouncer exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("pgbouncer did not listen") from None
                time.sleep(0.05)

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.dbname}"

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()  # else an unclosed pipe warning surfaces in a later test
        shutil.rmtree(self.root, ignore_errors=True)
