"""Apache Airflow's own Task SDK HTTP client against the tistate server: run, heartbeat, success
with asset and alias outlet events, then the rows in the database. Also the SDK's reading of our
error bodies (TaskAlreadyRunningError, ServerResponseError.detail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.api.client import Client as SdkClient
from airflow.sdk.api.client import ServerResponseError, get_hostname
from airflow.sdk.api.datamodels._generated import AssetProfile, TIRunContext
from airflow.sdk.exceptions import TaskAlreadyRunningError

from http_support import NOW, Dags, Server, mint, running_server


@pytest.fixture
def server(db_dsn: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(db_dsn, tmp_path / "server.log") as srv:
        yield srv


def sdk(server: Server, ti_id: Any) -> SdkClient:
    return SdkClient(base_url=f"{server.url}/execution", token=mint(ti_id))


def test_task_sdk_client_runs_heartbeats_and_succeeds_with_events(
    server: Server, db_dsn: str, conn: psycopg.Connection[Any]
) -> None:
    dags = Dags(db_dsn)
    ti_id = dags.queued()
    pid = os.getpid()
    with sdk(server, ti_id) as client:
        context = client.task_instances.start(ti_id, pid, NOW)
        assert isinstance(context, TIRunContext)
        assert context.dag_run.dag_id == "producer"
        assert context.max_tries == 1

        client.task_instances.heartbeat(ti_id, pid)

        client.task_instances.succeed(
            ti_id,
            when=NOW + timedelta(minutes=5),
            task_outlets=[
                AssetProfile(name="orders", uri="s3://lake/orders", type="Asset"),
                AssetProfile(name="daily-tables", type="AssetAlias"),
            ],
            outlet_events=[
                {
                    "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"},
                    "extra": {"rows": 10},
                },
                {
                    "source_alias_name": "daily-tables",
                    "dest_asset_key": {"name": "daily/2025-06-01", "uri": "s3://lake/daily/1"},
                    "dest_asset_extra": {},
                    "extra": {"via": "alias"},
                },
            ],
            rendered_map_index=None,
        )

    ti = conn.execute(
        "SELECT state, hostname, pid, unixname, start_date, end_date, last_heartbeat_at "
        "FROM task_instance WHERE id = %s",
        (ti_id,),
    ).fetchone()
    assert ti is not None
    state, hostname, row_pid, unixname, start_date, end_date, heartbeat = ti
    assert (state, hostname, row_pid) == ("success", get_hostname(), pid)
    assert unixname
    assert start_date == NOW
    assert end_date == NOW + timedelta(minutes=5)
    assert heartbeat is not None

    events = conn.execute(
        "SELECT a.name, e.extra, e.source_dag_id, e.source_task_id "
        "FROM tistate_test.asset_event AS e JOIN asset AS a ON a.id = e.asset_id "
        "WHERE e.ti_id = %s ORDER BY a.name",
        (ti_id,),
    ).fetchall()
    assert events == [
        ("daily/2025-06-01", {"via": "alias"}, "producer", "t0"),
        ("orders", {"rows": 10}, "producer", "t0"),
    ]
    links = conn.execute(
        "SELECT al.name, a.name FROM asset_alias_asset_event AS l "
        "JOIN asset_alias AS al ON al.id = l.alias_id "
        "JOIN tistate_test.asset_event AS e ON e.id = l.event_id "
        "JOIN asset AS a ON a.id = e.asset_id WHERE e.ti_id = %s",
        (ti_id,),
    ).fetchall()
    assert links == [("daily-tables", "daily/2025-06-01")]
    alias_assets = conn.execute(
        "SELECT al.name, a.name FROM asset_alias_asset AS x "
        "JOIN asset_alias AS al ON al.id = x.alias_id "
        "JOIN asset AS a ON a.id = x.asset_id"
    ).fetchall()
    assert ("daily-tables", "daily/2025-06-01") in alias_assets
    queued = conn.execute(
        "SELECT q.target_dag_id, a.name FROM asset_dag_run_queue AS q "
        "JOIN asset AS a ON a.id = q.asset_id"
    ).fetchall()
    assert queued == [("consumer", "orders")]
    audit = [
        row[0]
        for row in conn.execute(
            "SELECT l.event FROM log AS l JOIN task_instance AS ti "
            "ON (ti.dag_id, ti.task_id, ti.run_id, ti.map_index) "
            "= (l.dag_id, l.task_id, l.run_id, l.map_index) WHERE ti.id = %s ORDER BY l.id",
            (ti_id,),
        ).fetchall()
    ]
    assert audit == ["running", "success"]


def test_task_sdk_client_reads_our_error_bodies(server: Server, db_dsn: str) -> None:
    dags = Dags(db_dsn)
    ti_id = dags.running(hostname="another-host", pid=1)
    with sdk(server, ti_id) as client:
        # Airflow's client recognises our 409 body as "already running".
        with pytest.raises(TaskAlreadyRunningError):
            client.task_instances.start(ti_id, os.getpid(), NOW)
        # A 409 on heartbeat from another host: the detail dict reaches the SDK intact.
        with pytest.raises(ServerResponseError) as raised:
            client.task_instances.heartbeat(ti_id, os.getpid())
    assert raised.value.response.status_code == 409
    assert isinstance(raised.value.detail, dict)
    assert raised.value.detail["reason"] == "running_elsewhere"
    assert raised.value.detail["current_hostname"] == "another-host"

    other = dags.queued()
    with sdk(server, ti_id) as client, pytest.raises(ServerResponseError) as forbidden:
        client.task_instances.start(other, os.getpid(), NOW)
    assert forbidden.value.response.status_code == 403
