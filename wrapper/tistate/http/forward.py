"""Forwarding to Airflow's API server: the one request a path-based proxy cannot route.

A `PATCH .../state` whose body asks for a state tistate does not implement (`awaiting_input`, human
in the loop) is sent on to Airflow's own API server (`Settings.airflow_api_url`, never the proxy in
front of both) with its method, path, query, headers and body unchanged, and Airflow's answer
(status, headers such as Refreshed-API-Token, body) is returned as it is. Connection failures
answer 502 and timeouts 504, so the Task SDK retries them; the forward itself never retries.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from .settings import Settings

__all__ = ["FORWARDED_STATES", "ForwardToAirflowError", "forward", "forwarded_state", "install"]

log = logging.getLogger("tistate.http")

#: state values of PATCH .../state that Airflow's API server implements and tistate does not
FORWARDED_STATES = frozenset({"awaiting_input"})

#: hop-by-hop headers (RFC 9110 7.6.1) and those httpx sets itself
_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
#: response headers not copied back (the body is re-framed, decoded by httpx; uvicorn adds date)
_DROPPED_BACK = _DROPPED | {"content-encoding", "x-request-id", "date", "server"}


class ForwardToAirflowError(Exception):
    """Raised by a route whose request goes to Airflow's API server instead (the raw body)."""

    def __init__(self, body: bytes) -> None:
        super().__init__("forwarded to Airflow's API server")
        self.body = body


def forwarded_state(raw: bytes | Any) -> bool:
    """The body is a JSON object whose `state` tistate forwards (read only when the body names
    such a state: an invalid body of any other kind is never parsed again)."""
    if not isinstance(raw, bytes | bytearray) or not any(
        state.encode() in raw for state in FORWARDED_STATES
    ):
        return False
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # invalid, or nested too deep for the stdlib parser
        return False
    return isinstance(document, dict) and document.get("state") in FORWARDED_STATES


def _client(app: FastAPI, settings: Settings) -> httpx.AsyncClient:
    client: httpx.AsyncClient | None = getattr(app.state, "forward_client", None)
    if client is None:
        client = httpx.AsyncClient(
            timeout=settings.forward_timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )
        app.state.forward_client = client
    return client


def _problem(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"reason": reason, "message": message}}, status_code=status)


async def forward(request: Request, body: bytes) -> Response:
    """Airflow's API server's answer to this request (method, path, headers and `body`)."""
    settings: Settings = request.app.state.settings
    request.state.forwarded = True  # its answer carries Airflow's own Refreshed-API-Token
    if not settings.airflow_api_url:
        log.error("a request tistate forwards arrived, but TISTATE_AIRFLOW_API_URL is not set")
        return _problem(
            502,
            "no_airflow_api",
            "this request is served by Airflow's API server, and tistate does not know where it "
            "is: set TISTATE_AIRFLOW_API_URL",
        )
    url = settings.airflow_api_url.rstrip("/") + request.scope.get("raw_path", b"").decode(
        "latin-1"
    )
    if request.url.query:
        url += "?" + request.url.query
    headers = [
        (name, value)
        for name, value in request.headers.raw
        if name.decode().lower() not in _DROPPED
    ]
    client_addr = request.client.host if request.client else None
    if client_addr:
        headers.append((b"x-forwarded-for", client_addr.encode()))
    headers.append((b"x-forwarded-proto", request.url.scheme.encode()))
    if "host" in request.headers:
        headers.append((b"x-forwarded-host", request.headers["host"].encode("latin-1")))
    try:
        answer = await _client(request.app, settings).request(
            request.method, url, content=body, headers=headers
        )
    except httpx.TimeoutException:
        return _problem(504, "upstream_timeout", "Airflow's API server did not answer in time")
    except httpx.HTTPError as exc:
        log.warning("forward to Airflow's API server failed", extra={"error": str(exc)})
        return _problem(502, "upstream_unreachable", "Airflow's API server cannot be reached")
    back = [
        (name, value)
        for name, value in answer.headers.raw
        if name.decode().lower() not in _DROPPED_BACK
    ]
    response = Response(content=answer.content, status_code=answer.status_code)
    response.raw_headers = [
        *[h for h in response.raw_headers if h[0] == b"content-length"],
        *back,
    ]
    return response


def install(app: FastAPI) -> None:
    """The handler of ForwardToAirflowError, and the client's closing with the app."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ForwardToAirflowError)
        response = await forward(request, exc.body)
        request.app.state.metrics.observe_forward(response.status_code)
        return response

    app.add_exception_handler(ForwardToAirflowError, handler)


async def close(app: FastAPI) -> None:
    client: httpx.AsyncClient | None = getattr(app.state, "forward_client", None)
    if client is not None:
        app.state.forward_client = None
        await client.aclose()
