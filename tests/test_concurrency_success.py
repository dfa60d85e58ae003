"""Deterministic two-connection tests of the success transition's locking.

Every step is explicit: connection A runs its call inside an open transaction; the other caller
runs in a thread, and the test waits (bounded) until PostgreSQL reports that caller's backend as
waiting on a lock before A commits. Nothing relies on sleeping.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from faultkit import table_snapshot, wait_until_blocked

RUNNING = {
    "state": "running",
    "hostname": "worker",
    "unixname": "airflow",
    "pid": 7,
    "start_date": "2025-01-01T00:00:00Z",
}
ORDERS = {"name": "orders", "uri": "s3://lake/orders"}
CUSTOMERS = {"name": "customers", "uri": "s3://lake/customers"}
T1 = {"name": "t1", "uri": "s3://tables/1"}
T2 = {"name": "t2", "uri": "s3://tables/2"}

CALL = (
    "SELECT ti_id, previous_state, new_state, applied, asset_event_ids, queued_dag_ids"
    " FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)"
)
CALL_WITH_TIMEOUT = (
    "SELECT ti_id, previous_state, new_state, applied, asset_event_ids, queued_dag_ids"
    " FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s, p_lock_timeout => %s)"
)

pytestmark = pytest.mark.both_flavors


def success(outlets: list[dict[str, Any]], events: list[dict[str, Any]]) -> Jsonb:
    return Jsonb(
        {
            "state": "success",
            "end_date": "2025-01-01T00:01:00Z",
            "task_outlets": outlets,
            "outlet_events": events,
        }
    )


# What the producer's tasks declare (a success may name only these: TS403 otherwise).
OUTLETS: list[dict[str, Any]] = [
    {"type": "Asset", **ORDERS},
    {"type": "Asset", **CUSTOMERS},
    {"type": "AssetAlias", "name": "daily"},
    {"type": "AssetAlias", "name": "weekly"},
]


def define_world(conn: psycopg.Connection[Any], *, aliased_assets_exist: bool) -> None:
    """Consumers on orders, customers, two aliases, and one DAG on all of them; a producer."""
    dags: list[dict[str, Any]] = [
        {"dag_id": "c_orders", "schedule": {"assets": [ORDERS]}},
        {"dag_id": "c_customers", "schedule": {"assets": [CUSTOMERS]}},
        {"dag_id": "c_daily", "schedule": {"aliases": ["daily"]}},
        {"dag_id": "c_weekly", "schedule": {"aliases": ["weekly"]}},
        {
            "dag_id": "c_all",
            "schedule": {"assets": [ORDERS, CUSTOMERS], "aliases": ["daily", "weekly"]},
        },
        {"dag_id": "c_paused", "is_paused": True, "schedule": {"assets": [ORDERS, CUSTOMERS]}},
        {
            "dag_id": "producer",
            "tasks": [{"task_id": f"t{i}", "outlets": OUTLETS} for i in range(8)],
        },
    ]
    if aliased_assets_exist:
        dags.append({"dag_id": "c_tables", "is_paused": True, "schedule": {"assets": [T1, T2]}})
    for dag in dags:
        conn.execute("SELECT tistate_test.define_dag(p_dag => %s)", [Jsonb(dag)])


def running_tis(conn: psycopg.Connection[Any], run_id: str) -> list[uuid.UUID]:
    rows = conn.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run(p_dag_id => 'producer', p_run_id => %s)"
        " ORDER BY task_id",
        [run_id],
    ).fetchall()
    for (ti_id,) in rows:
        conn.execute(
            "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)", [ti_id, Jsonb(RUNNING)]
        )
    return [row[0] for row in rows]


class Caller(threading.Thread):
    """Runs one statement on its own autocommit connection and keeps the outcome."""

    def __init__(self, dsn: str, query: str, params: list[Any]) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.pid: int = self.conn.info.backend_pid
        self.query = query
        self.params = params
        self.result: tuple[Any, ...] | None = None
        self.error: psycopg.Error | None = None

    def run(self) -> None:
        try:
            self.result = self.conn.execute(self.query, self.params).fetchone()
        except psycopg.Error as exc:
            self.error = exc

    def finish(self) -> tuple[Any, ...]:
        self.join(timeout=30)
        assert not self.is_alive(), "the second caller never finished"
        self.conn.close()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture
def connect(db_dsn: str) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    opened: list[psycopg.Connection[Any]] = []

    def _connect(*, autocommit: bool = True) -> psycopg.Connection[Any]:
        connection = psycopg.connect(db_dsn, autocommit=autocommit)
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        connection.close()


def event_count(conn: psycopg.Connection[Any], ti_id: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT count(*) FROM tistate_test.asset_event WHERE ti_id = %s", [ti_id]
    ).fetchone()
    assert row is not None
    return int(row[0])


# --------------------------------------------------------------------------------------------
# (a) a completion holding the row makes a second caller fail fast, and its retry is a no-op
# --------------------------------------------------------------------------------------------
def test_second_caller_fails_fast_with_lock_timeout(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    ti_id = running_tis(setup, "r1")[0]
    payload = success([{"type": "Asset", **ORDERS}], [])

    holder = connect(autocommit=False)
    first = holder.execute(CALL, [ti_id, payload]).fetchone()
    assert first is not None and first[3] is True  # applied, row lock held, not committed

    other = connect()
    # Which timeout bounds the wait is test_lock_timeout_precedence's; here: it is bounded.
    with pytest.raises(psycopg.errors.LockNotAvailable) as caught:
        other.execute(CALL_WITH_TIMEOUT, [ti_id, payload, "100 ms"])
    assert caught.value.diag.sqlstate == "55P03"
    # The failed call wrote nothing (and A's writes are not visible before A commits).
    assert event_count(other, ti_id) == 0
    row = other.execute(
        "SELECT state, (SELECT count(*) FROM log WHERE event = 'success')"
        " FROM task_instance WHERE id = %s",
        [ti_id],
    ).fetchone()
    assert row == ("running", 0)

    holder.commit()
    retry = other.execute(CALL, [ti_id, payload]).fetchone()
    assert retry is not None
    assert retry[1:4] == ("success", "success", False)
    assert retry[4] == first[4], "the no-op reports the committed events"
    assert event_count(other, ti_id) == 1, "the retry wrote no second event"


# --------------------------------------------------------------------------------------------
# (b) two completions on the same assets, aliases and consumers, in opposite orders
# --------------------------------------------------------------------------------------------
def payloads() -> tuple[Jsonb, Jsonb]:
    outlets = [
        {"type": "Asset", **ORDERS},
        {"type": "Asset", **CUSTOMERS},
        {"type": "AssetAlias", "name": "daily"},
        {"type": "AssetAlias", "name": "weekly"},
    ]
    events: list[dict[str, Any]] = [
        {"dest_asset_key": ORDERS, "extra": {"n": 1}},
        {"dest_asset_key": CUSTOMERS, "extra": {"n": 2}},
        {"source_alias_name": "daily", "dest_asset_key": T1, "extra": {"n": 3}},
        {"source_alias_name": "weekly", "dest_asset_key": T2, "extra": {"n": 4}},
        {"source_alias_name": "weekly", "dest_asset_key": T1, "extra": {"n": 5}},
    ]
    return success(outlets, events), success(outlets[::-1], events[::-1])


# Per completion: orders, customers (direct), t1 (daily), t2 (weekly), t1 (weekly).
EVENTS_PER_COMPLETION = 5
EXPECTED_QUEUE = {
    ("orders", "c_orders"),
    ("orders", "c_all"),
    ("customers", "c_customers"),
    ("customers", "c_all"),
    ("t1", "c_daily"),
    ("t1", "c_weekly"),
    ("t1", "c_all"),
    ("t2", "c_weekly"),
    ("t2", "c_all"),
}


def check_outcome(conn: psycopg.Connection[Any], ti_ids: list[uuid.UUID]) -> None:
    for ti_id in ti_ids:
        assert event_count(conn, ti_id) == EVENTS_PER_COMPLETION
    queue = conn.execute(
        "SELECT a.name, q.target_dag_id FROM asset_dag_run_queue AS q"
        " JOIN asset AS a ON a.id = q.asset_id"
    ).fetchall()
    assert len(queue) == len(set(queue))
    assert set(queue) == EXPECTED_QUEUE
    links = conn.execute(
        "SELECT al.name, a.name FROM asset_alias_asset AS l"
        " JOIN asset_alias AS al ON al.id = l.alias_id"
        " JOIN asset AS a ON a.id = l.asset_id ORDER BY 1, 2"
    ).fetchall()
    assert links == [("daily", "t1"), ("weekly", "t1"), ("weekly", "t2")]
    alias_events = conn.execute(
        "SELECT count(*) FROM asset_alias_asset_event AS l"
        " JOIN tistate_test.asset_event AS e ON e.id = l.event_id WHERE e.ti_id = ANY(%s)",
        [ti_ids],
    ).fetchone()
    assert alias_events == (3 * len(ti_ids),)
    states = conn.execute(
        "SELECT DISTINCT state FROM task_instance WHERE id = ANY(%s)", [ti_ids]
    ).fetchall()
    assert states == [("success",)]


@pytest.mark.parametrize("aliased_assets_exist", [False, True], ids=["dynamic", "existing"])
@pytest.mark.parametrize("a_first", [True, False], ids=["forward-first", "reverse-first"])
@pytest.mark.parametrize("round_", [1, 2])
def test_opposite_orders_block_then_complete_without_deadlock(
    db_dsn: str,
    connect: Callable[..., psycopg.Connection[Any]],
    aliased_assets_exist: bool,
    a_first: bool,
    round_: int,
) -> None:
    setup = connect()
    define_world(setup, aliased_assets_exist=aliased_assets_exist)
    ti_a, ti_b = running_tis(setup, f"r{round_}")[:2]
    forward, reverse = payloads()
    payload_a, payload_b = (forward, reverse) if a_first else (reverse, forward)

    a = connect(autocommit=False)
    result_a = a.execute(CALL, [ti_a, payload_a]).fetchone()
    assert result_a is not None and result_a[3] is True

    b = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_b, payload_b, "20 s"])
    b.start()
    # B needs keys A inserted and has not committed (new assets, alias links, queue rows).
    wait_until_blocked(setup, b.pid, b.is_alive)
    a.commit()
    result_b = b.finish()  # raises on 40P01 or any other error
    assert result_b[3] is True
    assert len(result_b[4]) == EVENTS_PER_COMPLETION
    check_outcome(setup, [ti_a, ti_b])


@pytest.mark.parametrize("a_first", [True, False], ids=["forward-first", "reverse-first"])
def test_interleaved_completions_do_not_deadlock(
    db_dsn: str, connect: Callable[..., psycopg.Connection[Any]], a_first: bool
) -> None:
    """Both calls in flight at once: a third connection holds a queue key that A reaches halfway,
    so A stops mid-registration holding its earlier keys while B starts. Keys taken in one global
    order cannot form a cycle; keys taken in payload order would deadlock here (40P01)."""
    setup = connect()
    define_world(setup, aliased_assets_exist=True)
    ti_a, ti_b, ti_warm = running_tis(setup, "r1")[:3]
    forward, reverse = payloads()
    payload_a, payload_b = (forward, reverse) if a_first else (reverse, forward)
    # A warm-up completion creates the alias links, so B does not stop at them but reaches the
    # queue; then the queue is emptied so that A and B both insert every queue key.
    setup.execute(CALL, [ti_warm, forward])
    setup.execute("DELETE FROM asset_dag_run_queue")

    gate = connect(autocommit=False)
    gate.execute(
        "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at)"
        " SELECT id, 'c_all', now() FROM asset WHERE name = 'customers'"
    )
    a = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_a, payload_a, "20 s"])
    a.start()
    wait_until_blocked(setup, a.pid, a.is_alive)
    b = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_b, payload_b, "20 s"])
    b.start()
    wait_until_blocked(setup, b.pid, b.is_alive)
    # B waits on a queue key A holds (A itself waits on the gate's key).
    waiting_on_a = setup.execute(
        "SELECT %s = ANY(pg_blocking_pids(%s)), %s = ANY(pg_blocking_pids(%s))",
        [a.pid, b.pid, gate.info.backend_pid, a.pid],
    ).fetchone()
    assert waiting_on_a == (True, True)
    gate.rollback()
    result_a = a.finish()
    result_b = b.finish()
    assert result_a[3] is True and result_b[3] is True
    check_outcome(setup, [ti_a, ti_b])


# --------------------------------------------------------------------------------------------
# (c) a retried success after commit is a no-op
# --------------------------------------------------------------------------------------------
def test_retry_after_commit_is_a_noop(connect: Callable[..., psycopg.Connection[Any]]) -> None:
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    ti_id = running_tis(setup, "r1")[0]
    payload, _ = payloads()
    first = connect().execute(CALL, [ti_id, payload]).fetchone()
    assert first is not None and first[3] is True

    before = table_snapshot(setup)
    retry = connect().execute(CALL, [ti_id, payload]).fetchone()
    assert retry is not None
    assert retry[:4] == (ti_id, "success", "success", False)
    assert retry[4] == first[4]
    assert retry[5] == []
    assert table_snapshot(setup) == before, "the no-op retry wrote something"
    assert event_count(setup, ti_id) == EVENTS_PER_COMPLETION


# --------------------------------------------------------------------------------------------
# (d) the GUC tistate.lock_timeout bounds the wait when p_lock_timeout is not given
# --------------------------------------------------------------------------------------------
#: Far above the timeouts below, far below an unbounded wait: no stopwatch on a shared machine.
NEVER_THIS_LONG = 30.0


@pytest.mark.parametrize(
    ("guc", "parameter", "expected"),
    [(None, None, "2s"), ("300ms", None, "300ms"), ("10s", "100 ms", "100ms")],
)
def test_lock_timeout_precedence(
    connect: Callable[..., psycopg.Connection[Any]],
    guc: str | None,
    parameter: str | None,
    expected: str,
) -> None:
    """The lock_timeout in force inside a call, as PostgreSQL reports it: the parameter, else the
    GUC tistate.lock_timeout, else the locking function's own `SET lock_timeout = '2s'`."""
    row = (
        connect()
        .execute("SELECT proconfig FROM pg_proc WHERE oid = 'tistate.ti_update_state'::regproc")
        .fetchone()
    )
    assert row is not None and "lock_timeout=2s" in row[0]
    session = connect(autocommit=False)
    if guc is not None:
        session.execute("SELECT set_config('tistate.lock_timeout', %s, false)", [guc])
    session.execute("SET LOCAL lock_timeout = '2s'")  # what the function's SET clause does
    session.execute("SELECT tistate._set_lock_timeout(%s::interval)", [parameter])
    assert session.execute("SELECT current_setting('lock_timeout')").fetchone() == (expected,)
    session.rollback()


