"""Payloads an attacker would send, straight to the SQL functions (issue 17, SQL findings), on both
flavors: bounded notifications whatever the asset, index-sized names, linear and capped
registration, no negative delays. Each case failed before the fix (6142fc7): a relay stuck on an
oversized notification, a 54000 with PostgreSQL internals, 11.7 s for 10,000 aliases, a delay in
the past stored."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from faultkit import END_DATE, RUNNING

END = END_DATE
ALIAS = {"type": "AssetAlias", "name": "hostile"}


def running_ti(conn: psycopg.Connection[Any], run_id: str, outlets: list[dict[str, Any]]) -> UUID:
    conn.execute(
        "SELECT tistate_test.define_dag(%s)",
        [Jsonb({"dag_id": f"p_{run_id}", "tasks": [{"task_id": "t", "outlets": outlets}]})],
    )
    row = conn.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run(%s, 'r')", [f"p_{run_id}"]
    ).fetchone()
    assert row is not None
    conn.execute("SELECT tistate.ti_run(%s, %s)", [row[0], Jsonb(RUNNING)])
    return UUID(str(row[0]))


def succeed(conn: psycopg.Connection[Any], ti: UUID, payload: dict[str, Any]) -> Any:
    return conn.execute(
        "SELECT asset_event_ids FROM tistate.ti_update_state(%s, %s)",
        [ti, Jsonb({"state": "success", "end_date": END, **payload})],
    ).fetchone()


def sqlstate_and_field(
    conn: psycopg.Connection[Any], sql: str, params: list[Any]
) -> tuple[str, str]:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params)  # type: ignore[arg-type]
    detail = json.loads(caught.value.diag.message_detail or "{}")
    return str(caught.value.sqlstate), str(detail.get("field"))


@pytest.mark.both_flavors
def test_a_notification_is_small_whatever_the_asset(conn: psycopg.Connection[Any]) -> None:
    """An asset reached through an alias with a 1,500-character uri of control characters: its
    success commits, the relay announces it, and the events behind it are announced too (the
    payload used to carry the uri: over NOTIFY's 8000 bytes, it failed every relay call)."""
    conn.execute("SET tistate.notify_events = 'relay'")
    uri = "s3://" + "\x01\x1f" * 747
    hostile = running_ti(conn, "hostile", [ALIAS])
    after = running_ti(conn, "after", [ALIAS])
    event = {"source_alias_name": "hostile", "dest_asset_key": {"name": "n" * 1000, "uri": uri}}
    assert succeed(conn, hostile, {"task_outlets": [ALIAS], "outlet_events": [event]})[0]
    plain = {"source_alias_name": "hostile", "dest_asset_key": {"name": "ok", "uri": "s3://ok"}}
    assert succeed(conn, after, {"task_outlets": [ALIAS], "outlet_events": [plain]})[0]
    with psycopg.connect(conn.info.dsn, autocommit=True) as listener:
        listener.execute("LISTEN tistate_events")
        assert conn.execute("SELECT tistate.relay_notifications()").fetchone() == (2,)
        heard = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    assert len(heard) == 2 and max(len(p) for p in heard) < 300
    assert conn.execute("SELECT transactions FROM tistate.notification_backlog()").fetchone() == (
        0,
    )
    # With notify_events = on too, the success commits.
    conn.execute("SET tistate.notify_events = 'on'")
    again = running_ti(conn, "again", [ALIAS])
    assert succeed(conn, again, {"task_outlets": [ALIAS], "outlet_events": [event]})[0]


@pytest.mark.both_flavors
@pytest.mark.parametrize(
    ("outlets", "events", "field"),
    [
        # 1,500 characters, 6,000 bytes: over one index entry (54000 before).
        (
            [ALIAS],
            [
                {
                    "source_alias_name": "hostile",
                    "dest_asset_key": {"name": "\U0001d49c" * 1500, "uri": "s3://x"},
                }
            ],
            "outlet_events[0].dest_asset_key.name",
        ),
        # name and uri fit alone, not together.
        (
            [ALIAS],
            [
                {
                    "source_alias_name": "hostile",
                    "dest_asset_key": {"name": "\u00e9" * 900, "uri": "s3://" + "u" * 1000},
                }
            ],
            "outlet_events[0].dest_asset_key.name",
        ),
        ([{"type": "AssetAlias", "name": "\u00e9" * 1400}], [], "task_outlets[0].name"),
    ],
    ids=["name-bytes", "name-and-uri-bytes", "alias-bytes"],
)
def test_names_beyond_an_index_entry_are_ts422(
    conn: psycopg.Connection[Any], outlets: list[Any], events: list[Any], field: str
) -> None:
    ti = running_ti(conn, "big", [ALIAS])
    payload = {
        "state": "success",
        "end_date": END,
        "task_outlets": outlets,
        "outlet_events": events,
    }
    assert sqlstate_and_field(
        conn, "SELECT tistate.ti_update_state(%s, %s)", [ti, Jsonb(payload)]
    ) == ("TS422", field)


def test_define_dag_ids_and_assets_are_limited_in_bytes(conn: psycopg.Connection[Any]) -> None:
    """Standalone only: define_dag is Airflow's DAG processor's job in Airflow mode (TS501)."""
    call = "SELECT tistate.define_dag(%s)"
    assert sqlstate_and_field(conn, call, [Jsonb({"dag_id": "\u00e9" * 200})]) == (
        "TS422",
        "dag_id",
    )
    big = {"type": "Asset", "name": "\u00e9" * 1000, "uri": "s3://" + "u" * 1000}
    document = {"dag_id": "d", "tasks": [{"task_id": "t", "outlets": [big]}]}
    assert sqlstate_and_field(conn, call, [Jsonb(document)]) == (
        "TS422",
        "tasks[0].outlets[0].name",
    )


@pytest.mark.both_flavors
def test_registration_is_capped_and_linear(conn: psycopg.Connection[Any]) -> None:
    """1,000 aliases with an event each register well inside a 5 s statement timeout (2,000 took
    1.4 s and 5,000 took 9.9 s before: quadratic); beyond the caps, TS422 before any work."""
    aliases = [{"type": "AssetAlias", "name": f"al{i}"} for i in range(1000)]
    events = [
        {"source_alias_name": f"al{i}", "dest_asset_key": {"name": f"a{i}", "uri": f"s3://a/{i}"}}
        for i in range(1000)
    ]
    ti = running_ti(conn, "wide", aliases)
    conn.execute("SET statement_timeout = '5s'")
    assert len(succeed(conn, ti, {"task_outlets": aliases, "outlet_events": events})[0]) == 1000
    conn.execute("RESET statement_timeout")
    other = running_ti(conn, "wider", aliases[:1])
    too_many_outlets = {"state": "success", "end_date": END, "task_outlets": aliases * 2}
    assert sqlstate_and_field(
        conn, "SELECT tistate.ti_update_state(%s, %s)", [other, Jsonb(too_many_outlets)]
    ) == ("TS422", "task_outlets")
    too_many_events = {
        "state": "success",
        "end_date": END,
        "task_outlets": aliases[:1],
        "outlet_events": events[:1] * 10001,
    }
    assert sqlstate_and_field(
        conn, "SELECT tistate.ti_update_state(%s, %s)", [other, Jsonb(too_many_events)]
    ) == ("TS422", "outlet_events")


@pytest.mark.both_flavors
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"state": "up_for_retry", "end_date": END, "retry_delay_seconds": -1},
            "retry_delay_seconds",
        ),
        (
            {"state": "up_for_retry", "end_date": END, "retry_delay_seconds": 1e300},
            "retry_delay_seconds",
        ),
        (
            {"state": "deferred", "classpath": "a.T", "next_method": "m", "trigger_timeout": -60},
            "trigger_timeout",
        ),
        (
            {
                "state": "deferred",
                "classpath": "a.T",
                "next_method": "m",
                "trigger_timeout": "-P1D",
            },
            "trigger_timeout",
        ),
    ],
    ids=["retry-negative", "retry-huge", "trigger-negative", "trigger-negative-iso"],
)
def test_delays_in_the_past_or_beyond_reason_are_ts422(
    conn: psycopg.Connection[Any], payload: dict[str, Any], field: str
) -> None:
    ti = running_ti(conn, "delay", [])
    assert sqlstate_and_field(
        conn, "SELECT tistate.ti_update_state(%s, %s)", [ti, Jsonb(payload)]
    ) == ("TS422", field)
    assert conn.execute("SELECT state FROM task_instance WHERE id = %s", [ti]).fetchone() == (
        "running",
    )
