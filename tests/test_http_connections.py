"""Client connections: the cap (uvicorn's limit_concurrency) and the open-file limit that fits it.

A fleet of Airflow workers keeps 1-2 keep-alive connections each. At the cap every request on every
connection is answered 503, so the default cap sits well above a 500-worker fleet, and the server
raises its soft open-file limit so that accept() does not fail first.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from http_support import running_server
from tistate.http.server import FD_HEADROOM, raise_open_file_limit
from tistate.http.settings import Settings

#: more connections than the old default cap (1000) and than a soft limit of 1024 allows
CONNECTIONS = 1500


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


async def _open(port: int, count: int) -> list[_Connection]:
    return [_Connection(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(count)]


def _soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc")


def test_the_default_cap_serves_1500_keep_alive_connections_from_a_1024_file_limit(
    db_dsn: str, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CONNECTIONS + 100:  # this test's own end of the connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(CONNECTIONS + 100, hard), hard))
    command = ["sh", "-c", f"ulimit -S -n 1024 && exec {sys.executable} -m tistate.http"]
    with running_server(db_dsn, tmp_path / "server.log", command=command) as server:
        default_cap = Settings(insecure_no_auth=True).max_connections
        expected = min(default_cap + FD_HEADROOM, hard)
        assert _soft_open_files(server.process.pid) == expected

        async def exercise() -> Counter[int]:
            connections = await _open(server.port, CONNECTIONS)
            try:
                return Counter(await asyncio.gather(*(c.get("/health") for c in connections)))
            finally:
                for c in connections:
                    c.close()

        assert asyncio.run(exercise()) == Counter({200: CONNECTIONS})


def test_at_the_cap_a_request_is_503_and_its_connection_closed(db_dsn: str, tmp_path: Path) -> None:
    """uvicorn's limit: while `cap` connections are open, a request is refused with 503 and its
    connection closed (which brings the count back under the cap)."""
    cap = 8
    with running_server(db_dsn, tmp_path / "server.log", max_connections=cap) as server:

        async def exercise() -> tuple[list[int], list[bytes], int]:
            connections = await _open(server.port, cap + 2)
            statuses: list[int] = []
            leftovers: list[bytes] = []
            try:
                for c in connections:  # one at a time: each refusal closes one connection
                    statuses.append(await c.get("/health"))
                    if statuses[-1] == 503:
                        leftovers.append(await c.reader.read())
            finally:
                for c in connections:
                    c.close()
            # The server sees the closes asynchronously: ask until it has (bounded).
            deadline = time.monotonic() + 10
            while True:
                (fresh,) = await _open(server.port, 1)
                try:
                    status = await fresh.get("/health")
                finally:
                    fresh.close()
                if status == 200 or time.monotonic() > deadline:
                    return statuses, leftovers, status
                await asyncio.sleep(0.05)

        statuses, leftovers, after = asyncio.run(exercise())
        assert set(statuses) <= {200, 503} and statuses.count(503) >= 1, statuses
        assert leftovers == [b""] * statuses.count(503)  # closed by the server after the 503
        assert after == 200


def test_raise_open_file_limit_stops_at_the_hard_limit_and_says_so() -> None:
    script = """
import logging, resource, sys
from tistate.http.server import raise_open_file_limit
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 300))
print(raise_open_file_limit(200), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
print(raise_open_file_limit(5000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == "200 200"  # raised to what is needed, no warning
    assert "open-file limit is below what max_connections needs" in out[1]
    assert out[2] == "300 300"  # capped by the hard limit
    assert raise_open_file_limit(16) >= 16  # never lowers a limit