def blocked_call(
    connect: Callable[..., psycopg.Connection[Any]],
    *,
    guc: str | None,
    lock_timeout: str | None,
) -> float:
    """Seconds a second caller waited before 55P03, while another transaction holds the row."""
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    ti_id = running_tis(setup, f"r_{uuid.uuid4().hex[:6]}")[0]
    payload = success([], [])
    holder = connect(autocommit=False)
    holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", [ti_id])
    other = connect()
    if guc is not None:
        other.execute("SELECT set_config('tistate.lock_timeout', %s, false)", [guc])
    started = time.monotonic()
    with pytest.raises(psycopg.errors.LockNotAvailable):
        if lock_timeout is None:
            other.execute(CALL, [ti_id, payload])
        else:
            other.execute(CALL_WITH_TIMEOUT, [ti_id, payload, lock_timeout])
    elapsed = time.monotonic() - started
    # The function's own SET lock_timeout never leaks into the caller's session.
    assert other.execute("SHOW lock_timeout").fetchone() == ("0",)
    holder.rollback()
    return elapsed


def test_guc_lock_timeout_is_honoured(connect: Callable[..., psycopg.Connection[Any]]) -> None:
    elapsed = blocked_call(connect, guc="300ms", lock_timeout=None)
    # PostgreSQL never gives up before the lock_timeout: a lower bound is not a stopwatch.
    assert 0.3 <= elapsed < NEVER_THIS_LONG, f"waited {elapsed:.2f}s with 300ms"


