"""Faults under load: each while concurrent completions with asset and alias events run, each ending
with the invariant check (tests/faultkit): every task answered success has its state and exactly its
events, alias links, queue rows and audit row; every task answered with an error has none of them
and finishes on retry.

Faults are injected at deterministic points: a side transaction (faultkit.Hold) makes the victims'
calls block *inside* ti_update_state, either on the task-instance row lock or on the
asset_dag_run_queue key (after the events and alias links were written), and the test waits
(bounded) until PostgreSQL reports those backends as waiting before it strikes.

Each fault runs through the library (tistate.Client from a thread pool) and over HTTP (a real
`python -m tistate.http` process). The PostgreSQL restart uses a private cluster (never the shared
one); see test_faults_restart.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from faultkit import (
    Hold,
    HttpLoad,
    LibraryLoad,
    World,
    blocked_backends,
    check_invariant,
    holds_uncommitted_event_writes,
    split,
    table_snapshot,
    tally,
    terminate,
)
from http_support import Server, mint, running_server

TASKS = 24
REPORT: dict[str, Any] = {}

pytestmark = pytest.mark.both_flavors


def report(name: str, **figures: Any) -> None:
    """Counts per fault, printed with -s and kept for the summary at the end of the module."""
    REPORT[name] = figures
    print(f"\n[fault] {name}: {figures}")


@pytest.fixture
def world(db_dsn: str) -> World:
    return World(db_dsn, tasks=TASKS, setup_schema="tistate_test").create()


def token(ti_id: UUID) -> str:
    return mint(ti_id)


def retry_all(load: LibraryLoad | HttpLoad, ks: set[int]) -> dict[str, int]:
    """Retry each failed task once, one at a time (the load has dropped)."""
    outcomes = [load.call(k) for k in sorted(ks)]
    assert all(o.success for o in outcomes), tally(outcomes)
    return tally(outcomes)


def finish(
    name: str,
    world: World,
    load: LibraryLoad | HttpLoad,
    ok: set[int],
    bad: set[int],
    **figures: Any,
) -> None:
    """Invariant now, then retry every failed task, check the invariant over all tasks, report."""
    first = check_invariant(world, ok, bad)
    assert first.problems == [], first.problems
    retried = retry_all(load, bad)
    final = check_invariant(world, set(range(world.tasks)), set())
    assert final.problems == [], final.problems
    assert final.events_found == final.events_expected == 2 * world.tasks
    report(
        name,
        **figures,
        retries=retried,
        events_expected=final.events_expected,
        events_found=final.events_found,
        after_fault=first.summary(),
    )


#: "none hangs": far above every bound configured here, far below the futures' 60 s; the bounds
#: themselves are checked from below (PostgreSQL never gives up early), not by a stopwatch
HANG = 15.0


def settle(
    name: str,
    world: World,
    load: LibraryLoad | HttpLoad,
    outcomes: list[Any],
    victims: list[int],
    check: Callable[[Any], None],
    **figures: Any,
) -> None:
    """The victims and only they failed, each as `check` expects; then `finish`."""
    ok, bad = split(outcomes)
    assert bad == set(victims)
    for o in outcomes:
        if o.k in bad:
            check(o)
    finish(
        name,
        world,
        load,
        ok,
        bad,
        requests=len(outcomes) + len(bad),
        answers=tally(outcomes),
        **figures,
    )


# ------------------------------------------------------------------ backend killed mid-function
def test_backend_killed_inside_ti_update_state_library(world: World) -> None:
    row_victims, queue_victims = [3, 11], [7, 19]
    with (
        Hold(world, row_victims, "row") as row_hold,
        Hold(world, queue_victims, "queue") as queue_hold,
        LibraryLoad(world, workers=8, lock_timeout=30) as load,
    ):
        futures = load.submit(range(TASKS))
        pids = blocked_backends(world.dsn, 4, [row_hold, queue_hold])
        # The queue victims are killed with their events inserted and not yet committed (the
        # row victims too, since the SQL registers events before it locks the row).
        queued = blocked_backends(world.dsn, 2, [queue_hold])
        assert holds_uncommitted_event_writes(world.dsn, queued)
        terminate(world.dsn, pids)
        outcomes = [f.result(timeout=60) for f in futures]
        row_hold.release()
        queue_hold.release()

        def lost(o: Any) -> None:
            assert (o.answer, o.retryable) == ("ConnectionLostError", True), o

        settle("backend killed (library)", world, load, outcomes, row_victims + queue_victims, lost)


# ------------------------------------------------------------------ row held by another transaction
def test_row_held_answers_retryable_lock_timeout_library(world: World) -> None:
    victims = [0, 5, 17]
    with Hold(world, victims, "row") as hold, LibraryLoad(world, lock_timeout=0.3) as load:
        outcomes = load.run(range(TASKS))
        hold.release()

        def timed_out(o: Any) -> None:
            assert (o.answer, o.detail, o.retryable) == ("LockTimeoutError", "55P03", True)
            assert 0.25 < o.seconds < HANG, f"lock wait not bounded: {o.seconds:.2f}s"

        settle(
            "row held (library)",
            world,
            load,
            outcomes,
            victims,
            timed_out,
            victim_wait_s=[round(o.seconds, 2) for o in outcomes if o.k in victims],
        )


# ------------------------------------------------------------------ statement_timeout inside
def test_statement_timeout_inside_function_writes_nothing_library(world: World) -> None:
    victims = [2, 9, 21]
    with (
        Hold(world, victims, "queue") as hold,
        LibraryLoad(world, lock_timeout=30, statement_timeout_ms=1500) as load,
    ):
        outcomes = load.run(range(TASKS))
        hold.release()

        def cancelled(o: Any) -> None:
            assert (o.answer, o.detail, o.retryable) == ("StatementTimeoutError", "57014", True)
            assert 1.4 < o.seconds < HANG

        settle("statement_timeout (library)", world, load, outcomes, victims, cancelled)


# ------------------------------------------------------------------ pool exhausted
def test_pool_exhausted_is_bounded_and_recovers_library(world: World) -> None:
    victims = [0, 1]
    with (
        Hold(world, victims, "row") as hold,
        LibraryLoad(
            world, workers=12, pool_size=2, pool_timeout=0.3, max_waiting=3, lock_timeout=30
        ) as load,
    ):
        blocked = load.submit(victims)
        blocked_backends(world.dsn, 2, [hold])
        rest = load.run(range(2, TASKS))
        assert {o.answer for o in rest} == {"PoolExhaustedError"}
        assert all(o.retryable and o.seconds < HANG for o in rest), "a caller hung on the pool"
        hold.release()
        victim_outcomes = [f.result(timeout=30) for f in blocked]
        assert {o.answer for o in victim_outcomes} == {"applied"}
        ok, bad = split([*victim_outcomes, *rest])
        finish(
            "pool exhausted (library)",
            world,
            load,
            ok,
            bad,
            requests=TASKS + len(bad),
            answers=tally([*victim_outcomes, *rest]),
            slowest_rejection_s=round(max(o.seconds for o in rest), 2),
        )


# ================================================================== over HTTP
@pytest.fixture
def server_for(db_dsn: str, tmp_path: Path) -> Iterator[Any]:
    servers: list[Any] = []

    def start(**settings: Any) -> Server:
        context = running_server(db_dsn, tmp_path / f"server{len(servers)}.log", **settings)
        server = context.__enter__()
        servers.append(context)
        return server

    yield start
    for context in reversed(servers):
        context.__exit__(None, None, None)


def retryable_503(reason: str) -> Callable[[Any], None]:
    """The check of `settle` for a victim over HTTP: 503 with Retry-After and `reason`, in time."""

    def check(outcome: Any) -> None:
        assert outcome.answer == "503", outcome
        retry_after = outcome.detail["retry_after"]
        assert retry_after is not None and int(retry_after) >= 1
        assert outcome.detail["body"]["detail"]["reason"] == reason, outcome.detail
        assert outcome.seconds < HANG, f"{outcome.seconds:.2f}s"

    return check


def test_backend_killed_inside_ti_update_state_http(world: World, server_for: Any) -> None:
    server = server_for(pool_size=8, lock_timeout=30)
    row_victims, queue_victims = [4], [13]
    with (
        Hold(world, row_victims, "row") as row_hold,
        Hold(world, queue_victims, "queue") as queue_hold,
        HttpLoad(world, [server.url], token, workers=8) as load,
    ):
        futures = load.submit(range(TASKS))
        pids = blocked_backends(world.dsn, 2, [row_hold, queue_hold])
        assert holds_uncommitted_event_writes(
            world.dsn, blocked_backends(world.dsn, 1, [queue_hold])
        )
        terminate(world.dsn, pids)
        outcomes = [f.result(timeout=60) for f in futures]
        row_hold.release()
        queue_hold.release()
        victims = row_victims + queue_victims
        settle(
            "backend killed (http)",
            world,
            load,
            outcomes,
            victims,
            retryable_503("connection_failure"),
        )
    assert "Traceback" not in server.log()


def test_row_held_answers_503_http(world: World, server_for: Any) -> None:
    server = server_for(pool_size=8, lock_timeout=0.3)
    victims = [6, 12]
    with Hold(world, victims, "row") as hold, HttpLoad(world, [server.url], token) as load:
        outcomes = load.run(range(TASKS))
        hold.release()
        settle("row held (http)", world, load, outcomes, victims, retryable_503("lock_timeout"))


def test_statement_timeout_answers_503_and_writes_nothing_http(
    world: World, server_for: Any
) -> None:
    server = server_for(pool_size=8, lock_timeout=30, statement_timeout=1.5)
    victims = [1, 22]
    with Hold(world, victims, "queue") as hold, HttpLoad(world, [server.url], token) as load:
        outcomes = load.run(range(TASKS))
        hold.release()
        check = retryable_503("statement_timeout")
        settle("statement_timeout (http)", world, load, outcomes, victims, check)


def test_pool_exhausted_answers_503_without_hanging_and_recovers_http(
    world: World, server_for: Any
) -> None:
    server = server_for(pool_size=2, pool_max_waiting=2, pool_timeout=0.5, lock_timeout=30)
    victims = [0, 1]
    with (
        Hold(world, victims, "row") as hold,
        HttpLoad(world, [server.url], token, workers=12) as load,
    ):
        blocked = load.submit(victims)
        blocked_backends(world.dsn, 2, [hold])
        rest = load.run(range(2, TASKS))
        for o in rest:
            assert o.answer == "503" and o.detail["retry_after"] == "1", o
            assert o.detail["body"]["detail"]["reason"] in {"overloaded", "pool_exhausted"}
            assert o.seconds < HANG, f"a request hung: {o.seconds:.2f}s"
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/health").status_code == 200  # operations routes stay answerable
            metrics = http.get("/metrics").text
        hold.release()
        victim_outcomes = [f.result(timeout=30) for f in blocked]
        assert {o.answer for o in victim_outcomes} == {"204"}
        ok, bad = split([*victim_outcomes, *rest])
        assert "503" in metrics
        finish(
            "pool exhausted (http)",
            world,
            load,
            ok,
            bad,
            requests=TASKS + len(bad),
            answers=tally([*victim_outcomes, *rest]),
            rejections_by_reason=tally(
                [type(o)(o.k, o.detail["body"]["detail"]["reason"], 0) for o in rest]
            ),
            slowest_rejection_s=round(max(o.seconds for o in rest), 2),
        )


def test_the_fingerprint_sees_any_write(world: World) -> None:
    """table_snapshot is what proves "nothing was written": it must see one changed value, and
    (with sequences) one id drawn."""
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        before = table_snapshot(conn, sequences=True)
        assert table_snapshot(conn, sequences=True) == before
        with conn.transaction(force_rollback=True):
            conn.execute("UPDATE task_instance SET hostname = 'x' WHERE id = %s", [world.ti_ids[0]])
            changed = table_snapshot(conn)
        assert changed != {k: v for k, v in before.items() if k in changed}
        conn.execute("SELECT nextval(pg_get_serial_sequence('log', 'id'))")
        after = table_snapshot(conn, sequences=True)
        assert after != before and table_snapshot(conn) == {k: after[k] for k in changed}
