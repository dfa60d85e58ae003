"""uvicorn's httptools protocol with a cap on request heads and deadlines for reading requests.

uvicorn's httptools protocol holds a request head (request line and headers) in memory however
long it grows, and never closes a connection that stops sending in the middle of a request: a few
sockets with unfinished 50 MiB headers took a server from 317 MiB to 1.3 GiB, and sockets that
stall keep their slot under the connection cap forever. This subclass adds, per connection:

- a cap on the bytes of a request head (`max_header_bytes`): one byte more is answered 431 and the
  connection closed, before the head is complete (the bytes received are counted, not parsed);
- a head deadline (`header_timeout`): the head must be complete that many seconds after the
  connection opened or the request's first byte arrived;
- a body deadline (`body_timeout`): the body must be complete that many seconds after the head.

A missed deadline is answered 408 (when no response has started) and the connection closed; the
application sees the client disconnect (`http.disconnect`), and the request's ASGI state carries
`READ_TIMEOUT_STATE` so it can be reported as 408, not as the client's own disconnect.

Parsing stays httptools' (llhttp): this class only counts bytes and arms one timer per request
(switching to uvicorn's h11 protocol, which has a head limit, cost +95 µs of CPU per request).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["READ_TIMEOUT_STATE", "LimitedHttpToolsProtocol", "ServerConfig"]

log = logging.getLogger("tistate.http")

#: key of the request's ASGI state set when the protocol closed the request for a missed deadline
READ_TIMEOUT_STATE = "tistate.read_timeout"


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the read limits of LimitedHttpToolsProtocol (picklable for workers)."""

    def __init__(
        self,
        app: Any,
        *,
        max_header_bytes: int,
        header_timeout: float,
        body_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, http=LimitedHttpToolsProtocol, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the complete head is over the cap."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes: int = getattr(config, "max_header_bytes", 32 * 1024)
        self.header_timeout: float = getattr(config, "header_timeout", 10.0)
        self.body_timeout: float = getattr(config, "body_timeout", 30.0)
        #: reading a request head (or waiting for the first byte of one)
        self._in_head = True
        #: bytes received since the current head began (an upper bound of its size)
        self._head_bytes = 0
        #: loop time by which the current body must be complete
        self._body_deadline = 0.0
        #: one timer per request: the head deadline, then (re-armed if need be) the body's
        self._read_timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------------------- timers
    def _arm(self, seconds: float) -> None:
        self._read_timer = self.loop.call_later(seconds, self._read_timeout)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timeout(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if not self._in_head:
            left = self._body_deadline - self.loop.time()
            if left > 0:  # the head's timer ran out first: wait for the body's deadline
                self._arm(left)
                return
        phase = "head" if self._in_head else "body"
        log.info(
            "request read deadline missed", extra={"phase": phase, "client": _peer(self.client)}
        )
        if self._in_head:
            # nothing to answer on a connection that never sent a byte of this request
            self._refuse(408, b"request not received in time", answer=self._head_bytes > 0)
            return
        self.scope["state"][READ_TIMEOUT_STATE] = True
        answer = self.cycle is None or not self.cycle.response_started
        self._refuse(408, b"request not received in time", answer=answer)

    # ---------------------------------------------------------------------------- refusals
    def _refuse(self, status: int, message: bytes, *, answer: bool = True) -> None:
        """Answer `status` (when `answer`) and close the connection; an application still
        reading the request sees the client disconnect, and its response is dropped."""
        self._disarm()
        if answer:
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[status],
                        b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: %d\r\n" % len(message),
                        b"connection: close\r\n\r\n",
                        message,
                    ]
                )
            )
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    # ---------------------------------------------------------------------------- protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            if self._read_timer is None:  # the first bytes of a request on a kept-alive connection
                self._arm(self.header_timeout)
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, b"request header fields too large")
                return
            self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(431, b"request header fields too large")

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self._disarm()
        self.send_400_response(msg)

    def on_headers_complete(self) -> None:
        counted = self._head_bytes
        if counted == 0 or counted > self.max_header_bytes:
            # The bytes counted are not a bound of this head (it came in the chunk that ended
            # the previous request, or with part of its body): measure the head itself.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_header_bytes:
                raise _HeadTooLarge
        self._in_head = False
        self._head_bytes = 0
        self._body_deadline = self.loop.time() + self.body_timeout
        timer = self._read_timer
        if timer is None or timer.when() > self._body_deadline:
            self._disarm()
            self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()


def _peer(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None