def test_parameter_overrides_guc(connect: Callable[..., psycopg.Connection[Any]]) -> None:
    elapsed = blocked_call(connect, guc="1h", lock_timeout="100 ms")
    assert 0.1 <= elapsed < NEVER_THIS_LONG, f"waited {elapsed:.2f}s: the GUC won"


def test_default_lock_timeout_is_two_seconds(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    elapsed = blocked_call(connect, guc=None, lock_timeout=None)
    assert 1.8 <= elapsed < NEVER_THIS_LONG, f"waited {elapsed:.2f}s without any setting"


# --------------------------------------------------------------------------------------------
# (e) registration happens before the row lock; a duplicate that raced the winner is undone
# --------------------------------------------------------------------------------------------
def test_duplicate_waiting_for_the_row_answers_the_noop_and_keeps_no_events(
    connect: Callable[..., psycopg.Connection[Any]], db_dsn: str
) -> None:
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    ti_id = running_tis(setup, "r1")[0]
    payload = success(
        [{"type": "Asset", **ORDERS}, {"type": "AssetAlias", "name": "daily"}],
        [
            {"dest_asset_key": ORDERS, "extra": {"n": 1}},
            {"source_alias_name": "daily", "dest_asset_key": T1, "extra": {"n": 2}},
        ],
    )

    holder = connect(autocommit=False)
    first = holder.execute(CALL, [ti_id, payload]).fetchone()
    assert first is not None and first[3] is True

    # The duplicate still sees the committed state 'running', registers its own events, then waits
    # for the row (or for a queue key the holder inserted). Once the holder commits it finds the
    # try finished: its registration is rolled back to the savepoint and it answers the no-op.
    duplicate = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_id, payload, "20 s"])
    duplicate.start()
    wait_until_blocked(setup, duplicate.pid, duplicate.is_alive)
    holder.commit()
    result = duplicate.finish()
    assert result[1:4] == ("success", "success", False)
    assert result[4] == first[4], "the no-op reports the winner's events"
    assert event_count(setup, ti_id) == 2
    links = setup.execute("SELECT count(*) FROM asset_alias_asset_event").fetchone()
    assert links == (1,)
    logs = setup.execute("SELECT count(*) FROM log WHERE event = 'success'").fetchone()
    assert logs == (1,)


