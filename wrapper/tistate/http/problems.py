"""Error responses: every failure answers Airflow's `{"detail": {"reason", "message", ...}}` body.

The registry (tistate.errors) decides the status of a database error; this module only renders it.
Retryable errors (lock timeout, pool exhausted, serialization failure, lost connection ...) answer
503 with Retry-After, so Airflow's client retries them with backoff, and never 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import RetryableError, TistateError
from .body import BodyTooLargeError

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "HTTPProblem",
    "ValidationErrorBody",
    "install_handlers",
]

log = logging.getLogger("tistate.http")


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


def error_response(exc: TistateError, retry_after: int) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, RetryableError):
        headers["Retry-After"] = str(max(retry_after, exc.retry_after))
    elif exc.http_status == 503:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"detail": exc.http_detail()}, status_code=exc.http_status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that render TistateError, HTTPProblem and unexpected errors."""

    async def tistate_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TistateError)
        app.state.metrics.observe_error(exc)
        level = logging.ERROR if exc.http_status >= 500 and not exc.retryable else logging.INFO
        log.log(
            level,
            "database error",
            extra={
                "request_id": _request_id(request),
                "error": type(exc).__name__,
                "sqlstate": exc.sqlstate,
                "status": exc.http_status,
                "error_message": exc.message,
            },
        )
        return error_response(exc, app.state.settings.retry_after)

    async def problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPProblem)
        return JSONResponse({"detail": exc.detail()}, status_code=exc.status, headers=exc.headers)

    async def too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLargeError)
        body = {"detail": {"reason": "body_too_large", "message": str(exc), "limit": exc.limit}}
        return JSONResponse(body, status_code=413)

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
    app.add_exception_handler(Exception, unexpected)
    # FastAPI's own handlers stay for RequestValidationError (422 list body, as Airflow answers)
    # and HTTPException; referenced here so the contract is visible in one place.
    _ = (RequestValidationError, StarletteHTTPException)
