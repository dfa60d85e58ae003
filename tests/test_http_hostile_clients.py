"""Hostile and broken clients against a real server on loopback (issue 17, findings 2 and 8).

- A request head is capped: one byte over `max_header_bytes` answers 431 and closes the connection,
  complete or not, so 20 sockets sending 50 MiB headers cost the server almost nothing and do not
  slow other clients down (before: the server took every byte, 317 MiB -> 1.3 GiB).
- Reading a request is bounded in time: a head must be complete `header_timeout` seconds after the
  connection opened, a body `body_timeout` seconds after its head; else 408 and the connection is
  closed. So stalled sockets cannot hold the connection cap (before: they were never closed and, at
  the cap, locked every other client out).
- A client that disconnects in the middle of its body is logged and counted as 499 (408 when it
  missed the deadline), never as a 500 or an "unhandled error".

Every wait is for an event (the server's answer or close, a log line), bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from http_support import Dags, Server, auth, running_server

HEADER_LIMIT = 8 * 1024
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
#: the longest the server may take to act on a deadline (scheduling on a shared 2-core machine)
SLACK = 3.0


@pytest.fixture
def server(db_dsn: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(
        db_dsn,
        tmp_path / "server.log",
        pool_size=2,
        max_connections=6,
        max_header_bytes=HEADER_LIMIT,
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
    ) as srv:
        yield srv


async def _connect(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (bounded by `timeout`)."""
    received = b""
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def _get_health(server: Server) -> int:
    reader, writer = await _connect(server)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def _access_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        if '"msg":"request"' in line:
            lines.append(json.loads(line))
    return lines