def test_heartbeat_does_not_wait_for_registration(
    connect: Callable[..., psycopg.Connection[Any]], db_dsn: str
) -> None:
    # A completion blocked inside registration (on the alias and asset another transaction is
    # creating) has not locked its row yet, so the task's heartbeat goes through at once.
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    blocker_ti, ti_id = running_tis(setup, "r1")[:2]
    alias_event = {"source_alias_name": "daily", "dest_asset_key": T1, "extra": {}}
    payload = success([{"type": "AssetAlias", "name": "daily"}], [alias_event])

    blocker = connect(autocommit=False)
    blocker.execute(CALL, [blocker_ti, payload])  # creates alias daily and asset t1, uncommitted

    completion = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_id, payload, "20 s"])
    completion.start()
    assert wait_until_blocked(setup, completion.pid, completion.is_alive) == "transactionid"
    assert not row_locked(db_dsn, ti_id), "registration runs before the row lock"

    beat = connect()
    beat.execute(
        "SELECT tistate.ti_heartbeat(p_ti_id => %s, p_hostname => 'worker', p_pid => 7,"
        " p_lock_timeout => '100 ms')",
        [ti_id],
    )
    blocker.commit()
    result = completion.finish()
    assert result[3] is True


def test_queue_rows_are_written_last_under_the_row_lock(
    connect: Callable[..., psycopg.Connection[Any]], db_dsn: str
) -> None:
    # The queue rows are the contended part of a success (every success with these consumers
    # updates them), so they are its last write: a completion waiting for them has registered its
    # events and updated its row. Its own task's heartbeat waits for it and then learns the task
    # finished (TS409); another task's heartbeat does not wait.
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    blocker_ti, ti_id, other_ti = running_tis(setup, "r1")[:3]
    payload = success([{"type": "Asset", **ORDERS}], [])

    blocker = connect(autocommit=False)
    blocker.execute(CALL, [blocker_ti, payload])  # holds the (orders, consumer) queue rows

    completion = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_id, payload, "20 s"])
    completion.start()
    assert wait_until_blocked(setup, completion.pid, completion.is_alive) == "transactionid"
    assert row_locked(db_dsn, ti_id)
    assert event_count(setup, ti_id) == 0, "nothing is visible before commit"

    connect().execute(
        "SELECT tistate.ti_heartbeat(p_ti_id => %s, p_hostname => 'worker', p_pid => 7,"
        " p_lock_timeout => '100 ms')",
        [other_ti],
    )
    beat = Caller(
        db_dsn,
        "SELECT * FROM tistate.ti_heartbeat(p_ti_id => %s, p_hostname => 'worker', p_pid => 7,"
        " p_lock_timeout => '20 s')",
        [ti_id],
    )
    beat.start()
    assert wait_until_blocked(setup, beat.pid, beat.is_alive) == "transactionid"
    assert completion.pid in blocking_pids(setup, beat.pid)

    blocker.commit()
    assert completion.finish()[3] is True
    beat.join(timeout=30)
    beat.conn.close()
    assert beat.error is not None and beat.error.diag.sqlstate == "TS409", beat.error
    assert event_count(setup, ti_id) == 1


