"""The notification relay: announces committed outbox rows on the tistate_events channel.

With `tistate.notify_events = relay` a transition writes its event ids to tistate.asset_event_outbox
instead of calling pg_notify (which serialises every notifying commit in the cluster on one lock).
The relay calls `tistate.relay_notifications()` in a loop on a connection of its own, so the
notifications of many transitions go out in one transaction. The SQL decides what to send; this
loop only decides when to call it, and survives a lost connection by reconnecting with backoff.
`tistate serve` runs one; `tistate relay` runs one on its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from . import _db
from .errors import SchemaOutdatedError, from_psycopg

__all__ = ["NotificationRelay"]

log = logging.getLogger("tistate.relay")


@dataclass
class NotificationRelay:
    """Drain the outbox every `interval` seconds (at once again while a full batch came back)."""

    conninfo: str
    interval: float = 0.1
    batch: int = 1000
    max_backoff: float = 30.0
    sent: int = 0

    async def relay_once(self, conn: psycopg.AsyncConnection[object]) -> int:
        """One relay transaction: the number of notifications sent (delivered at its commit)."""
        call = _db.relay_notifications(self.batch)
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(call.query, call.params)
            count = call.parse(await cursor.fetchall())
        self.sent += count
        return count

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set, then drain once more and return.

        A problem is logged as a warning once, not at every retry: a database without the
        schema says "run `tistate db migrate`" once, then the relay retries quietly (debug).
        """
        backoff = 0.5
        last_problem: str | None = None
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, application_name="tistate-relay"
                ) as conn:
                    backoff = 0.5
                    await self._loop(conn, stop)
                    return
            except (psycopg.Error, OSError) as exc:
                problem = _describe(exc)
                level = logging.DEBUG if problem == last_problem else logging.WARNING
                last_problem = problem
                log.log(level, "notification relay: %s; retrying in %.1f s", problem, backoff)
                if await _wait(stop, backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff)

    async def _loop(self, conn: psycopg.AsyncConnection[object], stop: asyncio.Event) -> None:
        while True:
            # A full batch suggests more is waiting: go again at once, otherwise pause.
            while await self.relay_once(conn) >= self.batch:
                pass
            if await _wait(stop, self.interval):
                await self.relay_once(conn)  # what committed before the stop still goes out
                return


def _describe(exc: BaseException) -> str:
    """The problem in one line; a missing schema as what to do about it."""
    if isinstance(exc, psycopg.Error):
        translated = from_psycopg(exc)
        if isinstance(translated, SchemaOutdatedError):
            return "schema missing: run `tistate db migrate`"
    return str(exc).strip() or type(exc).__name__


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`; True when `stop` was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
