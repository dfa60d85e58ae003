"""Request bodies validated from the raw JSON bytes with the library's models.

The payload models are strict (`strict=True, extra="forbid"`); FastAPI would validate them in
Python mode after `json.loads`, where strict mode refuses a JSON array for a `tuple` (the
skip-downstream `[task_id, map_index]` pairs). Validating the bytes in JSON mode is both correct for
strict models and one pass in pydantic-core. Errors keep FastAPI's 422 shape
(`{"detail": [{"type", "loc": ["body", ...], "msg", "input"}]}`), which is what Airflow answers.

The body is read with a size cap, so a client cannot make the process hold an unbounded body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from .. import models

__all__ = [
    "HEARTBEAT",
    "RUN",
    "SKIP_DOWNSTREAM",
    "STATE_UPDATE",
    "BodyTooLargeError",
    "ClientGoneError",
    "json_body",
    "parse_body",
]

T = TypeVar("T")

STATE_UPDATE: TypeAdapter[models.TIStateUpdate] = models.STATE_UPDATE_ADAPTER
RUN: TypeAdapter[models.TIEnterRunningPayload] = TypeAdapter(models.TIEnterRunningPayload)
HEARTBEAT: TypeAdapter[models.TIHeartbeatInfo] = TypeAdapter(models.TIHeartbeatInfo)
SKIP_DOWNSTREAM: TypeAdapter[models.TISkippedDownstreamTasksStatePayload] = TypeAdapter(
    models.TISkippedDownstreamTasksStatePayload
)


class BodyTooLargeError(Exception):
    """The request body exceeds the configured cap (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class ClientGoneError(Exception):
    """The client closed the connection (or missed the body deadline) before its body was read:
    nobody is left to answer (499, or 408 for a missed deadline; never a 500)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLargeError as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGoneError from None
    return b"".join(chunks)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        entry: dict[str, Any] = dict(error)
        entry["loc"] = ("body", *error["loc"])
        if isinstance(entry.get("input"), bytes):  # invalid JSON: the raw bytes may not be UTF-8
            entry["input"] = entry["input"].decode("utf-8", errors="replace")
        errors.append(entry)
    return errors


async def parse_body(request: Request, adapter: TypeAdapter[T], limit: int) -> T:
    """The body validated by `adapter`; FastAPI's 422 (RequestValidationError) or 413."""
    raw = await read_body(request, limit)
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc), body=raw) from None


def json_body(adapter: TypeAdapter[T]) -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency: the body validated by `adapter`, or FastAPI's 422."""

    async def dependency(request: Request) -> T:
        return await parse_body(request, adapter, request.app.state.settings.max_body_bytes)

    return dependency
