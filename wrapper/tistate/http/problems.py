"""Error responses: every failure answers Airflow's `{"detail": {"reason", "message", ...}}` body.

The registry (tistate.errors) decides the status of a database error; this module only renders it.
Retryable errors (lock timeout, pool exhausted, serialization failure, lost connection ...) answer
503 with Retry-After, so Airflow's client retries them with backoff, and never 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConnectionLostError, DatabaseError, RetryableError, TistateError
from .body import BodyOverBudgetError, BodyTooLargeError, ClientGoneError, echo_input
from .protocol import READ_TIMEOUT_STATE

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "HTTPProblem",
    "ValidationErrorBody",
    "install_handlers",
]

log = logging.getLogger("tistate.http")

#: nginx's status for a request whose client closed the connection first (access log, metrics)
CLIENT_CLOSED_REQUEST = 499


class ErrorDetail(BaseModel):
    """The `detail` object of every error tistate answers itself (extra keys per reason)."""

    model_config = ConfigDict(extra="allow")

    reason: str
    message: str


class ErrorBody(BaseModel):
    detail: ErrorDetail


class ValidationIssue(BaseModel):
    """One problem in FastAPI's list-shaped 422 body (the body's shape was wrong)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[ValidationIssue]


class HTTPProblem(Exception):
    """An error decided in the HTTP layer (authentication, body size)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def detail(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, **self.extra}


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


#: SQLSTATE classes of a value the database refused: the request's mistake (22 data exception,
#: e.g. numeric out of range; 54 program limit exceeded, e.g. an index row too large)
_CLIENT_SQLSTATE_CLASSES = ("22", "54")


def error_status_and_detail(exc: TistateError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and `detail` object of a library error.

    A TS error carries the SQL's own JSON DETAIL (the field, the previous state ...). Any other
    database error is described by its class and SQLSTATE only: PostgreSQL's message and DETAIL
    name its internals (indexes, constraints, tuples, locks, processes, hosts), which the log keeps
    for the operator. An unregistered error of SQLSTATE class 22 (data exception, e.g. a number out
    of range) or 54 (program limit, e.g. an index row too large) is a value the database refused:
    the request's mistake, 422; any other is a 500.
    """
    sqlstate = exc.sqlstate
    ours = sqlstate.startswith("TS") if sqlstate else not isinstance(exc, ConnectionLostError)
    if ours:  # the SQL's TS codes, and what tistate itself says (schema version, pool)
        return exc.http_status, exc.http_detail()
    if type(exc) is DatabaseError and (sqlstate or "")[:2] in _CLIENT_SQLSTATE_CLASSES:
        return 422, {
            "reason": "invalid_payload",
            "message": "the database refused a value of this request",
            "field": "body",
            "sqlstate": sqlstate,
        }
    message = (type(exc).__doc__ or type(exc).__name__).strip().splitlines()[0]
    if type(exc) is DatabaseError:
        message = "internal database error"
    return exc.http_status, {"reason": exc.default_reason, "message": message, "sqlstate": sqlstate}


def _json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by its name (JSON has no such number)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (`{"detail": [{"type", "loc", "msg", "input"}, ...]}`), encodable whatever
    the input held (a NaN or infinity is rendered as the string "nan", "inf" or "-inf") and small
    (a large input is replaced by a note)."""
    errors: list[Any] = []
    for error in exc.errors():
        entry = dict(error) if isinstance(error, dict) else error
        if isinstance(entry, dict) and "input" in entry:
            entry["input"] = echo_input(entry["input"])
        errors.append(entry)
    detail = _json_safe(jsonable_encoder(errors))
    return JSONResponse({"detail": detail}, status_code=422)


def error_response(exc: TistateError, retry_after: int) -> JSONResponse:
    status, detail = error_status_and_detail(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RetryableError):
        headers["Retry-After"] = str(max(retry_after, exc.retry_after))
    elif status == 503:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that render TistateError, HTTPProblem and unexpected errors."""

    async def tistate_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TistateError)
        app.state.metrics.observe_error(exc)
        response = error_response(exc, app.state.settings.retry_after)
        status = response.status_code
        level = logging.ERROR if status >= 500 and not exc.retryable else logging.INFO
        log.log(
            level,
            "database error",
            extra={
                "request_id": _request_id(request),
                "error": type(exc).__name__,
                "sqlstate": exc.sqlstate,
                "status": status,
                "error_message": exc.message,
            },
        )
        return response

    async def problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPProblem)
        return JSONResponse({"detail": exc.detail()}, status_code=exc.status, headers=exc.headers)

    async def too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLargeError)
        body = {"detail": {"reason": "body_too_large", "message": str(exc), "limit": exc.limit}}
        return JSONResponse(body, status_code=413)

    async def over_budget(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyOverBudgetError)
        app.state.metrics.observe_rejection("overloaded")
        body = {
            "detail": {
                "reason": "overloaded",
                "message": "the service holds as many request bodies as its memory budget "
                "allows; retry later",
            }
        }
        retry_after = str(app.state.settings.retry_after)
        return JSONResponse(body, status_code=503, headers={"Retry-After": retry_after})

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc)

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The connection is closed: this answer only reaches the access log and the metrics.
        timed_out = bool(request.scope.get("state", {}).get(READ_TIMEOUT_STATE))
        status = 408 if timed_out else CLIENT_CLOSED_REQUEST
        log.info(
            "request body not received",
            extra={"request_id": _request_id(request), "status": status},
        )
        return Response(status_code=status)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": _request_id(request)})
        body = {
            "detail": {
                "reason": "internal_error",
                "message": "internal server error",
                "request_id": _request_id(request),
            }
        }
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(TistateError, tistate_error)
    app.add_exception_handler(HTTPProblem, problem)
    app.add_exception_handler(BodyTooLargeError, too_large)
    app.add_exception_handler(ClientGoneError, client_gone)
    app.add_exception_handler(BodyOverBudgetError, over_budget)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
    # FastAPI's own handler stays for HTTPException; referenced here so the contract is visible
    # in one place. RequestValidationError keeps FastAPI's 422 list body (as Airflow answers).
    _ = StarletteHTTPException
