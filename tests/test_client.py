"""The sync Client against the real database: each method, each error class, the schema-version
check, transaction() and the bounded pool."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tistate import Client, errors, migrate, models
from tistate.models import (
    AliasOutletEvent,
    AssetKey,
    AssetProfile,
    TIEnterRunningPayload,
    TISuccessStatePayload,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ORDERS = {"name": "orders", "uri": "s3://lake/orders"}
PRODUCER = {
    "dag_id": "producer",
    "owners": "data-team",
    "tasks": [
        {
            "task_id": "load",
            "max_tries": 2,
            "outlets": [
                {"type": "Asset", **ORDERS},
                {"type": "AssetAlias", "name": "daily-tables"},
            ],
        },
        {"task_id": "report"},
    ],
}
CONSUMER = {
    "dag_id": "consumer",
    "schedule": {"assets": [ORDERS], "aliases": ["daily-tables"]},
}


@pytest.fixture
def client(db_dsn: str) -> Iterator[Client]:
    with Client(db_dsn, max_size=4) as c:
        yield c


def _setup(client: Client, run_id: str = "run1") -> dict[str, UUID]:
    client.define_dag(PRODUCER)
    client.define_dag(CONSUMER)
    return {t.task_id: t.ti_id for t in client.create_dag_run("producer", run_id, now=NOW)}


def _running(client: Client, ti_id: UUID) -> models.RunContext:
    payload = TIEnterRunningPayload(hostname="w1", unixname="airflow", pid=42, start_date=NOW)
    return client.ti_run(ti_id, payload, now=NOW)


def _success(**extra: Any) -> TISuccessStatePayload:
    return TISuccessStatePayload(
        end_date=NOW + timedelta(seconds=5),
        task_outlets=[
            AssetProfile(type="Asset", **ORDERS),
            AssetProfile(type="AssetAlias", name="daily-tables"),
        ],
        **extra,
    )


def test_schema_version_matches_bundled_migrations(client: Client) -> None:
    assert client.schema_version() == migrate.latest_version()


def test_define_dag_and_create_run(client: Client) -> None:
    result = client.define_dag(models.DagDefinition.model_validate(PRODUCER))
    assert result.dag_id == "producer"
    assert result.tasks == ["load", "report"]
    assert [a.name for a in result.assets] == ["orders"]
    assert [a.name for a in result.aliases] == ["daily-tables"]
    tasks = client.create_dag_run("producer", "r1", conf={"k": 1}, now=NOW)
    assert sorted(t.task_id for t in tasks) == ["load", "report"]
    assert all(t.map_index == -1 and isinstance(t.ti_id, UUID) for t in tasks)


def test_ti_run_returns_run_context(client: Client) -> None:
    tis = _setup(client)
    context = _running(client, tis["load"])
    assert context.dag_run.dag_id == "producer"
    assert context.dag_run.run_id == "run1"
    assert context.max_tries == 2
    assert context.should_retry is True
    assert context.start_date == NOW


def test_success_with_alias_events_and_no_op_retry(client: Client, conn: Any) -> None:
    tis = _setup(client)
    _running(client, tis["load"])
    payload = _success(
        outlet_events=[
            AliasOutletEvent(
                source_alias_name="daily-tables",
                dest_asset_key=AssetKey(name="table-a", uri="s3://lake/a"),
                extra={"rows": 10},
            )
        ]
    )
    result = client.ti_update_state(tis["load"], payload, now=NOW)
    assert result.applied is True
    assert (result.previous_state, result.new_state) == ("running", "success")
    assert len(result.asset_event_ids) == 2
    assert result.queued_dag_ids == ["consumer"]
    assert result.lock_wait_ms is not None and result.lock_wait_ms >= 0
    # The retried call is the no-op: nothing duplicated, same events reported.
    again = client.ti_update_state(tis["load"], payload, now=NOW)
    assert again.applied is False
    assert again.asset_event_ids == result.asset_event_ids
    count = conn.execute("SELECT count(*) FROM tistate_test.asset_event").fetchone()[0]
    assert count == 2


def test_mapping_payloads_are_validated_in_python_first(client: Client) -> None:
    tis = _setup(client)
    with pytest.raises(errors.InvalidPayloadError) as caught:
        client.ti_update_state(tis["load"], {"state": "success", "end_date": "x", "bogus": 1})
    assert caught.value.sqlstate == "TS422"
    assert caught.value.field in {"end_date", "bogus"}
    with pytest.raises(errors.InvalidPayloadError) as caught:
        client.ti_update_state(tis["load"], {"state": "running"})
    assert caught.value.http_status == 422
    with pytest.raises(errors.InvalidPayloadError):
        client.ti_run("not-a-uuid", {"state": "running"})


def test_sql_validation_reports_the_field(client: Client) -> None:
    """A payload of the right shape that the SQL rejects (airflow:// uri) is TS422 from SQL."""
    tis = _setup(client)
    _running(client, tis["load"])
    payload = {
        "state": "success",
        "end_date": NOW.isoformat(),
        "task_outlets": [{"type": "Asset", "name": "x", "uri": "airflow://x"}],
    }
    with pytest.raises(errors.InvalidPayloadError) as caught:
        client.ti_update_state(tis["load"], payload)
    assert caught.value.field == "task_outlets[0].uri"
    assert isinstance(caught.value.__cause__, psycopg.Error)


def test_not_found(client: Client) -> None:
    with pytest.raises(errors.NotFoundError) as caught:
        client.ti_update_state(uuid4(), _success())
    assert caught.value.sqlstate == "TS404"
    assert caught.value.http_detail()["reason"] == "not_found"
    with pytest.raises(errors.NotFoundError):
        client.create_dag_run("nope", "r1")


def test_invalid_state_carries_previous_state(client: Client) -> None:
    tis = _setup(client)
    with pytest.raises(errors.InvalidStateError) as caught:
        client.ti_update_state(tis["load"], _success())
    assert caught.value.previous_state == "queued"
    assert caught.value.http_status == 409


def test_gone_for_an_archived_id(client: Client, conn: Any) -> None:
    tis = _setup(client)
    archived = uuid4()
    conn.execute(
        "INSERT INTO task_instance_history (task_instance_id, task_id, dag_id, run_id,"
        " try_number, pool, pool_slots) VALUES (%s, 'load', 'producer', 'run1', 0, 'p', 1)",
        (archived,),
    )
    assert tis
    with pytest.raises(errors.GoneError) as caught:
        client.ti_update_state(archived, _success())
    assert caught.value.http_status == 410


def test_lock_timeout_is_retryable(client: Client, db_dsn: str) -> None:
    tis = _setup(client)
    _running(client, tis["load"])
    with psycopg.connect(db_dsn) as holder:
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (tis["load"],))
        with pytest.raises(errors.LockTimeoutError) as caught:
            client.ti_update_state(tis["load"], _success(), lock_timeout=0.05)
        holder.rollback()
    assert caught.value.retryable and caught.value.sqlstate == "55P03"
    # Nothing was changed: the call can be retried and applies.
    assert client.ti_update_state(tis["load"], _success()).applied


