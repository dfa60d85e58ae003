"""Heartbeats coalesced: the heartbeats that arrive together go to the database as one call.

Heartbeats are most of a fleet's requests, and each is a tiny update: alone, each costs a pool
checkout, a round trip and a commit. Here the heartbeats that reach the handler in the same turn
of the event loop, or while `MAX_IN_FLIGHT` batches are already at the database, wait for the next
batch; a batch is one call of `tistate.ti_heartbeat_batch`, ti_heartbeat's fast path for all of
them, which never waits for a row. A heartbeat it did not record (refused, or its row held by a
finishing task or the scheduler), and every heartbeat of a batch that failed, is then sent alone
with `ti_heartbeat`, which waits for the row and explains a refusal: each heartbeat gets the
answer ti_heartbeat would have given it, and the SQL decides every one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from uuid import UUID

from ..client import AsyncClient, LockTimeout
from .metrics import Metrics

__all__ = ["HeartbeatBatcher"]

log = logging.getLogger(__name__)

#: batches at the database at once: the rest of the pool stays for state calls and for the
#: heartbeats sent alone
MAX_IN_FLIGHT = 2


@dataclass(slots=True)
class _Waiting:
    ti_id: UUID
    hostname: str
    pid: int
    recorded: asyncio.Future[bool]


class HeartbeatBatcher:
    """Sends heartbeats in batches of at most `max_batch` (1: each alone, no batching)."""

    def __init__(self, client: AsyncClient, max_batch: int, metrics: Metrics | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.client = client
        self.max_batch = max_batch
        self.metrics = metrics
        self._waiting: list[_Waiting] = []
        self._in_flight = 0
        self._dispatch_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def heartbeat(
        self, ti_id: UUID, hostname: str, pid: int, *, lock_timeout: LockTimeout = None
    ) -> None:
        """Record the heartbeat, or raise what ti_heartbeat raises for it."""
        if self.max_batch > 1:
            loop = asyncio.get_running_loop()
            recorded: asyncio.Future[bool] = loop.create_future()
            self._waiting.append(_Waiting(ti_id, hostname, pid, recorded))
            if not self._dispatch_scheduled:
                # After this turn of the loop: the heartbeats parsed in it join the batch.
                self._dispatch_scheduled = True
                loop.call_soon(self._dispatch)
            if await recorded:
                return
        await self.client.ti_heartbeat(ti_id, hostname, pid, lock_timeout=lock_timeout)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._waiting and self._in_flight < MAX_IN_FLIGHT:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Waiting]) -> None:
        recorded = [False] * len(batch)
        failed = True
        try:
            recorded = await self.client.ti_heartbeat_batch(
                [(w.ti_id, w.hostname, w.pid) for w in batch]
            )
            failed = False
        except Exception as exc:  # each is then sent alone and gets its own answer
            log.warning("a heartbeat batch of %d failed (%s); sending each alone", len(batch), exc)
        finally:
            if self.metrics is not None:
                self.metrics.observe_heartbeat_batch(len(batch), sum(recorded), failed)
            self._in_flight -= 1
            for waiting, ok in zip(batch, recorded, strict=True):
                if not waiting.recorded.done():  # its request may be gone (client disconnect)
                    waiting.recorded.set_result(ok)
            self._dispatch()

    async def aclose(self) -> None:
        """Wait for the batches at the database (at shutdown, before the pool closes)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
