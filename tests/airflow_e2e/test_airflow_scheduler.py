"""Airflow's own scheduler consumes what tistate writes (Airflow mode).

A real Airflow 3.3.2 database (airflow db migrate, the DAG files of dags/ serialized by
`airflow dags reserialize`, runs triggered with `airflow dags trigger` and their task instances
created by `airflow scheduler`), tistate installed by `migrate(flavor="airflow")`; task instances
finish through `tistate.ti_update_state`, then `airflow scheduler --num-runs N` runs and the test
reads the asset-triggered runs it created and the events each consumed (dagrun_asset_event).

Airflow 3.3.2's own API server queues consumers with ON CONFLICT DO NOTHING, so a queue row keeps
the time of the first event of a burst and the run consumes only the events up to it. tistate
moves the row to the newest event and stamps events after share-locking the consumer DAGs
(tistate._lock_consumers), so every event is consumed by exactly one run of each consumer, also
with completions arriving while the scheduler loops (apache/airflow#54659). The burst tests
print their counts (pytest -s shows them).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from airflow_e2e import world as af
from tistate import migrate

pytestmark = pytest.mark.airflow

CONCURRENCY = 80  # callers at once
CONNECTIONS = 40  # their connection pool, as tistate serve's (max_connections is 100, shared)


@pytest.fixture(scope="module")
def world(airflow_world: af.World) -> af.World:
    migrate.migrate(airflow_world.dsn, flavor="airflow", airflow_schema="public")
    return airflow_world


def succeed(world: af.World, ti_id: uuid.UUID, payload: dict[str, Any]) -> list[int]:
    """The success through tistate, committed; the event ids it returns."""
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT applied, asset_event_ids FROM tistate.ti_update_state(%s, %s::jsonb)",
            (ti_id, json.dumps(payload)),
        ).fetchone()
    assert row is not None and row[0] is True
    return list(row[1])


def consumed(report: af.ConsumerReport, dag_id: str) -> Counter[int]:
    """How many runs of dag_id consumed each event."""
    return Counter(event for run in report.runs[dag_id] for event in run.event_ids)


def test_the_scheduler_creates_runs_from_tistates_events(
    world: af.World, producer_run: af.ProducerRun
) -> None:
    tis = producer_run.tis
    before = af.consumer_report(world)

    af.start_task_instance(world, tis["emit_0"].id)
    direct = succeed(world, tis["emit_0"].id, af.success_payload([0]))
    af.start_task_instance(world, tis["emit_alias"].id)
    via_alias = succeed(world, tis["emit_alias"].id, af.success_payload([], alias_assets=[7]))
    assert len(direct) == 1 and len(via_alias) == 1

    report = af.schedule_consumers(world)
    new_any = report.runs["consumer_any"][len(before.runs["consumer_any"]) :]
    new_alias = report.runs["consumer_alias"][len(before.runs["consumer_alias"]) :]
    assert [run.event_ids for run in new_any] == [tuple(direct)]
    assert [run.event_ids for run in new_alias] == [tuple(via_alias)]
    assert report.runs["consumer_all"] == before.runs["consumer_all"], "all-of: 2 of 10 assets"
    assert report.runs["consumer_paused"] == [] and report.queued_for("consumer_paused") == []
    # The all-of consumer keeps its queue rows (asset_0 and, through the alias, asset_7).
    assert sorted(q.asset_name for q in report.queued_for("consumer_all")) == ["asset_0", "asset_7"]

    # The other eight assets: now the all-of consumer runs once, with every event of its assets.
    rest: list[int] = []
    for i in (1, 2, 3, 4, 5, 6, 8, 9):
        af.start_task_instance(world, tis[f"emit_{i}"].id)
        rest += succeed(world, tis[f"emit_{i}"].id, af.success_payload([i]))
    report = af.schedule_consumers(world)
    new_all = report.runs["consumer_all"][len(before.runs["consumer_all"]) :]
    assert len(new_all) == 1
    assert set(new_all[0].event_ids) == set(direct + via_alias + rest)
    any_events = consumed(report, "consumer_any")
    assert all(any_events[event] == 1 for event in direct + rest[:4]), "asset_0..4 once each"
    assert report.queued_for("consumer_all") == [] and report.queued_for("consumer_any") == []


@dataclass
class Burst:
    """What one burst of completions wrote, and what the callers saw."""

    direct: list[int] = field(default_factory=list)  # events on asset_0 (consumer_any)
    via_alias: list[int] = field(default_factory=list)  # alias events (consumer_alias)
    retried: Counter[str] = field(default_factory=Counter)  # SQLSTATE -> retries
    lock: threading.Lock = field(default_factory=threading.Lock)


def mapped_task_instances(world: af.World, run_ids: list[str]) -> list[uuid.UUID]:
    with world.connect() as conn:
        return [
            row["id"]
            for row in conn.execute(
                "SELECT id FROM task_instance WHERE dag_id = %s AND run_id = ANY(%s)"
                " AND map_index >= 0 ORDER BY run_id, map_index",
                (af.BURST_DAG, run_ids),
            )
        ]


def burst_run(world: af.World) -> list[uuid.UUID]:
    """A triggered run of the burst DAG, its mapped task instances created by the scheduler and
    started (running), as a hundred workers would have them."""
    run_id = af.trigger(world, af.BURST_DAG)
    af.run_scheduler(world, 2)  # one loop starts the run, the next expands the mapped task
    ids = mapped_task_instances(world, [run_id])
    assert len(ids) == 100, f"expected 100 mapped task instances, found {len(ids)}"
    for ti_id in ids:
        af.start_task_instance(world, ti_id)
    return ids


def finish_all(world: af.World, ti_ids: list[uuid.UUID], pause: float = 0.0) -> Burst:
    """Every task instance succeeds through tistate, CONCURRENCY callers at once over CONNECTIONS
    connections, each with one event
    on asset_0 and one alias event (asset_8). A retryable error (deadlock, lock timeout) is
    retried as the Task SDK retries a 503, and counted."""
    burst = Burst()
    payload = json.dumps(af.success_payload([0], alias_assets=[8]))
    pool = ConnectionPool(
        world.dsn,
        min_size=CONNECTIONS,
        max_size=CONNECTIONS,
        kwargs={"autocommit": True},
        open=True,
    )

    def one(ti_id: uuid.UUID) -> None:
        time.sleep(pause * random.random())  # spread arrivals (load shape, nothing asserted on it)
        while True:
            try:
                with pool.connection() as conn:
                    row = conn.execute(
                        "SELECT asset_event_ids FROM tistate.ti_update_state(%s, %s::jsonb)",
                        (ti_id, payload),
                    ).fetchone()
                break
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
                with burst.lock:
                    burst.retried[exc.sqlstate or "?"] += 1
        assert row is not None
        ids = sorted(row[0])
        with burst.lock:  # direct event first (event ids: direct, then alias events)
            burst.direct.append(ids[0])
            burst.via_alias.append(ids[1])

    with pool, ThreadPoolExecutor(CONCURRENCY) as callers:
        list(callers.map(one, ti_ids))
    return burst


def left_behind(report: af.ConsumerReport, dag_id: str, events: list[int]) -> tuple[int, int]:
    """(events no run of dag_id consumed, events more than one run consumed)."""
    counts = consumed(report, dag_id)
    return sum(counts[e] == 0 for e in events), sum(counts[e] > 1 for e in events)


def test_a_burst_is_consumed_whole(world: af.World) -> None:
    """100 completions at C=80, then the scheduler: one run of each consumer takes all of them
    (Airflow 3.3.2's API server leaves all but the first event of such a burst behind)."""
    ti_ids = burst_run(world)
    before = af.consumer_report(world)
    burst = finish_all(world, ti_ids)
    report = af.schedule_consumers(world)
    new_any = report.runs["consumer_any"][len(before.runs["consumer_any"]) :]
    assert len(new_any) == 1 and sorted(new_any[0].event_ids) == sorted(burst.direct)
    assert left_behind(report, "consumer_alias", burst.via_alias) == (0, 0)
    print(
        f"\nburst then scheduler: {len(burst.direct) + len(burst.via_alias)} events written,"
        f" consumer_any 1 run with {len(new_any[0].event_ids)} events, 0 left behind,"
        f" retried {dict(burst.retried)}"
    )


@pytest.fixture
def scheduler_loop(world: af.World) -> Iterator[subprocess.Popen[str]]:
    """`airflow scheduler` looping in the background (every 0.1 s when idle) during the test."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "scheduler", "--num-runs", "100000", "--skip-serve-logs"],
        env={**world.env, "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1"},
        cwd=world.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield process
    process.terminate()
    process.wait(timeout=60)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_completions_while_the_scheduler_loops_leave_nothing_behind(
    world: af.World, scheduler_loop: subprocess.Popen[str]
) -> None:
    """300 completions at C=80, spread over a few seconds while the scheduler creates consumer
    runs in a loop: after draining, every event is consumed by exactly one run of each consumer
    (#54659's window closed), and no deadlock reaches a caller."""
    run_ids = [af.trigger(world, af.BURST_DAG) for _ in range(3)]
    # The background scheduler starts the runs and expands their mapped task.
    wait_for(lambda: len(mapped_task_instances(world, run_ids)) == 300, "300 mapped TIs")
    ti_ids = mapped_task_instances(world, run_ids)
    for ti_id in ti_ids:
        af.start_task_instance(world, ti_id)
    runs_before = {run.id for run in af.consumer_report(world).runs["consumer_any"]}
    burst = finish_all(world, ti_ids, pause=3.0)
    scheduler_loop.terminate()
    scheduler_loop.wait(timeout=60)
    during = {run.id for run in af.consumer_report(world).runs["consumer_any"]} - runs_before
    report = af.schedule_consumers(world, 2)  # drain
    missed_any, twice_any = left_behind(report, "consumer_any", burst.direct)
    missed_alias, twice_alias = left_behind(report, "consumer_alias", burst.via_alias)
    mine = set(burst.direct)
    runs = {run.id for run in report.runs["consumer_any"] if mine & set(run.event_ids)}
    print(
        f"\nC={CONCURRENCY} while the scheduler loops: "
        f"{len(burst.direct) + len(burst.via_alias)} events written; consumer_any runs created"
        f" during the burst {len(during)}, runs holding its events {len(runs)}; left behind"
        f" {missed_any} + {missed_alias} (alias); consumed twice {twice_any + twice_alias};"
        f" retried {dict(burst.retried)}"
    )
    assert (missed_any, twice_any, missed_alias, twice_alias) == (0, 0, 0, 0)
    assert report.queued_for("consumer_any") == [] and report.queued_for("consumer_alias") == []
    assert not burst.retried.get("40P01"), "a deadlock reached a caller"
