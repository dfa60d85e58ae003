"""The compatibility gate: no write on a database tistate cannot run safely on.

`tistate.compatibility_problems()` says why tistate cannot run safely on its database (Airflow
mode: an Airflow revision it does not know after an `airflow db migrate`, a changed column, a lost
grant). `tistate serve` refuses to start on such a database, `/ready` answers 503 with the problems,
and while the service runs this watcher re-checks every `Settings.compatibility_interval` seconds:
while problems are known, every execution request is answered 503 (Retry-After, the problems in
`detail`) before any SQL runs, so a proxy that still routes to tistate gets no wrong write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .middleware import send_unavailable

__all__ = ["CompatibilityGate", "watch_compatibility"]

log = logging.getLogger("tistate.http")
_PREFIX = "/execution/"


def record(app: FastAPI, problems: list[str]) -> None:
    """Remember the latest check (the gate reads it); log a change."""
    before: list[str] = getattr(app.state, "compatibility_problems", [])
    app.state.compatibility_problems = problems
    if problems and problems != before:
        log.error(
            "tistate cannot run safely on this database: execution requests answer 503",
            extra={"problems": problems},
        )
    elif before and not problems:
        log.warning("the database is compatible again: serving execution requests")


async def watch_compatibility(app: FastAPI, interval: float, stop: asyncio.Event) -> None:
    """Re-check every `interval` seconds until `stop` (a failed check keeps the last answer)."""
    while not stop.is_set():
        try:
            record(app, await app.state.client.compatibility_problems())
        except Exception as exc:  # the database may be restarting: /ready reports that
            log.warning("compatibility check failed", extra={"error": str(exc)})
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue


class CompatibilityGate:
    """503 for execution requests while the last check found problems."""

    def __init__(self, app: ASGIApp, *, state: Any, retry_after: int) -> None:
        self.app = app
        self.state = state
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problems: list[str] = getattr(self.state, "compatibility_problems", None) or []
        if not problems or scope["type"] != "http" or not scope["path"].startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        await send_unavailable(
            send,
            {
                "reason": "incompatible",
                "message": "tistate cannot run safely on this database: " + "; ".join(problems),
                "problems": problems,
            },
            self.retry_after,
        )