def test_transaction_groups_calls_and_rolls_back(client: Client, conn: Any) -> None:
    client.define_dag(PRODUCER)
    with client.transaction() as tx:
        tx.create_dag_run("producer", "together", now=NOW)
        seen = tx.ti_list(dag_id="producer") if _has_reads(conn) else None
        if seen is not None:
            assert len(seen) == 2
    assert conn.execute("SELECT count(*) FROM dag_run").fetchone()[0] == 1

    class Boom(Exception):
        pass

    with pytest.raises(Boom), client.transaction() as tx:
        tx.create_dag_run("producer", "rolled-back", now=NOW)
        raise Boom
    runs = conn.execute("SELECT run_id FROM dag_run ORDER BY 1").fetchall()
    assert runs == [("together",)]

    # An error inside the transaction rolls back the earlier calls too.
    with pytest.raises(errors.NotFoundError), client.transaction() as tx:
        tx.create_dag_run("producer", "half", now=NOW)
        tx.create_dag_run("missing", "half", now=NOW)
    assert conn.execute("SELECT count(*) FROM dag_run").fetchone()[0] == 1


def _has_reads(conn: Any) -> bool:
    return bool(conn.execute("SELECT to_regproc('tistate.ti_list') IS NOT NULL").fetchone()[0])


def test_pool_exhausted_is_bounded_and_retryable(db_dsn: str) -> None:
    with Client(db_dsn, min_size=1, max_size=1, timeout=0.2) as client:
        assert client.pool is not None
        with client.pool.connection(), pytest.raises(errors.PoolExhaustedError) as caught:
            client.schema_version()
        assert caught.value.retryable and caught.value.http_status == 503
        assert client.schema_version() == migrate.latest_version()


def test_prepare_threshold_none_for_pgbouncer(db_dsn: str) -> None:
    with Client(db_dsn, prepare_threshold=None) as client:
        for _ in range(8):
            client.schema_version()
        assert client.pool is not None
        with client.pool.connection() as conn:
            assert conn.prepare_threshold is None
            prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            assert prepared == (0,)


