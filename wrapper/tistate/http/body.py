"""Request bodies validated from the raw JSON bytes with the library's models.

The payload models are strict (`strict=True, extra="forbid"`); FastAPI would validate them in
Python mode after `json.loads`, where strict mode refuses a JSON array for a `tuple` (the
skip-downstream `[task_id, map_index]` pairs). Validating the bytes in JSON mode is both correct for
strict models and one pass in pydantic-core. Errors keep FastAPI's 422 shape
(`{"detail": [{"type", "loc": ["body", ...], "msg", "input"}]}`), which is what Airflow answers.

The body is read with a size cap, so a client cannot make the process hold an unbounded body,
and charged to the process's body memory budget (tistate.http.budget) before it is read and once
its JSON values are counted. A 422 echoes only small inputs, with non-finite numbers as strings.
A client gone before its body is complete is ClientGoneError (499 or 408), not an error of ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from .. import models
from .budget import BodyBudget, charge_for, read_charge

__all__ = [
    "CHARGE_STATE",
    "HEARTBEAT",
    "RUN",
    "SKIP_DOWNSTREAM",
    "STATE_UPDATE",
    "BodyOverBudgetError",
    "BodyTooLargeError",
    "ClientGoneError",
    "echo_input",
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

    def __init__(self, limit: int, message: str | None = None) -> None:
        super().__init__(message or f"request body larger than {limit} bytes")
        self.limit = limit


class BodyOverBudgetError(Exception):
    """The process's body memory budget is spent by other requests (503, retry)."""


class ClientGoneError(Exception):
    """The client closed the connection (or missed the body deadline) before its body was read:
    nobody is left to answer (499, or 408 for a missed deadline; never a 500)."""


#: key of the request's ASGI state: the bytes of the body budget this request holds
#: (RequestMiddleware gives them back when the request ends)
CHARGE_STATE = "tistate.body_charge"


def _charge(request: Request, budget: BodyBudget, amount: int) -> None:
    """Hold `amount` bytes of the budget for this request (on top of what it holds already)."""
    state = request.scope["state"]
    held: int = state.get(CHARGE_STATE, 0)
    if amount <= held:
        return
    if amount > budget.capacity:
        raise BodyTooLargeError(
            budget.capacity,
            f"request body too large or too complex: serving it would take about {amount} "
            f"bytes of memory, more than the {budget.capacity} bytes allowed",
        )
    if not budget.take(amount - held):
        raise BodyOverBudgetError
    state[CHARGE_STATE] = amount


async def read_body(request: Request, limit: int, budget: BodyBudget) -> bytearray:
    """The whole body, or BodyTooLargeError as soon as it passes `limit` bytes. Its memory is
    charged to `budget` before it is read (the declared length, else `limit`) and once it is."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    if size is not None and size > limit:
        raise BodyTooLargeError(limit)
    _charge(request, budget, read_charge(limit if size is None else size))
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise BodyTooLargeError(limit)
            body += chunk
    except ClientDisconnect:
        raise ClientGoneError from None
    _charge(request, budget, charge_for(body))
    return body


#: an `input` echoed in a 422 body is cut down to this many JSON values or string characters
ECHO_LIMIT = 64


def _echo(value: Any, room: list[int]) -> Any:
    """`value` for a 422 body: JSON-encodable (a non-finite float becomes its name) and small (a
    value over ECHO_LIMIT is replaced by a note: the input may be most of a large body)."""
    room[0] -= 1
    if room[0] < 0:
        raise OverflowError
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str | bytes | bytearray):
        if len(value) > ECHO_LIMIT * 16:
            raise OverflowError
        return value.decode("utf-8", errors="replace") if not isinstance(value, str) else value
    if isinstance(value, dict):
        return {str(key): _echo(item, room) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_echo(item, room) for item in value]
    return value


def echo_input(value: Any) -> Any:
    try:
        return _echo(value, [ECHO_LIMIT])
    except OverflowError:
        return f"<{type(value).__name__} too large to echo>"


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        entry: dict[str, Any] = dict(error)
        entry["loc"] = ("body", *error["loc"])
        if "input" in entry:
            entry["input"] = echo_input(entry["input"])
        errors.append(entry)
    return errors


async def parse_body(
    request: Request,
    adapter: TypeAdapter[T],
    limit: int,
    on_invalid: Callable[[bytearray], Exception | None] | None = None,
) -> T:
    """The body validated by `adapter`; FastAPI's 422 (RequestValidationError), 413 or 503.
    `on_invalid(raw)` may name another exception to raise for an invalid body instead of 422."""
    raw = await read_body(request, limit, request.app.state.body_budget)
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    instead: Exception | None = None
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        instead = on_invalid(raw) if on_invalid is not None else None
        errors = _errors(exc) if instead is None else []
    # raised outside the except clause: the ValidationError (which holds the parsed input) is not
    # kept alive as the new exception's __context__
    if instead is not None:
        raise instead
    raise RequestValidationError(errors)
