"""Event notifications through the outbox (tistate.notify_events = relay), over real connections.

Listeners hear an event only after the transition committed AND a relay ran, exactly once, with
the same message as direct notifications; uncommitted outbox rows are invisible to a relay; two
relays never send a row twice; a relay that rolls back leaves its rows for the next. Then the relay
loop of the library, the one `tistate serve` runs, and `tistate relay --once`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from typer.testing import CliRunner

from http_support import Dags, auth, running_server, success_payload
from tistate.cli import app as cli_app
from tistate.relay import NotificationRelay

ORDERS = {"name": "orders", "uri": "s3://lake/orders"}
OUTLETS = [{"type": "Asset", **ORDERS}]
EVENTS = [{"dest_asset_key": ORDERS, "extra": {"n": 1}}]


@pytest.fixture
def dags(db_dsn: str) -> Dags:
    return Dags(db_dsn)


@pytest.fixture
def listener(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("LISTEN tistate_events")
        yield conn


def heard(listener: psycopg.Connection[Any], expect: int, timeout: float = 5.0) -> list[Any]:
    """The notifications that arrive (waits for `expect` of them, at most `timeout` s)."""
    if expect == 0:
        return [json.loads(n.payload) for n in listener.notifies(timeout=0.3)]
    return [json.loads(n.payload) for n in listener.notifies(timeout=timeout, stop_after=expect)]


def succeed(conn: psycopg.Connection[Any], ti_id: UUID, mode: str) -> list[int]:
    conn.execute("SELECT set_config('tistate.notify_events', %s, false)", (mode,))
    body = {**success_payload(outlet_events=EVENTS), "task_outlets": OUTLETS}
    row = conn.execute(
        "SELECT asset_event_ids FROM tistate.ti_update_state(%s, %s)",
        (ti_id, psycopg.types.json.Jsonb(body)),
    ).fetchone()
    assert row is not None
    return list(row[0])


def relay(dsn: str, limit: int = 1000) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT tistate.relay_notifications(%s)", (limit,)).fetchone()
    assert row is not None
    return int(row[0])


def test_relay_sends_after_commit_the_same_message_as_direct_notify(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any]
) -> None:
    direct_ti, relayed_ti = dags.running(), dags.running()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        [direct_event] = succeed(conn, direct_ti, "on")
        [direct] = heard(listener, 1)

        with conn.transaction():
            [event_id] = succeed(conn, relayed_ti, "relay")
            assert relay(db_dsn) == 0, "an uncommitted outbox row is invisible to the relay"
        assert heard(listener, 0) == [], "committed, but nothing is announced before a relay"

    assert relay(db_dsn) == 1
    [message] = heard(listener, 1)
    assert direct == {**message, "event_id": direct_event, "ti_id": str(direct_ti)}
    assert message == {
        "event_id": event_id,
        "asset_id": direct["asset_id"],
        "ti_id": str(relayed_ti),
        "partition_key": None,
    }
    assert relay(db_dsn) == 0, "sent once"
    assert heard(listener, 0) == []


def test_rolled_back_transition_is_never_announced(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any]
) -> None:
    ti = dags.running()
    with psycopg.connect(db_dsn) as conn:
        succeed(conn, ti, "relay")
        conn.rollback()
    assert relay(db_dsn) == 0
    assert heard(listener, 0) == []


def test_two_relays_never_send_a_row_twice_and_a_failed_relay_leaves_it(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        first = succeed(conn, dags.running(), "relay")
        second = succeed(conn, dags.running(), "relay")

    with psycopg.connect(db_dsn) as a, psycopg.connect(db_dsn) as b:
        a.execute("SET lock_timeout = '1s'")
        b.execute("SET lock_timeout = '1s'")
        # Relay a takes the older row and has not committed; relay b skips it, takes the other.
        assert a.execute("SELECT tistate.relay_notifications(1)").fetchone() == (1,)
        assert b.execute("SELECT tistate.relay_notifications(1000)").fetchone() == (1,)
        b.commit()
        assert [m["event_id"] for m in heard(listener, 1)] == second
        a.rollback()  # relay a failed: its row stays
    assert heard(listener, 0) == []
    assert relay(db_dsn) == 1
    assert [m["event_id"] for m in heard(listener, 1)] == first
    assert relay(db_dsn) == 0


def test_relay_loop_announces_and_drains_on_stop(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any]
) -> None:
    ti = dags.running()

    async def scenario() -> int:
        stop = asyncio.Event()
        loop = NotificationRelay(db_dsn, interval=0.05)
        task = asyncio.create_task(loop.run(stop))
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            event_ids = await asyncio.to_thread(succeed, conn, ti, "relay")
        messages = await asyncio.to_thread(heard, listener, 1)
        assert [m["event_id"] for m in messages] == event_ids
        stop.set()
        await asyncio.wait_for(task, 10)
        return loop.sent

    assert asyncio.run(scenario()) == 1
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT * FROM tistate.notification_backlog()").fetchone() == (0, None)


def test_relay_loop_survives_an_unreachable_database() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        loop = NotificationRelay(
            "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1", max_backoff=0.1
        )
        task = asyncio.create_task(loop.run(stop))
        await asyncio.sleep(0)  # let it try (and fail) at least once
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())


def test_the_service_relays_by_default(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any], tmp_path: Path
) -> None:
    ti = dags.running()
    with running_server(db_dsn, tmp_path / "server.log") as server, server.client() as http:
        body = {**success_payload(outlet_events=EVENTS), "task_outlets": OUTLETS}
        response = http.patch(f"/execution/task-instances/{ti}/state", json=body, headers=auth(ti))
        assert response.status_code == 204
        messages = heard(listener, 1)
    assert [(m["ti_id"], m["partition_key"]) for m in messages] == [(str(ti), None)]
    assert set(messages[0]) == {"event_id", "asset_id", "ti_id", "partition_key"}  # ids only


def test_cli_relay_once_drains_the_outbox(
    db_dsn: str, dags: Dags, listener: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        succeed(conn, dags.running(), "relay")
        succeed(conn, dags.running(), "relay")
    result = CliRunner().invoke(cli_app, ["relay", "--once", "--json", "--database-url", db_dsn])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sent"] == 2
    assert out["backlog"]["transactions"] == 0
    assert len(heard(listener, 2)) == 2
