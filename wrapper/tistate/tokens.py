"""Per-task-instance JWTs: minted by `tistate token mint`, verified (and re-issued near expiry) by
the HTTP service, compatible with the tokens Apache Airflow 3.3 issues.

A token's subject (`sub`) is the task instance id; the HTTP layer accepts it only for requests on
that id. Tokens are signed either with a shared secret (HS256, HS384 or HS512; Airflow's
`[api_auth] jwt_secret`, HS512 by default) or with a private key whose public half tistate is
given (RS256, EdDSA, ...: a PEM file, a private key PEM file as Airflow's `jwt_private_key_path`,
or a JWKS file or URL as Airflow's `trusted_jwks_url`). `exp` is always required; the audience may
be a list (any one accepted, as Airflow's `[execution_api] jwt_audience`); the issuer is checked
when configured. `Signer.reissue` makes the fresh token the HTTP service returns in
`Refreshed-API-Token`, as Airflow's `JWTGenerator.generate(claims)` does.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .errors import TistateError

__all__ = [
    "ALGORITHMS",
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_AUDIENCE",
    "DEFAULT_SCOPE",
    "HMAC_ALGORITHMS",
    "SECRET_ENV",
    "KeySet",
    "MissingSecretError",
    "Signer",
    "TokenError",
    "Verifier",
    "check_scope",
    "load_private_key",
    "mint",
    "needs_refresh",
    "secret_from_env",
    "verify",
]

log = logging.getLogger("tistate.tokens")

SECRET_ENV = "TISTATE_JWT_SECRET"
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
#: what `mint` signs with (a shared secret)
ALGORITHMS = HMAC_ALGORITHMS
DEFAULT_AUDIENCE = "urn:airflow.apache.org:task"
#: the scope of Airflow's execution tokens; a token without `scope` is one (Airflow's rule)
DEFAULT_SCOPE = "execution"
#: seconds between two fetches of a JWKS URL when a token names a key it does not hold
JWKS_REFETCH_INTERVAL = 10.0


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


def audiences(audience: str | Sequence[str] | None) -> list[str]:
    """A configured audience as a list: Airflow's `jwt_audience` is comma-separated."""
    if audience is None:
        return []
    items = audience.split(",") if isinstance(audience, str) else list(audience)
    return [item.strip() for item in items if item.strip()]


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
        "jti": uuid.uuid4().hex,
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


# --- keys -------------------------------------------------------------------------------------


