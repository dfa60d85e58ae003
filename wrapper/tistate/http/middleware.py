"""One pure-ASGI middleware for every request: request id, admission, metrics, access log.

Admission control is the first line of backpressure: at most `Settings.admission_limit` execution
requests are admitted at once; one more is answered 503 with Retry-After before its body is even
read, so a burst of clients costs a few bytes each, not a coroutine holding a body and waiting. The
second line is the connection pool itself (bounded `max_waiting` and `timeout`).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .body import CHARGE_STATE
from .budget import BodyBudget
from .logs import log_access
from .memory import TRIM_AFTER_BYTES, release_free_memory_soon
from .metrics import Metrics

__all__ = ["REQUEST_ID_HEADER", "RequestMiddleware"]

REQUEST_ID_HEADER = "x-request-id"
#: The Task SDK sends a correlation-id on every request: the request id when no X-Request-ID.
CORRELATION_HEADER = "correlation-id"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
ADMITTED_PREFIX = "/execution/"
API_VERSION_HEADER = b"airflow-api-version"
_ID_HEADERS = (REQUEST_ID_HEADER.encode(), CORRELATION_HEADER.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return bytes(value).decode("latin-1")
            except ValueError:
                return None
    return None


def request_id_for(scope: Scope) -> str:
    """The caller's X-Request-ID (or correlation-id) when well-formed, else a fresh one."""
    for name in _ID_HEADERS:
        value = _header(scope, name)
        if value and _REQUEST_ID_RE.match(value):
            return value
    return _fresh_id()


def _fresh_id() -> str:
    """`uuid.uuid4().hex` without building a UUID object (a fifth of its CPU)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        budget: BodyBudget,
        admission_limit: int,
        retry_after: int,
        api_version: str,
    ) -> None:
        self.app = app
        self.api_version = api_version.encode()
        self.metrics = metrics
        self.budget = budget
        self.admission_limit = admission_limit
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        path: str = scope.get("path", "")
        admitted = path.startswith(ADMITTED_PREFIX)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((_ID_HEADERS[0], request_id.encode()))
                if admitted:
                    headers.append((API_VERSION_HEADER, self.api_version))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if admitted and self.in_flight >= self.admission_limit:
                self.metrics.observe_rejection("overloaded")
                await self._reject(send_wrapper)
            elif admitted:
                self.in_flight += 1
                self.metrics.in_flight.inc()
                try:
                    await self.app(scope, receive, send_wrapper)
                finally:
                    self.in_flight -= 1
                    self.metrics.in_flight.dec()
                    charge = state.pop(CHARGE_STATE, 0)
                    if charge:  # the body is served: its memory is free again
                        self.budget.give(charge)
                        if charge >= TRIM_AFTER_BYTES:
                            release_free_memory_soon()
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "")
            if not response_started:
                status = 500
            self.metrics.observe_request(template, method, status, elapsed)
            log_access(
                {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": _client(scope),
                }
            )

    async def _reject(self, send: Send) -> None:
        await send_unavailable(
            send,
            {
                "reason": "overloaded",
                "message": "the service is at its admission limit; retry later",
            },
            self.retry_after,
        )


async def send_unavailable(send: Send, detail: dict[str, Any], retry_after: int) -> None:
    """A 503 with Retry-After and `{"detail": ...}`, straight from ASGI middleware."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str | None:
    client: Any = scope.get("client")
    if client:
        return f"{client[0]}:{client[1]}"
    return None
