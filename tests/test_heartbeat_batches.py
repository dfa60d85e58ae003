"""Heartbeats in batches: `ti_heartbeat_batch` through the library, and the service's
HeartbeatBatcher over a real AsyncClient. Each heartbeat gets the answer ti_heartbeat would give
it alone; the heartbeats that arrive together share one call; a held row's heartbeat waits alone;
a batch that fails (here: a schema without the function) falls back to single calls. That the SQL
batch never waits for a held row is tests/test_concurrency_heartbeats_and_retries.py's, on both
flavors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tistate import AsyncClient, Client, errors, migrate
from tistate.http.heartbeats import MAX_IN_FLIGHT, HeartbeatBatcher
from tistate.http.metrics import Metrics

NOW = datetime.now(UTC).replace(microsecond=0)
DAG = {"dag_id": "hb", "tasks": [{"task_id": f"t{i}"} for i in range(40)]}


def _running(dsn: str, count: int, run_id: str = "r1") -> list[UUID]:
    """`count` task instances running on host h, pids 1..count."""
    with Client(dsn, check_schema=False) as client:
        client.define_dag(DAG)
        tis = sorted(client.create_dag_run("hb", run_id, now=NOW), key=lambda t: t.task_id)
        ids = [t.ti_id for t in tis[:count]]
        for pid, ti_id in enumerate(ids, start=1):
            payload = {"state": "running", "hostname": "h", "unixname": "u", "pid": pid}
            client.ti_run(ti_id, {**payload, "start_date": NOW.isoformat()})
    return ids


def _heartbeat_at(conn: psycopg.Connection[Any], ti_id: UUID) -> datetime | None:
    row = conn.execute("SELECT last_heartbeat_at FROM task_instance WHERE id = %s", (ti_id,))
    value = row.fetchone()
    assert value is not None
    result: datetime | None = value[0]
    return result


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_library_batch_records_running_items_only(db_dsn: str, conn: Any) -> None:
    a, b, c = _running(db_dsn, 3)
    with Client(db_dsn) as client:
        client.ti_update_state(c, {"state": "success", "end_date": NOW.isoformat()})
        before = {ti: _heartbeat_at(conn, ti) for ti in (a, b, c)}
        recorded = client.ti_heartbeat_batch(
            [
                (a, "h", 1),
                (b, "h", 99),
                (c, "h", 3),
                (uuid4(), "h", 1),
                ("nope", "h", 1),
                (a, "h\x00", 1),
                (b, "h", 2**40),
                (b, "h", 2),
            ]
        )
    assert recorded == [True, False, False, False, False, False, False, True]
    after = {ti: _heartbeat_at(conn, ti) for ti in (a, b, c)}
    assert after[a] != before[a] and after[b] != before[b]
    assert after[c] == before[c]
    with Client(db_dsn) as client:
        assert client.ti_heartbeat_batch([]) == []


def test_heartbeats_arriving_together_share_batches(db_dsn: str, conn: Any) -> None:
    ids = _running(db_dsn, 30)
    started = {ti: _heartbeat_at(conn, ti) for ti in ids}
    metrics = Metrics(lambda: None)

    async def scenario() -> None:
        async with AsyncClient(db_dsn) as client:
            batcher = HeartbeatBatcher(client, max_batch=8, metrics=metrics)
            # gather starts every heartbeat in one turn of the loop: they all wait for the first
            # dispatch, which sends MAX_IN_FLIGHT batches of 8; the rest go as those return.
            await asyncio.gather(
                *(batcher.heartbeat(ti, "h", pid) for pid, ti in enumerate(ids, start=1))
            )
            await batcher.aclose()

    asyncio.run(scenario())
    assert MAX_IN_FLIGHT == 2
    assert _sample(metrics, "tistate_heartbeat_batches_total", outcome="sent") == 4  # 8+8+8+6
    assert _sample(metrics, "tistate_heartbeats_batched_total", recorded="true") == 30
    assert _sample(metrics, "tistate_heartbeats_batched_total", recorded="false") == 0
    assert all(_heartbeat_at(conn, ti) != started[ti] for ti in ids)


def test_each_heartbeat_of_a_batch_gets_its_own_answer(db_dsn: str) -> None:
    ok, elsewhere, finished, retried = _running(db_dsn, 4)
    with Client(db_dsn) as client:
        client.ti_update_state(finished, {"state": "success", "end_date": NOW.isoformat()})
        client.ti_update_state(retried, {"state": "up_for_retry", "end_date": NOW.isoformat()})
    metrics = Metrics(lambda: None)

    async def scenario() -> list[Any]:
        async with AsyncClient(db_dsn) as client:
            batcher = HeartbeatBatcher(client, max_batch=100, metrics=metrics)
            calls = [(ok, 1), (elsewhere, 99), (finished, 3), (retried, 4), (uuid4(), 1)]
            return await asyncio.gather(
                *(batcher.heartbeat(ti, "h", pid) for ti, pid in calls), return_exceptions=True
            )

    answers = asyncio.run(scenario())
    assert answers[0] is None
    assert isinstance(answers[1], errors.InvalidStateError)
    assert answers[1].detail["reason"] == "running_elsewhere"
    assert isinstance(answers[2], errors.InvalidStateError)
    assert answers[2].detail["reason"] == "not_running"
    assert isinstance(answers[3], errors.GoneError)
    assert isinstance(answers[4], errors.NotFoundError)
    assert _sample(metrics, "tistate_heartbeat_batches_total", outcome="sent") == 1
    assert _sample(metrics, "tistate_heartbeats_batched_total", recorded="false") == 4


def test_a_heartbeat_whose_row_is_held_waits_alone(db_dsn: str, conn: Any) -> None:
    held, free = _running(db_dsn, 2)
    started = _heartbeat_at(conn, free)

    async def scenario() -> list[Any]:
        async with AsyncClient(db_dsn) as client:
            batcher = HeartbeatBatcher(client, max_batch=100)
            return await asyncio.gather(
                batcher.heartbeat(held, "h", 1, lock_timeout=0.2),
                batcher.heartbeat(free, "h", 2, lock_timeout=0.2),
                return_exceptions=True,
            )

    with psycopg.connect(db_dsn) as holder:
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (held,))
        answers = asyncio.run(scenario())
        holder.rollback()
    assert isinstance(answers[0], errors.LockTimeoutError)  # as ti_heartbeat alone answers
    assert answers[1] is None
    assert _heartbeat_at(conn, free) != started


def test_a_failed_batch_falls_back_to_single_calls(empty_db_dsn: str) -> None:
    # A schema one migration behind (during an upgrade, the service first): no batch function.
    migrate.migrate(empty_db_dsn, target=12)
    ok, elsewhere = _running(empty_db_dsn, 2)
    metrics = Metrics(lambda: None)

    async def scenario() -> list[Any]:
        async with AsyncClient(empty_db_dsn, check_schema=False) as client:
            batcher = HeartbeatBatcher(client, max_batch=100, metrics=metrics)
            return await asyncio.gather(
                batcher.heartbeat(ok, "h", 1),
                batcher.heartbeat(elsewhere, "h", 1),
                return_exceptions=True,
            )

    answers = asyncio.run(scenario())
    assert answers[0] is None
    assert isinstance(answers[1], errors.InvalidStateError)
    assert _sample(metrics, "tistate_heartbeat_batches_total", outcome="failed") == 1


def test_max_batch_one_sends_each_alone(db_dsn: str) -> None:
    (ti,) = _running(db_dsn, 1)
    metrics = Metrics(lambda: None)

    async def scenario() -> None:
        async with AsyncClient(db_dsn) as client:
            batcher = HeartbeatBatcher(client, max_batch=1, metrics=metrics)
            await batcher.heartbeat(ti, "h", 1)
            with pytest.raises(errors.InvalidStateError):
                await batcher.heartbeat(ti, "h", 2)

    asyncio.run(scenario())
    assert _sample(metrics, "tistate_heartbeat_batches_total", outcome="sent") == 0
    with pytest.raises(ValueError, match="at least 1"):
        HeartbeatBatcher(AsyncClient("postgresql://unused"), max_batch=0)


def test_heartbeat_batch_times_are_the_database_clock(db_dsn: str, conn: Any) -> None:
    (ti,) = _running(db_dsn, 1)
    with Client(db_dsn) as client:
        (start,) = conn.execute("SELECT clock_timestamp()").fetchone()
        assert client.ti_heartbeat_batch([(ti, "h", 1)]) == [True]
    (end,) = conn.execute("SELECT clock_timestamp()").fetchone()
    beat = _heartbeat_at(conn, ti)
    assert beat is not None and start <= beat <= end