def _wait_for_access_line(server: Server, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """The access-log line of the request to `path` (polled until the server wrote it)."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in _access_lines(server):
            if entry["path"] == path:
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for {path}:\n{server.log()[-3000:]}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------- head size


def test_a_head_one_byte_over_the_cap_is_431_complete_or_not(server: Server) -> None:
    async def exercise() -> tuple[int, int, bytes, bytes]:
        prefix = b"GET /health HTTP/1.1\r\nhost: t\r\nx-pad: "
        fits = prefix + b"a" * (HEADER_LIMIT - len(prefix) - 200) + b"\r\n\r\n"
        reader, writer = await _connect(server)
        writer.write(fits)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        # a complete head over the cap, in one write
        reader, writer = await _connect(server)
        writer.write(prefix + b"a" * HEADER_LIMIT + b"\r\n\r\n")
        complete = await _until_closed(reader, 10)
        writer.close()
        # an unfinished head over the cap: the server does not wait for its end
        reader, writer = await _connect(server)
        writer.write(prefix + b"a" * (2 * HEADER_LIMIT))
        unfinished = await _until_closed(reader, 10)
        writer.close()
        return _status(head), _status(complete), complete, unfinished

    ok, complete, complete_body, unfinished = asyncio.run(exercise())
    assert ok == 200
    assert complete == 431 and complete_body.endswith(b"request header fields too large")
    assert _status(unfinished) == 431


def test_twenty_sockets_sending_50_mib_headers_cost_nothing_and_stall_nobody(
    db_dsn: str, tmp_path: Path
) -> None:
    """The finding's attack with the default cap (32 KiB): each socket is closed after a few
    KiB, the server's RSS does not grow, and /health answers meanwhile."""
    sockets, per_socket, chunk = 20, 50 * 1024 * 1024, b"a" * (256 * 1024)
    with running_server(db_dsn, tmp_path / "server.log", pool_size=2) as server:
        before = server.rss_kib()

        async def flood() -> int:
            _, writer = await _connect(server)
            writer.write(b"GET /health HTTP/1.1\r\nhost: t\r\nx-flood: ")
            sent = 0
            try:
                while sent < per_socket:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            except (ConnectionResetError, BrokenPipeError):
                pass
            finally:
                writer.close()
            return sent

        async def exercise() -> tuple[list[int], list[float]]:
            floods = [asyncio.create_task(flood()) for _ in range(sockets)]
            latencies = []
            while not all(f.done() for f in floods):
                started = time.monotonic()
                assert await _get_health(server) == 200
                latencies.append(time.monotonic() - started)
            return [f.result() for f in floods], latencies

        started = time.monotonic()
        sent, latencies = asyncio.run(asyncio.wait_for(exercise(), 120))
        elapsed = time.monotonic() - started
        grown_mib = (server.rss_kib() - before) / 1024

    # Every socket was cut off long before its 50 MiB (what it got out went to kernel buffers).
    assert max(sent) < per_socket / 4, sent
    assert grown_mib < 16, f"RSS grew {grown_mib:.0f} MiB"
    assert max(latencies) < 1.0, latencies
    assert elapsed < 30


# ---------------------------------------------------------------------------------- deadlines


def test_stalled_heads_are_closed_so_the_connection_cap_frees_up(server: Server) -> None:
    """As many stalled sockets as the cap allows (one sent nothing, the others half a head): all
    are closed after header_timeout (408 when a request had begun) and a new client is served."""

    async def exercise() -> tuple[list[bytes], float, int]:
        cap = 6
        opened = [await _connect(server) for _ in range(cap)]
        for _, writer in opened[1:]:
            writer.write(b"GET /health HTTP/1.1\r\nhost: t\r\nx-slow: ")
        started = time.monotonic()
        answers = [await _until_closed(reader, HEADER_TIMEOUT + SLACK) for reader, _ in opened]
        waited = time.monotonic() - started
        for _, writer in opened:
            writer.close()
        return answers, waited, await _get_health(server)

    answers, waited, after = asyncio.run(exercise())
    assert answers[0] == b""  # never sent a byte: closed without an answer
    assert all(_status(answer) == 408 for answer in answers[1:]), answers
    assert waited < HEADER_TIMEOUT + SLACK
    assert after == 200


def test_a_stalled_head_on_a_kept_alive_connection_is_408(server: Server) -> None:
    """The head deadline also runs for the second request of a connection."""

    async def exercise() -> tuple[bytes, bytes]:
        reader, writer = await _connect(server)
        writer.write(b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        await asyncio.wait_for(reader.readexactly(int(_header(first, b"content-length"))), 10)
        writer.write(b"GET /health HTTP/1.1\r\nhost: t\r\n")  # and nothing more
        try:
            return first, await _until_closed(reader, HEADER_TIMEOUT + SLACK)
        finally:
            writer.close()

    first, second = asyncio.run(exercise())
    assert _status(first) == 200 and _status(second) == 408


def _header(head: bytes, name: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    raise AssertionError(f"no {name!r} in {head!r}")


def test_a_stalled_body_is_408_and_closed(server: Server, db_dsn: str) -> None:
    ti = Dags(db_dsn).running()
    path = f"/execution/task-instances/{ti}/heartbeat"

    async def exercise() -> bytes:
        reader, writer = await _connect(server)
        head = (
            f"PUT {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            f"content-length: 100\r\nauthorization: {auth(ti)['Authorization']}\r\n\r\n"
        )
        writer.write(head.encode() + b'{"hostname": ')
        try:
            return await _until_closed(reader, BODY_TIMEOUT + SLACK)
        finally:
            writer.close()

    answer = asyncio.run(exercise())
    assert _status(answer) == 408
    entry = _wait_for_access_line(server, path)
    assert entry["status"] == 408
    assert "unhandled error" not in server.log()


# ---------------------------------------------------------------------------------- disconnects


def _metric(server: Server, name: str, **labels: str) -> float:
    with server.client() as http:
        text = http.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_client_gone_mid_body_is_499_not_a_500(server: Server, db_dsn: str) -> None:
    ti: UUID = Dags(db_dsn).running()
    path = f"/execution/task-instances/{ti}/state"

    async def exercise() -> None:
        _, writer = await _connect(server)
        head = (
            f"PATCH {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            f"content-length: 1000\r\nauthorization: {auth(ti)['Authorization']}\r\n\r\n"
        )
        writer.write(head.encode() + b'{"state": "success", ')
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    asyncio.run(exercise())
    entry = _wait_for_access_line(server, path)
    assert entry["status"] == 499
    log = server.log()
    assert "unhandled error" not in log and "Exception in ASGI application" not in log
    assert _metric(server, "tistate_http_requests_total", status="500") == 0
