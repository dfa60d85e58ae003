"""Saturation: more concurrent clients than pool slots while one task-instance row is held by
another transaction. Every request ends with 204, 409 or 503 (its reason from the pool or the
SQLSTATE), none hangs, and the server's thread count does not grow.

Deterministic steps, no sleeps: the row is locked on a side connection; `pool_size` requests on it
are sent and the test waits (pg_stat_activity) until that many server sessions wait on the lock, so
the pool is known to be fully occupied for `lock_timeout` when the burst starts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from http_support import (
    NOW,
    Dags,
    Server,
    auth,
    running_server,
    success_payload,
    wait_for_lock_waiters,
)

POOL_SIZE = 2
MAX_WAITING = 2
MAX_IN_FLIGHT = 8
POOL_TIMEOUT = 0.5
LOCK_TIMEOUT = 3.0
#: lock_timeout bounds each lock wait; a request queued behind another waiter on the same row
#: waits for the tuple lock, then for the holder's transaction, so statement_timeout is the bound
#: of the whole call
STATEMENT_TIMEOUT = 4.0
BURST = 60
#: "none hangs": far above every configured bound (so a loaded 2-core machine does not fail it),
#: far below the client's 30 s timeout (so a request that hangs does)
HANG = 15.0


def _url(ti: UUID, action: str) -> str:
    return f"/execution/task-instances/{ti}/{action}"


async def _heartbeat(http: httpx.AsyncClient, ti: UUID) -> tuple[int, float, str | None]:
    started = time.monotonic()
    body = {"hostname": "worker-1", "pid": 100}
    response = await http.put(_url(ti, "heartbeat"), json=body, headers=auth(ti))
    return response.status_code, time.monotonic() - started, _reason(response)


async def _fail(http: httpx.AsyncClient, ti: UUID) -> tuple[int, float, str | None]:
    """`failed` on a task instance that already succeeded: 409 (or 503 when saturated)."""
    started = time.monotonic()
    body = {"state": "failed", "end_date": NOW.isoformat()}
    response = await http.patch(_url(ti, "state"), json=body, headers=auth(ti))
    return response.status_code, time.monotonic() - started, _reason(response)


def _reason(response: httpx.Response) -> str | None:
    if response.status_code >= 400:
        detail: Any = response.json()["detail"]
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
        return str(detail["reason"]) if isinstance(detail, dict) else "validation"
    return None


def _mix(http: httpx.AsyncClient, held: UUID, free: list[UUID], done: list[UUID]) -> list[Any]:
    calls: list[Any] = []
    for i in range(BURST):
        kind = i % 3
        if kind == 0:
            calls.append(_heartbeat(http, held))
        elif kind == 1:
            calls.append(_heartbeat(http, free[i % len(free)]))
        else:
            calls.append(_fail(http, done[i % len(done)]))
    return calls


def test_saturation_is_bounded(db_dsn: str, tmp_path: Path) -> None:
    dags = Dags(db_dsn)
    held = dags.running()
    free = [dags.running() for _ in range(4)]
    done = [dags.running() for _ in range(4)]
    with running_server(
        db_dsn,
        tmp_path / "server.log",
        pool_size=POOL_SIZE,
        pool_max_waiting=MAX_WAITING,
        pool_timeout=POOL_TIMEOUT,
        max_in_flight=MAX_IN_FLIGHT,
        lock_timeout=LOCK_TIMEOUT,
        statement_timeout=STATEMENT_TIMEOUT,
        log_level="warning",
    ) as server:
        with server.client() as http:
            for ti in done:
                assert (
                    http.patch(
                        _url(ti, "state"), json=success_payload(), headers=auth(ti)
                    ).status_code
                    == 204
                )
        figures = asyncio.run(_scenario(server, db_dsn, held, free, done))
    print(f"\nsaturation figures: {figures}")


async def _scenario(
    server: Server, dsn: str, held: UUID, free: list[UUID], done: list[UUID]
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0, limits=limits) as http:
        # Warm-up: every code path once, so lazy imports and pool connections are in place.
        warm = []
        for ti_free, ti_done in zip(free, done, strict=True):
            warm += await asyncio.gather(_heartbeat(http, ti_free), _fail(http, ti_done))
        assert {status for status, _, _ in warm} == {204, 409}
        threads_before = server.threads()
        rss_before = server.rss_kib()

        side = await psycopg.AsyncConnection.connect(dsn)
        try:
            await side.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (held,))
            # Occupy every pool connection with a request waiting on the held row.
            blockers = [asyncio.create_task(_heartbeat(http, held)) for _ in range(POOL_SIZE)]
            await asyncio.to_thread(wait_for_lock_waiters, dsn, POOL_SIZE)
            # What PostgreSQL reports: every pool session is blocked, the first by the side
            # transaction (the others queue behind it for the tuple lock).
            cursor = await side.execute(
                "SELECT count(*) FILTER (WHERE cardinality(pg_blocking_pids(pid)) > 0),"
                " count(*) FILTER (WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid)))"
                " FROM pg_stat_activity WHERE application_name = 'tistate-http'"
                " AND datname = current_database()"
            )
            blocked_sessions, by_side = await cursor.fetchone() or (0, 0)
            assert blocked_sessions == POOL_SIZE and by_side >= 1, (blocked_sessions, by_side)

            # The burst: the pool is full for LOCK_TIMEOUT, so everything answers 503 at once
            # (admission, pool queue full) or after POOL_TIMEOUT (queued for a connection).
            started = time.monotonic()
            burst = await asyncio.gather(*_mix(http, held, free, done))
            burst_elapsed = time.monotonic() - started
            threads_during = server.threads()

            blocked = await asyncio.gather(*blockers)
        finally:
            await side.rollback()
            await side.close()

        # Released: the same mix again, still more clients than connections.
        started = time.monotonic()
        after = await asyncio.gather(*_mix(http, held, free, done))
        after_elapsed = time.monotonic() - started

        metrics = (await http.get("/metrics")).text
    threads_after = server.threads()
    rss_after = server.rss_kib()

    burst_statuses = Counter(status for status, _, _ in burst)
    burst_reasons = Counter(reason for _, _, reason in burst)
    assert set(burst_statuses) == {503}, burst_statuses
    assert burst_reasons["overloaded"] >= 1, burst_reasons
    assert burst_reasons["pool_exhausted"] >= 1, burst_reasons
    assert max(seconds for _, seconds, _ in burst) < HANG

    # The requests that held the pool gave up on the lock: a retryable 503, never a 500.
    assert all(status == 503 for status, _, _ in blocked), blocked
    assert {reason for _, _, reason in blocked} <= {"lock_timeout", "statement_timeout"}, blocked
    assert all(seconds < HANG for _, seconds, _ in blocked), blocked

    after_statuses = Counter(status for status, _, _ in after)
    assert set(after_statuses) <= {204, 409, 503}, after_statuses
    assert after_statuses[204] >= 1 and after_statuses[409] >= 1
    assert max(seconds for _, seconds, _ in after) < HANG

    # Flat: no thread per request or per waiting client.
    assert threads_during == threads_before
    assert threads_after == threads_before
    assert 'tistate_http_rejected_total{reason="overloaded"}' in metrics
    assert 'tistate_retryable_errors_total{reason="pool_exhausted"}' in metrics
    return {
        "threads": threads_before,
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "burst_seconds": round(burst_elapsed, 3),
        "burst": dict(burst_reasons),
        "blocked": [(reason, round(seconds, 3)) for _, seconds, reason in blocked],
        "after": dict(after_statuses),
        "after_seconds": round(after_elapsed, 3),
    }
