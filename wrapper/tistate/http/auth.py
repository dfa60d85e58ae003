"""Bearer-JWT authentication of the execution routes: one token per task instance.

A request is allowed when its `Authorization: Bearer <jwt>` token verifies (signature with
TISTATE_JWT_SECRET using one of the configured HMAC algorithms, `exp`, and the configured audience
and issuer) and its `sub` equals the task-instance id in the path. Any token problem answers 401
with a `reason`; a valid token for another task instance answers 403 (as Airflow does). Tokens and
secrets are never logged or echoed.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from fastapi import Request

from ..tokens import TokenError, verify
from .problems import HTTPProblem
from .settings import Settings

__all__ = ["require_ti_token"]

log = logging.getLogger("tistate.http")
_BEARER = {"WWW-Authenticate": 'Bearer realm="tistate"'}


def _unauthorized(reason: str, message: str) -> HTTPProblem:
    return HTTPProblem(401, reason, message, headers=dict(_BEARER))


def _canonical(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        return value


def authenticate(settings: Settings, authorization: str | None, ti_id: str) -> dict[str, Any]:
    """The verified claims for this task instance, or HTTPProblem (401/403)."""
    if not authorization:
        raise _unauthorized("missing_token", "an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized(
            "invalid_authorization_header", "the Authorization header must be 'Bearer <token>'"
        )
    if settings.jwt_secret is None:  # Settings refuses this unless insecure_no_auth
        raise _unauthorized("no_secret", "the service has no JWT secret configured")
    try:
        claims = verify(
            token,
            secret=settings.jwt_secret,
            algorithms=settings.jwt_algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
        )
    except TokenError as exc:
        raise _unauthorized(exc.reason, exc.message) from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or _canonical(subject) != _canonical(ti_id):
        raise HTTPProblem(
            403,
            "forbidden",
            "the token's subject is not this task instance",
        )
    return claims


async def require_ti_token(request: Request) -> None:
    """Route dependency of every /execution/task-instances/{task_instance_id}/... route."""
    settings: Settings = request.app.state.settings
    if settings.insecure_no_auth:
        return
    ti_id = str(request.path_params.get("task_instance_id", ""))
    request.state.token_claims = authenticate(settings, request.headers.get("authorization"), ti_id)