def row_locked(dsn: str, ti_id: uuid.UUID) -> bool:
    """Whether some transaction holds the task instance's row lock (a NOWAIT probe, released)."""
    with psycopg.connect(dsn) as probe:
        try:
            probe.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE NOWAIT", [ti_id])
        except psycopg.errors.LockNotAvailable:
            return True
        finally:
            probe.rollback()
    return False


def blocking_pids(conn: psycopg.Connection[Any], pid: int) -> list[int]:
    row = conn.execute("SELECT pg_blocking_pids(%s)", [pid]).fetchone()
    return list(row[0]) if row else []


def test_task_that_becomes_running_before_the_lock_is_registered_under_the_lock(
    connect: Callable[..., psycopg.Connection[Any]], db_dsn: str
) -> None:
    """The rarely taken path: the unlocked look sees `queued`, so nothing is registered before the
    lock; by the time the row is locked ti_run has committed, and the events, queue rows, audit
    row and row update are all written under the lock (tistate._apply_success)."""
    setup = connect()
    define_world(setup, aliased_assets_exist=False)
    rows = setup.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run(p_dag_id => 'producer', p_run_id => 'r1')"
        " ORDER BY task_id"
    ).fetchall()
    ti_id = rows[0][0]
    starter = connect(autocommit=False)
    starter.execute(
        "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)", [ti_id, Jsonb(RUNNING)]
    )  # holds the row, not committed: the committed state is still `queued`

    payload = success(
        [{"type": "Asset", **ORDERS}, {"type": "AssetAlias", "name": "daily"}],
        [
            {"dest_asset_key": ORDERS, "extra": {"n": 1}},
            {"source_alias_name": "daily", "dest_asset_key": T1, "extra": {"n": 2}},
        ],
    )
    finisher = Caller(db_dsn, CALL_WITH_TIMEOUT, [ti_id, payload, "20 s"])
    finisher.start()
    assert wait_until_blocked(setup, finisher.pid, finisher.is_alive) in {"transactionid", "tuple"}
    assert event_count(setup, ti_id) == 0
    starter.commit()

    result = finisher.finish()
    assert result[1:4] == ("running", "success", True)
    assert event_count(setup, ti_id) == 2
    assert result[4] == [
        r[0]
        for r in setup.execute(
            "SELECT id FROM tistate_test.asset_event WHERE ti_id = %s ORDER BY id", [ti_id]
        ).fetchall()
    ]
    assert sorted(result[5]) == ["c_all", "c_daily", "c_orders"]
    log = setup.execute(
        "SELECT event, extra FROM log WHERE dag_id = 'producer' ORDER BY id"
    ).fetchall()
    assert [e for e, _ in log] == ["running", "success"]
    assert log[1][1] == '{"host_name": "worker"}'
    state = setup.execute(
        "SELECT state, duration FROM task_instance WHERE id = %s", [ti_id]
    ).fetchone()
    assert state == ("success", 60.0)
