"""Token refresh as Airflow's API server does it (JWTReissueMiddleware).

When a request authenticated with an execution token that has at most max(20% of its lifetime,
30 s) left, the response carries a fresh token in `Refreshed-API-Token`: the same claims with a new
jti, iat, nbf and exp (`Settings.jwt_expiration_time` from now), signed as Airflow signs (the shared
secret, or the private key of `jwt_private_key_path`). The Task SDK replaces its token from that
header on any response, so a task that talks only to tistate for hours keeps a valid token. Answers
forwarded to Airflow keep Airflow's own header. With public keys only there is nothing to sign
with: no refresh (docs/airflow.md says how to give tistate the private key).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..tokens import Signer, needs_refresh

__all__ = ["REFRESH_HEADER", "TokenRefreshMiddleware"]

log = logging.getLogger("tistate.http")
REFRESH_HEADER = b"refreshed-api-token"
_PREFIX = "/execution/"


class TokenRefreshMiddleware:
    def __init__(self, app: ASGIApp, *, signer: Signer | None, metrics: Any = None) -> None:
        self.app = app
        self.signer = signer
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        signer = self.signer
        if signer is None or scope["type"] != "http" or not scope["path"].startswith(_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                claims = state.get("token_claims")
                if claims and not state.get("forwarded") and needs_refresh(claims):
                    try:
                        token = signer.reissue(claims)
                    except Exception:  # never fail the answer for it, as Airflow
                        log.warning("could not re-issue a token", exc_info=True)
                    else:
                        headers = [*message.get("headers", []), (REFRESH_HEADER, token.encode())]
                        message = {**message, "headers": headers}
                        if self.metrics is not None:
                            self.metrics.observe_token_refresh()
            await send(message)

        await self.app(scope, receive, send_wrapper)
