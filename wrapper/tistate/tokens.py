"""Per-task-instance JWTs: minted by `tistate token mint`, verified by the HTTP service.

A token's subject (`sub`) is the task instance id; the HTTP layer accepts it only for requests on
that id. Signed with a shared secret (TISTATE_JWT_SECRET) using HS256, HS384 or HS512; `exp` is
always set. The default audience is Airflow's `[execution_api] jwt_audience`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from .errors import TistateError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_AUDIENCE",
    "SECRET_ENV",
    "MissingSecretError",
    "TokenError",
    "mint",
    "secret_from_env",
    "verify",
]

SECRET_ENV = "TISTATE_JWT_SECRET"
ALGORITHMS = ("HS256", "HS384", "HS512")
DEFAULT_AUDIENCE = "urn:airflow.apache.org:task"
DEFAULT_SCOPE = "execution"


class TokenError(TistateError):
    """The token is missing, malformed, expired or not valid here."""

    http_status = 401
    exit_code = 9
    default_reason = "invalid_token"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, detail={"reason": reason, "message": message})
        self.reason = reason


class MissingSecretError(TistateError):
    """No signing secret is configured."""

    http_status = 500
    exit_code = 78  # sysexits EX_CONFIG
    default_reason = "configuration"
    default_hint = f"set {SECRET_ENV} (the HTTP service must use the same secret)"


def secret_from_env(secret: str | None = None) -> str:
    value = secret or os.environ.get(SECRET_ENV)
    if not value:
        raise MissingSecretError(f"{SECRET_ENV} is not set")
    return value


def mint(
    ti_id: UUID | str,
    *,
    secret: str | None = None,
    ttl: timedelta = timedelta(minutes=10),
    audience: str | None = DEFAULT_AUDIENCE,
    issuer: str | None = None,
    algorithm: str = "HS256",
    scope: str = DEFAULT_SCOPE,
    now: datetime | None = None,
) -> str:
    """A signed token for one task instance, valid for `ttl`."""
    if algorithm not in ALGORITHMS:
        raise TokenError("invalid_algorithm", f"algorithm must be one of {', '.join(ALGORITHMS)}")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(UUID(str(ti_id))),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "scope": scope,
    }
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret_from_env(secret), algorithm=algorithm)


def verify(
    token: str,
    *,
    secret: str | None = None,
    algorithms: Sequence[str] = ALGORITHMS,
    audience: str | None = DEFAULT_AUDIENCE,
    issuer: str | None = None,
    leeway: float = 0.0,
    subject: UUID | str | None = None,
) -> dict[str, Any]:
    """The claims of a valid token; TokenError (with `reason`) otherwise.

    With `subject`, the token must be for that task instance (else TokenError reason
    "subject_mismatch"; the HTTP layer answers 403 for it, as Airflow does).
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret_from_env(secret),
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "sub"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "the token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_audience", "the token's audience is not accepted") from None
    except jwt.InvalidIssuerError:
        raise TokenError("invalid_issuer", "the token's issuer is not accepted") from None
    except jwt.InvalidSignatureError:
        raise TokenError("invalid_signature", "the token's signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("invalid_algorithm", "the token's algorithm is not accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("invalid_token", f"the token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise TokenError("invalid_token", "the token is malformed or invalid") from None
    if subject is not None and claims.get("sub") != str(subject):
        raise TokenError("subject_mismatch", "the token is not for this task instance")
    return claims
