"""A task's whole life through the public SQL functions, checking the rows at every step:

queued -> running -> deferred -> queued -> running -> up_for_reschedule -> queued -> running ->
up_for_retry -> (new id) queued -> running -> success, plus the notifications of its events.
Times are explicit p_now values, so nothing sleeps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

pytestmark = pytest.mark.both_flavors

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ORDERS = {"name": "orders", "uri": "s3://lake/orders"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def one(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params or {})  # type: ignore[arg-type]
        row = cur.fetchone()
    assert row is not None
    return row


def rows(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params or {})  # type: ignore[arg-type]
        return cur.fetchall()


def ti_row(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return one(conn, "SELECT * FROM task_instance WHERE dag_id = 'sm' AND task_id = 'work'")


def run(conn: psycopg.Connection[Any], ti_id: UUID, minutes: float) -> dict[str, Any]:
    payload = {
        "state": "running",
        "hostname": "h1",
        "unixname": "airflow",
        "pid": 100,
        "start_date": at(minutes).isoformat(),
    }
    ctx = one(
        conn,
        "SELECT tistate.ti_run(p_ti_id => %(id)s, p_payload => %(p)s, p_now => %(now)s) AS c",
        {"id": ti_id, "p": Jsonb(payload), "now": at(minutes)},
    )["c"]
    assert isinstance(ctx, dict)
    return ctx


def update(
    conn: psycopg.Connection[Any], ti_id: UUID, payload: dict[str, Any], minutes: float
) -> dict[str, Any]:
    return one(
        conn,
        "SELECT * FROM tistate.ti_update_state("
        "p_ti_id => %(id)s, p_payload => %(p)s, p_now => %(now)s)",
        {"id": ti_id, "p": Jsonb(payload), "now": at(minutes)},
    )


def queue(conn: psycopg.Connection[Any], ti_id: UUID, minutes: float) -> dict[str, Any]:
    return one(
        conn,
        "SELECT * FROM tistate_test.ti_queue(p_ti_id => %(id)s, p_now => %(now)s)",
        {"id": ti_id, "now": at(minutes)},
    )


def log_events(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    return [
        (r["event"], r["try_number"])
        for r in rows(conn, "SELECT event, try_number FROM log WHERE dag_id = 'sm' ORDER BY id")
    ]


@pytest.fixture
def ti_id(conn: psycopg.Connection[Any]) -> UUID:
    producer = {
        "dag_id": "sm",
        "owners": "team-sm",
        "tasks": [{"task_id": "work", "max_tries": 2, "outlets": [{"type": "Asset", **ORDERS}]}],
    }
    conn.execute("SELECT tistate_test.define_dag(%s)", [Jsonb(producer)])
    conn.execute(
        "SELECT tistate_test.define_dag(%s)",
        [Jsonb({"dag_id": "sm_consumer", "schedule": {"assets": [ORDERS]}})],
    )
    created = rows(
        conn,
        "SELECT * FROM tistate_test.create_dag_run("
        "p_dag_id => 'sm', p_run_id => 'run1', p_now => %(now)s)",
        {"now": T0},
    )
    assert [r["task_id"] for r in created] == ["work"]
    ti = ti_row(conn)
    assert (ti["state"], ti["try_number"]) == ("queued", 1)
    value = created[0]["ti_id"]
    assert isinstance(value, UUID)
    return value


def test_whole_life_of_a_task(conn: psycopg.Connection[Any], ti_id: UUID, flavor: str) -> None:
    # queued -> running
    run(conn, ti_id, 1)
    ti = ti_row(conn)
    assert (ti["state"], ti["start_date"], ti["hostname"], ti["pid"]) == (
        "running",
        at(1),
        "h1",
        100,
    )

    # running -> deferred: a trigger row, the resume data and the timeout.
    deferred = {
        "state": "deferred",
        "classpath": "airflow.triggers.temporal.TimeDeltaTrigger",
        "next_method": "resume",
        "trigger_kwargs": {"delta": 60},
        "trigger_timeout": "PT1H",
        "next_kwargs": {"cursor": 1},
    }
    result = update(conn, ti_id, deferred, 2)
    assert (result["previous_state"], result["new_state"], result["applied"]) == (
        "running",
        "deferred",
        True,
    )
    trigger = one(conn, "SELECT * FROM trigger")
    assert trigger["classpath"] == "airflow.triggers.temporal.TimeDeltaTrigger"
    assert json.loads(trigger["kwargs"]) == {"delta": 60}
    assert trigger["created_date"] == at(2)
    ti = ti_row(conn)
    assert ti["state"] == "deferred"
    assert ti["trigger_id"] == trigger["id"]
    assert (ti["next_method"], ti["next_kwargs"]) == ("resume", {"cursor": 1})
    assert ti["trigger_timeout"] == at(62)

    # deferred -> queued: same try; the trigger reference is dropped, the resume data kept.
    result = queue(conn, ti_id, 3)
    assert (result["previous_state"], result["new_state"], result["applied"]) == (
        "deferred",
        "queued",
        True,
    )
    ti = ti_row(conn)
    assert (ti["state"], ti["try_number"], ti["trigger_id"], ti["next_method"]) == (
        "queued",
        1,
        None,
        "resume",
    )

    # queued -> running, resuming: the try keeps its start_date; the worker gets next_method/kwargs.
    ctx = run(conn, ti_id, 4)
    assert (ctx["next_method"], ctx["next_kwargs"]) == ("resume", {"cursor": 1})
    assert ti_row(conn)["start_date"] == at(1)

    # running -> up_for_reschedule: a task_reschedule row from the try's real start.
    reschedule = {
        "state": "up_for_reschedule",
        "end_date": at(5).isoformat(),
        "reschedule_date": at(10).isoformat(),
    }
    result = update(conn, ti_id, reschedule, 5)
    assert (result["new_state"], result["applied"]) == ("up_for_reschedule", True)
    resched = rows(conn, "SELECT * FROM task_reschedule")
    assert [
        (r["ti_id"], r["start_date"], r["end_date"], r["duration"], r["reschedule_date"])
        for r in resched
    ] == [(ti_id, at(1), at(5), 240, at(10))]
    ti = ti_row(conn)
    assert (ti["state"], ti["end_date"], ti["next_method"], ti["next_kwargs"]) == (
        "up_for_reschedule",
        at(5),
        None,
        None,
    )

    # up_for_reschedule -> queued: not a new try.
    queue(conn, ti_id, 10)
    assert (ti_row(conn)["state"], ti_row(conn)["try_number"]) == ("queued", 1)

    # queued -> running: a fresh poke (start_date moves), the reschedule is counted.
    ctx = run(conn, ti_id, 11)
    assert ctx["task_reschedule_count"] == 1
    assert ti_row(conn)["start_date"] == at(11)

    # running -> up_for_retry: history row, reschedule rows gone, a new id.
    retry = {
        "state": "up_for_retry",
        "end_date": at(12).isoformat(),
        "retry_reason": "flaky",
        "retry_delay_seconds": 60,
    }
    result = update(conn, ti_id, retry, 12)
    assert (result["ti_id"], result["new_state"], result["applied"]) == (
        ti_id,
        "up_for_retry",
        True,
    )
    new_id = result["new_ti_id"]
    assert isinstance(new_id, UUID) and new_id != ti_id and new_id.version == 7
    ti = ti_row(conn)
    assert (ti["id"], ti["state"], ti["try_number"]) == (new_id, "up_for_retry", 1)
    assert (ti["retry_reason"], ti["retry_delay_override"], ti["duration"]) == ("flaky", 60.0, 60.0)
    history = rows(conn, "SELECT * FROM task_instance_history")
    assert [
        (h["task_instance_id"], h["state"], h["try_number"], h["start_date"], h["end_date"])
        for h in history
    ] == [(ti_id, "failed", 1, at(11), at(12))]
    assert rows(conn, "SELECT * FROM task_reschedule") == []
    with pytest.raises(psycopg.Error) as gone:
        conn.execute("SELECT tistate.ti_heartbeat(%s, 'h1', 100)", [ti_id])
    assert gone.value.diag.sqlstate == "TS410"

    # (new id) up_for_retry -> queued: the next try.
    result = queue(conn, new_id, 15)
    assert (result["ti_id"], result["previous_state"], result["applied"]) == (
        new_id,
        "up_for_retry",
        True,
    )
    assert (ti_row(conn)["state"], ti_row(conn)["try_number"]) == ("queued", 2)

    # queued -> running -> heartbeat -> success with its asset event and consumer queue row.
    ctx = run(conn, new_id, 16)
    assert ctx["task_reschedule_count"] == 0
    ti = ti_row(conn)
    assert (ti["start_date"], ti["retry_reason"], ti["retry_delay_override"]) == (
        at(16),
        None,
        None,
    )
    conn.execute("SELECT tistate.ti_heartbeat(%s, 'h1', 100, p_now => %s)", [new_id, at(17)])
    assert ti_row(conn)["last_heartbeat_at"] == at(17)
    success = {
        "state": "success",
        "end_date": at(18).isoformat(),
        "task_outlets": [{"type": "Asset", **ORDERS}],
    }
    result = update(conn, new_id, success, 18)
    assert (result["new_state"], result["applied"], result["queued_dag_ids"]) == (
        "success",
        True,
        ["sm_consumer"],
    )
    events = rows(conn, "SELECT * FROM tistate_test.asset_event")
    assert [(e["id"], e["ti_id"], e["try_number"], e["source_task_id"]) for e in events] == [
        (result["asset_event_ids"][0], new_id, 2, "work")
    ]
    assert [r["target_dag_id"] for r in rows(conn, "SELECT * FROM asset_dag_run_queue")] == [
        "sm_consumer"
    ]
    ti = ti_row(conn)
    assert (ti["state"], ti["end_date"], ti["duration"], ti["try_number"]) == (
        "success",
        at(18),
        120.0,
        2,
    )

    expected = [
        ("running", 1),
        ("deferred", 1),
        ("queued", 1),
        ("running", 1),
        ("up_for_reschedule", 1),
        ("queued", 1),
        ("running", 1),
        ("up_for_retry", 1),
        ("queued", 2),
        ("running", 2),
        ("success", 2),
    ]
    if flavor == "airflow":  # the scheduler queues (tistate_test.ti_queue): no audit row of ours
        expected = [event for event in expected if event[0] != "queued"]
    assert log_events(conn) == expected
    owners = {r["owner"] for r in rows(conn, "SELECT owner FROM log WHERE dag_id = 'sm'")}
    assert owners == {"team-sm"}


def test_events_notify_listeners_at_commit(
    conn: psycopg.Connection[Any], ti_id: UUID, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN tistate_events")
        run(conn, ti_id, 1)
        with psycopg.connect(
            db_dsn
        ) as tx:  # one explicit transaction: nothing is heard before COMMIT
            update(
                tx,
                ti_id,
                {
                    "state": "success",
                    "end_date": at(2).isoformat(),
                    "task_outlets": [{"type": "Asset", **ORDERS}],
                },
                2,
            )
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
            tx.commit()
        heard = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
        orders_id = one(conn, "SELECT id FROM asset WHERE name = 'orders'")["id"]
        # Ids only (bounded by construction, whatever the asset's name or uri): listeners read
        # the rest with tistate.asset_events.
        assert [(h["asset_id"], h["ti_id"]) for h in heard] == [(orders_id, str(ti_id))]

        manual = one(
            conn,
            "SELECT * FROM tistate.emit_asset_event("
            "'orders', 's3://lake/orders', '{\"manual\": true}')",
        )
        heard = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
        assert [(h["event_id"], h["asset_id"], h["ti_id"]) for h in heard] == [
            (manual["asset_event_id"], orders_id, None)
        ]
        assert manual["queued_dag_ids"] == ["sm_consumer"]


def test_fail_fast_is_atomic(conn: psycopg.Connection[Any], db_dsn: str) -> None:
    dag = {"dag_id": "ff", "fail_fast": True, "tasks": [{"task_id": "boom"}, {"task_id": "other"}]}
    conn.execute("SELECT tistate_test.define_dag(%s)", [Jsonb(dag)])
    ids = {
        r["task_id"]: r["ti_id"]
        for r in rows(
            conn, "SELECT * FROM tistate_test.create_dag_run('ff', 'r1', p_now => %(n)s)", {"n": T0}
        )
    }
    run(conn, ids["boom"], 1)
    with psycopg.connect(db_dsn) as tx:
        update(tx, ids["boom"], {"state": "failed", "end_date": at(2).isoformat()}, 2)
        # Before COMMIT another session still sees both rows unchanged: no mid-call commit.
        states = {
            r["task_id"]: r["state"]
            for r in rows(conn, "SELECT task_id, state FROM task_instance WHERE dag_id = 'ff'")
        }
        assert states == {"boom": "running", "other": "queued"}
        tx.commit()
    states = {
        r["task_id"]: r["state"]
        for r in rows(conn, "SELECT task_id, state FROM task_instance WHERE dag_id = 'ff'")
    }
    assert states == {"boom": "failed", "other": "skipped"}