def _algorithm_of(key: Any) -> str:
    """The algorithm Airflow guesses for a key (RSA: RS256, Ed25519: EdDSA; EC: ES256)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ES256"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _jwk_of(public_key: Any) -> dict[str, Any]:
    algorithm = _algorithm_of(public_key)
    converter: Any
    if algorithm == "RS256":
        converter = RSAAlgorithm(RSAAlgorithm.SHA256)
    elif algorithm == "EdDSA":
        converter = OKPAlgorithm()
    else:
        converter = ECAlgorithm(ECAlgorithm.SHA256)
    jwk: dict[str, Any] = converter.to_jwk(public_key, as_dict=True)
    return jwk


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint Airflow uses as a key's `kid` (all members, sorted, as Airflow)."""
    import base64
    import hashlib

    text = json.dumps(dict(jwk), separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def load_private_key(path: str | Path) -> Any:
    """A PEM private key (Airflow's `[api_auth] jwt_private_key_path`), unencrypted."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(Path(path).read_bytes(), password=None)


def _load_public_key(path: str | Path) -> Any:
    """A PEM public key, or the public half of a PEM private key."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    return load_pem_public_key(data)


@dataclass
class KeySet:
    """Public keys tokens may be signed with, by `kid`.

    From PEM files (`from_pem`: each key's kid is its thumbprint, as Airflow derives it; a set of
    one key accepts a token whatever its kid) or a JWKS (`from_jwks`: a file path or an http(s)
    URL, as Airflow's `trusted_jwks_url`; a URL is fetched again, at most every 10 s, when a token
    names a kid the set lacks).
    """

    keys: dict[str, tuple[Any, str | None]] = field(default_factory=dict)  # kid -> (key, alg)
    url: str | None = None
    fetched_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_pem(cls, *paths: str | Path) -> KeySet:
        keys: dict[str, tuple[Any, str | None]] = {}
        for path in paths:
            public = _load_public_key(path)
            keys[thumbprint(_jwk_of(public))] = (public, _algorithm_of(public))
        return cls(keys)

    @classmethod
    def from_jwks(cls, location: str) -> KeySet:
        keyset = cls(url=location)
        keyset._load()
        return keyset

    def _load(self) -> None:
        assert self.url is not None
        if self.url.startswith(("http://", "https://")):
            import httpx

            response = httpx.get(self.url, timeout=5.0)
            response.raise_for_status()
            data = response.json()
        else:
            data = json.loads(Path(self.url.removeprefix("file://")).read_text())
        keys: dict[str, tuple[Any, str | None]] = {}
        for entry in jwt.PyJWKSet.from_dict(data).keys:
            kid = entry.key_id or thumbprint(_jwk_of(entry.key))
            keys[kid] = (entry.key, entry.algorithm_name if "alg" in entry._jwk_data else None)
        self.keys = keys
        self.fetched_at = time.monotonic()

    def key_for(self, kid: str | None) -> tuple[Any, str | None]:
        """The key (and its JWK `alg`, if any) a token with this `kid` is verified with."""
        if self.url is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        if kid is not None and kid in self.keys:
            return self.keys[kid]
        if self.url is not None and self.url.startswith(("http://", "https://")):
            with self._lock:
                if time.monotonic() - self.fetched_at >= JWKS_REFETCH_INTERVAL:
                    try:
                        self._load()
                    except Exception:  # keep the keys we have; the token is refused below
                        log.warning("could not fetch the JWKS", extra={"url": self.url})
                        self.fetched_at = time.monotonic()
            if kid is not None and kid in self.keys:
                return self.keys[kid]
        raise TokenError("invalid_token", "the token's key id (kid) matches no trusted key")

    def algorithms(self) -> tuple[str, ...]:
        """The algorithms the keys' types call for (Airflow's GUESS)."""
        found: list[str] = []
        for key, alg in self.keys.values():
            name = alg or _algorithm_of(key)
            if name not in found:
                found.append(name)
        return tuple(found)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """Verifies tokens with a shared secret or a KeySet, as Airflow's JWTValidator does."""

    secret: str | None = field(default=None, repr=False)
    keys: KeySet | None = None
    #: accepted algorithms; None: HS256, HS384 and HS512 with a secret, the keys' own with keys
    algorithms: Sequence[str] | None = None
    audience: str | Sequence[str] | None = DEFAULT_AUDIENCE
    issuer: str | None = None
    leeway: float = 0.0

    def verify(
        self, token: str, subject: UUID | str | None = None, *, now: float | None = None
    ) -> dict[str, Any]:
        """The claims of a valid token (see `verify`); `now` (Unix seconds) is the moment its
        time claims are checked at, the clock's when None."""
        if self.keys is not None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.InvalidTokenError:
                raise TokenError("invalid_token", "the token is malformed or invalid") from None
            key, jwk_alg = self.keys.key_for(kid if isinstance(kid, str) else None)
            algorithms = list(self.algorithms or [jwk_alg or _algorithm_of(key)])
        else:
            key = secret_from_env(self.secret)
            algorithms = list(self.algorithms or HMAC_ALGORITHMS)
        accepted = audiences(self.audience)
        require = ["exp", "sub"]
        if accepted:
            require.append("aud")
        if self.issuer:
            require.append("iss")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=accepted or None,
                issuer=self.issuer or None,
                # the time claims are checked below, at `now`: PyJWT reads the clock itself
                options={
                    "require": require,
                    "verify_aud": bool(accepted),
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            _check_times(claims, time.time() if now is None else now, self.leeway)
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


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """PyJWT's checks of `iat`, `nbf`, `exp` (its errors; each claim taken as an int), at `now`."""
    for name in ("iat", "nbf", "exp"):
        if name not in claims:
            continue
        try:
            moment = int(claims[name])
        except (ValueError, TypeError, OverflowError):
            raise jwt.DecodeError(f"the {name} claim must be an integer") from None
        if name == "exp" and moment <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if name != "exp" and moment > now + leeway:
            raise jwt.ImmatureSignatureError(f"The token is not yet valid ({name})")


def verify(
    token: str,
    *,
    secret: str | None = None,
    keys: KeySet | None = None,
    algorithms: Sequence[str] | None = None,
    audience: str | Sequence[str] | None = DEFAULT_AUDIENCE,
    issuer: str | None = None,
    leeway: float = 0.0,
    subject: UUID | str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a valid token; TokenError (with `reason`) otherwise.

    With `subject`, the token must be for that task instance (else TokenError reason
    "subject_mismatch"; the HTTP layer answers 403 for it, as Airflow does). `audience` may be a
    list or a comma-separated string: any one of them is accepted. `now` (Unix seconds) is the
    moment `exp`, `nbf` and `iat` are checked at (with the leeway): the clock's when None.
    """
    verifier = Verifier(
        secret=secret,
        keys=keys,
        algorithms=algorithms,
        audience=audience,
        issuer=issuer,
        leeway=leeway,
    )
    return verifier.verify(token, subject, now=now)


def check_scope(claims: Mapping[str, Any], allowed: Collection[str] = (DEFAULT_SCOPE,)) -> None:
    """TokenError `invalid_scope` unless the token's scope (missing: `execution`) is allowed:
    Airflow accepts a `workload` token on `/run` only."""
    scope = claims.get("scope", DEFAULT_SCOPE)
    if scope not in allowed:
        raise TokenError(
            "invalid_scope", f"a {scope!r} token is not accepted here (an execution token is)"
        )


# --- re-issue ---------------------------------------------------------------------------------


def needs_refresh(claims: Mapping[str, Any], now: float | None = None) -> bool:
    """Airflow's JWTReissueMiddleware rule: at most max(20% of the lifetime, 30 s) left."""
    try:
        exp = int(claims["exp"])
        iat = int(claims["iat"]) if "iat" in claims else exp
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    left = exp - int(time.time() if now is None else now)
    return left <= max(int((exp - iat) * 0.20), 30)


@dataclass(frozen=True)
class Signer:
    """Signs re-issued tokens as Airflow's JWTGenerator: the same key, algorithm and kid."""

    key: Any = field(repr=False)  # the shared secret (str) or a private key object
    algorithm: str
    kid: str
    valid_for: float = 600.0
    audience: str | None = DEFAULT_AUDIENCE
    issuer: str | None = None

    @classmethod
    def for_secret(
        cls,
        secret: str,
        *,
        algorithm: str = "HS512",
        kid: str | None = None,
        valid_for: float = 600.0,
        audience: str | Sequence[str] | None = DEFAULT_AUDIENCE,
        issuer: str | None = None,
    ) -> Signer:
        first = next(iter(audiences(audience)), None)
        return cls(secret, algorithm, kid or "not-used", valid_for, first, issuer)

    @classmethod
    def for_private_key(
        cls,
        path: str | Path,
        *,
        algorithm: str | None = None,
        kid: str | None = None,
        valid_for: float = 600.0,
        audience: str | Sequence[str] | None = DEFAULT_AUDIENCE,
        issuer: str | None = None,
    ) -> Signer:
        key = load_private_key(path)
        name = algorithm or _algorithm_of(key)
        kid = kid or thumbprint(_jwk_of(key.public_key()))
        first = next(iter(audiences(audience)), None)
        return cls(key, name, kid, valid_for, first, issuer)

    def reissue(self, claims: Mapping[str, Any], now: float | None = None) -> str:
        """The same claims with a new jti, iat, nbf and exp (and the configured aud and iss)."""
        issued = int(time.time() if now is None else now)
        fresh: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
            "nbf": issued,
            "exp": int(issued + self.valid_for),
            "iat": issued,
        }
        fresh = {name: value for name, value in fresh.items() if value or name in {"nbf", "iat"}}
        merged = {**claims, **fresh}
        headers = {"alg": self.algorithm, "kid": self.kid}
        return jwt.encode(merged, self.key, algorithm=self.algorithm, headers=headers)
