"""Bearer-JWT authentication of the execution routes: one token per task instance.

A request is allowed when its `Authorization: Bearer <jwt>` token verifies (signature with
TISTATE_JWT_SECRET using one of the configured HMAC algorithms, or with a public key: a PEM file,
the public half of Airflow's private key, or a JWKS; `exp` with the leeway; one of the configured
audiences; the issuer when configured), its scope is `execution` (a missing scope is one, as in
Airflow) and its `sub` equals the task-instance id in the path. Any token problem answers 401 with
a `reason`; a valid token for another task instance, or a `workload` token (Airflow accepts those
on `/run` only), answers 403 (as Airflow does). Tokens and secrets are never logged or echoed.

Verified tokens are cached (`TokenCache`, bounded LRU keyed by the token string): a task instance
presents one token for its run, heartbeats and state update, and PyJWT's verification costs ~90 µs
of CPU. A cached token is accepted only while the time checks verify would make (`exp`, `nbf`,
`iat` with the leeway) still pass; outside that window the token is verified again, so the cache
never accepts what `verify` would reject, and a rejection is never cached.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple
from uuid import UUID

from fastapi import Request

from ..tokens import DEFAULT_SCOPE, KeySet, Signer, TokenError, Verifier, check_scope, verify
from .problems import HTTPProblem
from .settings import Settings

__all__ = ["TokenCache", "authenticate", "make_signer", "make_verifier", "token_cache"]

log = logging.getLogger("tistate.http")
#: the algorithms accepted with the shared secret unless configured: Airflow's default (HS512)
#: and `tistate token mint`'s (HS256)
SERVED_HMAC = ("HS256", "HS512")
_BEARER = {"WWW-Authenticate": 'Bearer realm="tistate"'}


def _unauthorized(reason: str, message: str) -> HTTPProblem:
    return HTTPProblem(401, reason, message, headers=dict(_BEARER))


def _canonical(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        return value


class _Verified(NamedTuple):
    claims: dict[str, Any]
    #: the canonical `sub` (None when it is not a string)
    subject: str | None
    #: the token passes verify's time checks while valid_from <= now < valid_until
    valid_from: float
    valid_until: float


def make_verifier(settings: Settings) -> Verifier:
    """How these settings verify tokens: Airflow's order (a JWKS, else the private key's public
    half, else a public key file, else the shared secret)."""
    keys: KeySet | None = None
    if settings.jwt_jwks_url:
        keys = KeySet.from_jwks(settings.jwt_jwks_url)
    elif settings.jwt_private_key_path:
        keys = KeySet.from_pem(settings.jwt_private_key_path)
    elif settings.jwt_public_key_path:
        keys = KeySet.from_pem(settings.jwt_public_key_path)
    return Verifier(
        secret=None if keys is not None else settings.jwt_secret,
        keys=keys,
        algorithms=settings.jwt_algorithms or (None if keys is not None else SERVED_HMAC),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway=settings.jwt_leeway,
    )


def make_signer(settings: Settings) -> Signer | None:
    """How refreshed tokens are signed (as Airflow's JWTGenerator): the private key when one is
    configured, else the secret; None when neither (public keys only: no refresh)."""
    common: dict[str, Any] = {
        "kid": settings.jwt_kid,
        "valid_for": settings.jwt_expiration_time,
        "audience": settings.jwt_audience,
        "issuer": settings.jwt_issuer,
    }
    first = settings.jwt_algorithms[0] if settings.jwt_algorithms else None
    if settings.jwt_private_key_path:
        return Signer.for_private_key(settings.jwt_private_key_path, algorithm=first, **common)
    if settings.jwt_secret and not settings.has_keys:
        algorithm = first if first and first.startswith("HS") else "HS512"
        return Signer.for_secret(settings.jwt_secret, algorithm=algorithm, **common)
    return None


class TokenCache:
    """Tokens `verify` accepted, with the time window in which it would still accept them."""

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        self.settings = settings
        self.size = size
        self._entries: dict[str, _Verified] = {}
        self.verifier = make_verifier(settings)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> _Verified:
        """The verified token, from the cache when still valid; TokenError as verify raises it."""
        entry = self._entries.pop(token, None)
        if entry is not None and entry.valid_from <= time.time() < entry.valid_until:
            self._entries[token] = entry  # most recently used last
            return entry
        settings = self.settings
        v = self.verifier
        claims = verify(
            token,
            secret=v.secret,
            keys=v.keys,
            algorithms=v.algorithms,
            audience=v.audience,
            issuer=v.issuer,
            leeway=v.leeway,
        )
        entry = _Verified(claims, _subject(claims), *_window(claims, settings.jwt_leeway))
        entries = self._entries
        if len(entries) >= self.size:
            del entries[next(iter(entries))]  # the least recently used
        entries[token] = entry
        return entry


def _subject(claims: dict[str, Any]) -> str | None:
    subject = claims.get("sub")
    return _canonical(subject) if isinstance(subject, str) else None


def _window(claims: dict[str, Any], leeway: float) -> tuple[float, float]:
    """[from, until) of `now` in which PyJWT's time checks pass (iat, nbf <= now + leeway and
    exp > now - leeway, each claim taken as int() as PyJWT does); empty when one is unusable."""
    try:
        until = int(claims["exp"]) + leeway
        starts = [int(claims[name]) for name in ("iat", "nbf") if name in claims]
    except (KeyError, TypeError, ValueError, OverflowError):
        return (0.0, 0.0)
    return (max(starts, default=float("-inf")) - leeway, until)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise _unauthorized("missing_token", "an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized(
            "invalid_authorization_header", "the Authorization header must be 'Bearer <token>'"
        )
    return token


def authenticate(
    settings: Settings, authorization: str | None, ti_id: str, cache: TokenCache | None = None
) -> dict[str, Any]:
    """The verified claims for this task instance, or HTTPProblem (401/403)."""
    token = _bearer(authorization)
    if settings.jwt_secret is None and not settings.has_keys:  # refused unless insecure_no_auth
        raise _unauthorized("no_secret", "the service has no JWT secret configured")
    if cache is None:
        cache = TokenCache(settings, size=1)
    try:
        entry = cache.verify(token)
    except TokenError as exc:
        raise _unauthorized(exc.reason, exc.message) from None
    if entry.subject is None or (entry.subject != ti_id and entry.subject != _canonical(ti_id)):
        raise HTTPProblem(
            403,
            "forbidden",
            "the token's subject is not this task instance",
        )
    try:
        check_scope(entry.claims, (DEFAULT_SCOPE,))
    except TokenError as exc:
        raise HTTPProblem(403, exc.reason, exc.message) from None
    return entry.claims


def token_cache(request: Request) -> TokenCache:
    """The app's token cache (made on first use)."""
    state = request.app.state
    cache: TokenCache | None = getattr(state, "token_cache", None)
    if cache is None or cache.settings is not state.settings:
        cache = state.token_cache = TokenCache(state.settings)
    return cache
