"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator and http_cpu.

The generator shares the machine's two cores with the system under test, so every microsecond it
spends is taken from the server. A general-purpose client (httpx, aiohttp) costs 200+ µs of CPU per
request; this one parses only what the bench needs (status line, Content-Length or chunked body,
`Connection: close`) and costs a fraction of that. It is not a general client: no redirects, no
TLS, no proxies, no cookies.

A `Session` keeps up to `limit` idle connections to one origin; a request borrows one (or opens a
new one) and gives it back only when the whole response was read, so a timeout or a broken
connection never leaves a half-read socket in the pool.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["Connection", "HttpError", "Session"]


class HttpError(Exception):
    """The connection failed or the response was not HTTP/1.1 as expected."""


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """(status, body, keep_alive) of one request on this connection."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise HttpError(f"bad status line {lines[0][:80]!r}") from exc
        length: int | None = None
        chunked = False
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = value.strip().lower() != b"close"
        if chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self.reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # no framing: the body runs to the end of the connection
            body = await self.reader.read()
            keep_alive = False
        return status, body, keep_alive

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers are sent to the bench
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class Session:
    """Keep-alive requests to one origin (`http://host:port`)."""

    def __init__(self, base_url: str, *, limit: int = 2) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port origins: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.limit = limit
        self._host_header = f"host: {parts.netloc}\r\n"
        self._idle: list[Connection] = []

    async def request(
        self, method: str, path: str, body: bytes, headers: str, timeout: float
    ) -> tuple[int, bytes]:
        """(status, body); TimeoutError after `timeout` s, HttpError or OSError on failure.

        `headers` is the pre-rendered header block (`name: value\\r\\n` lines) without Host and
        Content-Length, which are added here.
        """
        request = (
            f"{method} {path} HTTP/1.1\r\n{self._host_header}{headers}"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        conn: Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    reused = bool(self._idle)
                    conn = self._idle.pop() if reused else await self._open()
                    try:
                        status, payload, keep_alive = await conn.exchange(request)
                        break
                    except asyncio.IncompleteReadError as exc:
                        conn.close()
                        conn = None
                        # An idle connection the server closed (keep-alive timeout) before it
                        # read a byte of ours: send again on a fresh one, as HTTP clients do.
                        if not (reused and not exc.partial):
                            raise HttpError("connection closed by the server") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if keep_alive and len(self._idle) < self.limit:
            self._idle.append(conn)
        else:
            conn.close()
        return status, payload

    async def _open(self) -> Connection:
        return await Connection.open(self.host, self.port)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
