"""Token verification for the HTTP layer (temporary: replaced by tistate.tokens when it lands)."""

from __future__ import annotations

from typing import Any

import jwt

from .settings import Settings

__all__ = ["TokenError", "verify_token"]


class TokenError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def verify_token(token: str, settings: Settings) -> dict[str, Any]:
    assert settings.jwt_secret is not None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=list(settings.jwt_algorithms),
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
            options={"require": ["exp", "sub"]},
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
    return claims