def test_wrapping_an_existing_connection(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        client = Client(connection=conn)
        client.open()
        assert client.schema_version() == migrate.latest_version()
        assert client.pool is None


def test_schema_outdated_when_database_is_behind(empty_db_dsn: str) -> None:
    with pytest.raises(errors.SchemaOutdatedError) as caught:
        Client.connect(empty_db_dsn)
    assert "tistate db migrate" in (caught.value.hint or "")
    migrate.migrate(empty_db_dsn, target=migrate.latest_version() - 1)
    with pytest.raises(errors.SchemaOutdatedError) as caught:
        Client.connect(empty_db_dsn)
    assert caught.value.detail["expected"] == migrate.latest_version()
    assert caught.value.detail["found"] == migrate.latest_version() - 1
    assert caught.value.hint == "run `tistate db migrate`"
    migrate.migrate(empty_db_dsn)
    Client.connect(empty_db_dsn).close()


def test_unreachable_database_is_a_connection_error() -> None:
    with pytest.raises(errors.ConnectionLostError):
        Client.connect("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_database_url_from_environment(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TISTATE_DATABASE_URL", db_dsn)
    with Client() as client:
        assert client.conninfo == db_dsn
        assert client.schema_version() == migrate.latest_version()


def test_heartbeat_and_its_errors(client: Client) -> None:
    tis = _setup(client)
    _running(client, tis["load"])
    assert client.ti_heartbeat(tis["load"], "w1", 42, now=NOW + timedelta(seconds=1)) is None
    with pytest.raises(errors.InvalidStateError) as caught:
        client.ti_heartbeat(tis["load"], "elsewhere", 7)
    assert caught.value.detail["reason"] == "running_elsewhere"
    assert caught.value.detail["current_hostname"] == "w1"
    with pytest.raises(errors.NotFoundError):
        client.ti_heartbeat(uuid4(), "w1", 42)


def test_queue_mark_and_skip_downstream(client: Client, conn: Any) -> None:
    tis = _setup(client)
    marked = client.ti_mark(tis["report"], "none", reason="reset by operator", now=NOW)
    assert (marked.previous_state, marked.new_state, marked.applied) == ("queued", None, True)
    queued = client.ti_queue(tis["report"], now=NOW)
    assert (queued.previous_state, queued.new_state, queued.applied) == (None, "queued", True)
    assert client.ti_queue(tis["report"]).applied is False
    with pytest.raises(errors.InvalidPayloadError) as caught:
        client.ti_mark(tis["report"], "success", reason=" ")
    assert caught.value.field == "reason"
    _running(client, tis["load"])
    assert client.ti_skip_downstream(tis["load"], ["report"], now=NOW) == 1
    state = conn.execute("SELECT state FROM task_instance WHERE id = %s", (tis["report"],))
    assert state.fetchone() == ("skipped",)
    # A running task instance is never skipped ([task_id, map_index] form).
    assert client.ti_skip_downstream(tis["load"], [("load", -1)]) == 0


def test_emit_asset_event_queues_consumers(client: Client) -> None:
    _setup(client)
    result = client.emit_asset_event("orders", extra={"source": "manual"}, now=NOW)
    assert result.asset_event_id > 0
    assert result.queued_dag_ids == ["consumer"]
    with pytest.raises(errors.NotFoundError):
        client.emit_asset_event("no-such-asset")
    events = client.asset_events(name="orders")
    assert events[0].id == result.asset_event_id
    assert events[0].extra == {"source": "manual"}
    assert events[0].ti_id is None


def test_read_methods(client: Client) -> None:
    tis = _setup(client)
    _running(client, tis["load"])
    client.ti_update_state(
        tis["load"],
        _success(
            outlet_events=[
                AliasOutletEvent(
                    source_alias_name="daily-tables",
                    dest_asset_key=AssetKey(name="table-a", uri="s3://lake/a"),
                )
            ]
        ),
    )
    detail = client.ti_get(tis["load"])
    assert detail.task_instance["state"] == "success"
    assert sorted(e.name for e in detail.asset_events) == ["orders", "table-a"]
    assert [link["alias"] for link in detail.alias_links] == ["daily-tables"]
    assert {q["target_dag_id"] for q in detail.queued_consumers} == {"consumer"}
    assert [row["event"] for row in detail.log] == ["success", "running"]
    assert len(client.ti_get(tis["load"], log_limit=1).log) == 1

    listed = client.ti_list(dag_id="producer")
    assert [(t.task_id, t.state) for t in listed] == [("load", "success"), ("report", "queued")]
    assert [t.task_id for t in client.ti_list(state="queued")] == ["report"]
    assert len(client.ti_list(limit=1)) == 1
    with pytest.raises(errors.InvalidPayloadError):
        client.ti_list(limit=-1)

    dags = {d.dag_id: d for d in client.dag_list()}
    assert dags["producer"].task_count == 2 and dags["producer"].run_count == 1
    assert dags["consumer"].schedule["aliases"] == ["daily-tables"]

    assets = {a.name: a for a in client.asset_list()}
    assert assets["table-a"].aliases == ["daily-tables"]
    assert assets["orders"].queued_for == ["consumer"]
    assert assets["orders"].event_count == 1

    assert len(client.asset_events(ti_id=tis["load"])) == 2
    with pytest.raises(errors.NotFoundError):
        client.asset_events(name="unknown")
