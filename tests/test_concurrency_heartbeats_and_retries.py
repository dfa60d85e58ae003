"""Deterministic two-connection scripts for heartbeats and retries on one task-instance row.

Each script: connection A opens a transaction and takes the row; connection B calls a function in a
worker thread; the test waits until PostgreSQL reports B blocked on A (pg_blocking_pids, a
condition, not a sleep), then A commits or B's lock_timeout fires; the outcome is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from faultkit import wait_until_blocked

T0 = datetime(2030, 1, 1, tzinfo=UTC)
HEARTBEAT_10S = "SELECT tistate.ti_heartbeat(%s, 'h1', 42, p_lock_timeout => '10 s')"
HEARTBEAT_300MS = (
    "SELECT tistate.ti_heartbeat(%s, 'h1', 42, p_now => %s, p_lock_timeout => '300 ms')"
)
RETRY = {"state": "up_for_retry", "end_date": "2030-01-01T00:05:00Z", "retry_reason": "flaky"}

pytestmark = pytest.mark.both_flavors


@pytest.fixture
def ti_id(conn: psycopg.Connection[Any]) -> UUID:
    """A running task instance on host h1, pid 42."""
    conn.execute(
        "SELECT tistate_test.define_dag(%s)", [Jsonb({"dag_id": "cc", "tasks": [{"task_id": "t"}]})]
    )
    row = conn.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run('cc', 'r1', p_now => %s)", [T0]
    ).fetchone()
    assert row is not None
    payload = {
        "state": "running",
        "hostname": "h1",
        "unixname": "u",
        "pid": 42,
        "start_date": T0.isoformat(),
    }
    conn.execute("SELECT tistate.ti_run(%s, %s, p_now => %s)", [row[0], Jsonb(payload), T0])
    value = row[0]
    assert isinstance(value, UUID)
    return value


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def backend_pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def sqlstate_of(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except psycopg.Error as exc:
        return exc.diag.sqlstate
    return None


def sqlstate_behind(
    observer: psycopg.Connection[Any],
    holder: psycopg.Connection[Any],
    waiter: psycopg.Connection[Any],
    pool: ThreadPoolExecutor,
    query: LiteralString,
    params: list[Any],
) -> str | None:
    """The SQLSTATE `query` answers on `waiter` when `holder`'s open transaction commits while it
    waits: the commit comes once PostgreSQL reports the waiter blocked by the holder."""
    waiter_pid, holder_pid = waiter.info.backend_pid, holder.info.backend_pid  # no query: busy
    job = pool.submit(sqlstate_of, lambda: waiter.execute(query, params))
    wait_until_blocked(observer, waiter_pid, lambda: not job.done(), by=holder_pid)
    holder.commit()
    result: str | None = job.result(timeout=10)
    return result


def test_heartbeat_fails_fast_behind_a_held_row_then_succeeds(
    conn: psycopg.Connection[Any], db_dsn: str, ti_id: UUID, pool: ThreadPoolExecutor
) -> None:
    with psycopg.connect(db_dsn) as holder, psycopg.connect(db_dsn, autocommit=True) as beater:
        # A: a duplicate start of the same worker (idempotent) holds the row lock until COMMIT.
        payload = {
            "state": "running",
            "hostname": "h1",
            "unixname": "u",
            "pid": 42,
            "start_date": T0.isoformat(),
        }
        holder.execute("SELECT tistate.ti_run(%s, %s, p_now => %s)", [ti_id, Jsonb(payload), T0])

        # B: the heartbeat gives up after the lock_timeout it passes (well under the 2 s default).
        started = time.monotonic()
        state = sqlstate_of(
            lambda: beater.execute(
                HEARTBEAT_300MS,
                [ti_id, T0 + timedelta(seconds=30)],
            )
        )
        elapsed = time.monotonic() - started
        assert state == "55P03"
        # Not before the 300 ms it passed (PostgreSQL never gives up early); no upper stopwatch
        # bound on a shared machine: the bound in force is test_lock_timeout_precedence's.
        assert elapsed >= 0.3, elapsed
        # The caller's own lock_timeout is restored after the call.
        row = beater.execute("SHOW lock_timeout").fetchone()
        assert row is not None and row[0] == "0"

        holder.commit()
        beater.execute(HEARTBEAT_300MS, [ti_id, T0 + timedelta(seconds=31)])
    row = conn.execute(
        "SELECT last_heartbeat_at FROM task_instance WHERE id = %s", [ti_id]
    ).fetchone()
    assert row is not None and row[0] == T0 + timedelta(seconds=31)


def test_heartbeat_waiting_on_a_state_update_sees_not_running(
    conn: psycopg.Connection[Any], db_dsn: str, ti_id: UUID, pool: ThreadPoolExecutor
) -> None:
    with psycopg.connect(db_dsn) as updater, psycopg.connect(db_dsn, autocommit=True) as beater:
        success = {"state": "success", "end_date": "2030-01-01T00:01:00Z"}
        updater.execute("SELECT tistate.ti_update_state(%s, %s)", [ti_id, Jsonb(success)])

        assert sqlstate_behind(conn, updater, beater, pool, HEARTBEAT_10S, [ti_id]) == "TS409"

        with pytest.raises(psycopg.Error) as refused:
            beater.execute("SELECT tistate.ti_heartbeat(%s, 'h1', 42)", [ti_id])
        assert refused.value.diag.sqlstate == "TS409"
        assert '"reason": "not_running"' in (refused.value.diag.message_detail or "")


def test_two_retries_race_exactly_one_applies(
    conn: psycopg.Connection[Any], db_dsn: str, ti_id: UUID, pool: ThreadPoolExecutor
) -> None:
    with psycopg.connect(db_dsn) as first, psycopg.connect(db_dsn, autocommit=True) as second:
        row = first.execute(
            "SELECT applied, new_ti_id FROM tistate.ti_update_state(%s, %s)", [ti_id, Jsonb(RETRY)]
        ).fetchone()
        assert row is not None and row[0] is True
        new_id = row[1]

        update = "SELECT tistate.ti_update_state(%s, %s, p_lock_timeout => '10 s')"
        answer = sqlstate_behind(conn, first, second, pool, update, [ti_id, Jsonb(RETRY)])
        # The waiter re-reads the row after the commit: its id has changed, the old one is archived.
        assert answer == "TS410"

    history = conn.execute(
        "SELECT task_instance_id, try_number, state FROM task_instance_history"
    ).fetchall()
    assert history == [(ti_id, 1, "failed")]
    live = conn.execute(
        "SELECT id, state, try_number FROM task_instance WHERE dag_id = 'cc'"
    ).fetchall()
    assert live == [(new_id, "up_for_retry", 1)]
    logged = conn.execute("SELECT count(*) FROM log WHERE event = 'up_for_retry'").fetchone()
    assert logged == (1,)


def test_retry_racing_a_heartbeat_archives_the_heartbeat_id(
    conn: psycopg.Connection[Any], db_dsn: str, ti_id: UUID, pool: ThreadPoolExecutor
) -> None:
    with psycopg.connect(db_dsn) as retrier, psycopg.connect(db_dsn, autocommit=True) as beater:
        retrier.execute("SELECT tistate.ti_update_state(%s, %s)", [ti_id, Jsonb(RETRY)])
        assert sqlstate_behind(conn, retrier, beater, pool, HEARTBEAT_10S, [ti_id]) == "TS410"


def test_heartbeat_batch_skips_a_held_row_without_waiting(
    conn: psycopg.Connection[Any], db_dsn: str, ti_id: UUID
) -> None:
    """ti_heartbeat_batch never waits: a row a finishing task holds is left out (its heartbeat is
    then ti_heartbeat's, which waits), the free rows of the batch are recorded at once."""
    free = conn.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run('cc', 'r2', p_now => %s)", [T0]
    ).fetchone()
    assert free is not None
    payload = {"state": "running", "hostname": "h1", "unixname": "u", "pid": 43}
    conn.execute(
        "SELECT tistate.ti_run(%s, %s, p_now => %s)",
        [free[0], Jsonb({**payload, "start_date": T0.isoformat()}), T0],
    )
    batch = (
        "SELECT tistate.ti_heartbeat_batch(ARRAY[%s, %s]::uuid[], ARRAY['h1', 'h1'], ARRAY[42, 43])"
    )
    with psycopg.connect(db_dsn) as holder, psycopg.connect(db_dsn, autocommit=True) as beater:
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", [ti_id])
        # Any wait would end in this lock_timeout's 55P03 instead of an answer.
        beater.execute("SET lock_timeout = '5s'")
        row = beater.execute(batch, [ti_id, free[0]]).fetchone()
        assert row is not None and row[0] == [2]
        holder.commit()
        row = beater.execute(batch, [ti_id, free[0]]).fetchone()
        assert row is not None and row[0] == [1, 2]
