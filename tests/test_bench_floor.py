"""The bench's floor (bench/floor.py) writes what ti_update_state writes for the bench payload.

The floor is only a floor if it does the function's work and nothing less: per completion the same
rows inserted and updated by table (pg_stat_xact_user_tables inside each transaction), the same
events with the same extras, links, queue rows and audit row, and bench/verify.py passes on both.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's bench package

from bench.common import asset, expected_events
from bench.floor import FLOOR_STATEMENT
from bench.seed import BENCH_SCHEMA_SQL, _define_dags, prepare_batch
from bench.verify import verify_batch

from conftest import dsn_for

WRITES_SQL = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables
WHERE schemaname = 'tistate' AND n_tup_ins + n_tup_upd + n_tup_del > 0
"""
FUNCTION_SQL = (
    "SELECT (r).applied FROM bench.ti_map AS m, "
    "LATERAL tistate.ti_update_state(p_ti_id => m.ti_id, p_payload => m.payload) AS r "
    "WHERE m.batch_id = %(batch)s AND m.rn = %(rn)s"
)
FLOOR_SQL = FLOOR_STATEMENT.replace(":batch", "%(batch)s").replace(":rn", "%(rn)s")
EVENTS_SQL = """
SELECT m.rn, a.name, e.extra::text, e.source_dag_id, e.source_task_id, e.partition_key,
       ARRAY(SELECT al.name FROM tistate.asset_alias_asset_event AS l
             JOIN tistate.asset_alias AS al ON al.id = l.alias_id WHERE l.event_id = e.id)
FROM bench.ti_map AS m
JOIN tistate.asset_event_producer AS p ON p.ti_id = m.ti_id
JOIN tistate.asset_event AS e ON e.id = p.event_id
JOIN tistate.asset AS a ON a.id = e.asset_id
WHERE m.batch_id = %s ORDER BY m.rn, e.id
"""


@pytest.fixture
def bench_db(db_name: str) -> Iterator[str]:
    """A fresh tistate database with the bench's DAGs, in the service's notify mode."""
    with psycopg.connect(dsn_for(db_name), autocommit=True) as conn:
        conn.execute(BENCH_SCHEMA_SQL)
        _define_dags(conn)
        conn.execute(f"ALTER DATABASE \"{db_name}\" SET tistate.notify_events = 'relay'")
    yield db_name


def _complete(dbname: str, sql: str, batch: int, rn: int) -> dict[str, tuple[int, int, int]]:
    """One completion in its own transaction; the rows it wrote, by table."""
    with psycopg.connect(dsn_for(dbname)) as conn, conn.transaction():
        row = conn.execute(sql, {"batch": batch, "rn": rn}).fetchone()
        assert row is not None and row[0] in (True, 1)
        writes = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(WRITES_SQL)}
    # Queue rows are upserts: whichever of the two goes first inserts them, the other updates.
    ins, upd, dele = writes.pop("asset_dag_run_queue", (0, 0, 0))
    writes["asset_dag_run_queue upserted"] = (ins + upd, 0, dele)
    return writes


def _events(conn: psycopg.Connection[Any], batch: int) -> list[tuple[Any, ...]]:
    return [r[:3] + r[5:6] + (sorted(r[6]),) for r in conn.execute(EVENTS_SQL, (batch,))]


def test_the_floor_writes_the_functions_rows(bench_db: str) -> None:
    n = 6
    fn_batch = prepare_batch(bench_db, n, "function")
    floor_batch = prepare_batch(bench_db, n, "floor")
    with psycopg.connect(dsn_for(bench_db), autocommit=True) as conn:
        conn.execute("DELETE FROM tistate.asset_dag_run_queue")
    for rn in range(1, n + 1):
        # The floor goes second for one rn, then first for the next.
        order = [("fn", FUNCTION_SQL, fn_batch), ("floor", FLOOR_SQL, floor_batch)]
        if rn % 2 == 0:
            order.reverse()
        writes = {name: _complete(bench_db, sql, batch.id, rn) for name, sql, batch in order}
        for w in writes.values():  # new pairs only (ON CONFLICT DO NOTHING): see the next test
            w.pop("asset_alias_asset", None)
        assert writes["floor"] == writes["fn"], rn
        assert writes["floor"]["task_instance"] == (0, 1, 0)
        assert writes["floor"]["asset_event"] == (6, 0, 0)
        assert writes["floor"]["asset_event_outbox"] == (1, 0, 0)
        assert writes["floor"]["asset_dag_run_queue upserted"] == (11, 0, 0)
    with psycopg.connect(dsn_for(bench_db), autocommit=True) as conn:
        # Same events, extras and alias links per task instance (the runs differ, nothing else).
        assert _events(conn, floor_batch.id) == _events(conn, fn_batch.id)
        assert len(_events(conn, floor_batch.id)) == 6 * n
        # What a relay does: announce (one notification per event) and delete the outbox rows.
        assert conn.execute("SELECT tistate.relay_notifications()").fetchone() == (6 * 2 * n,)
    done = set(range(1, n + 1))
    for batch in (fn_batch, floor_batch):
        report = verify_batch(bench_db, batch.id, done)
        assert report["ok"], report
        assert report["success_in_db"] == n and report["events_expected"] == 6 * n


def test_the_floor_finishes_a_task_instance_once_and_links_aliases(bench_db: str) -> None:
    batch = prepare_batch(bench_db, 2, "floor-twice")
    with psycopg.connect(dsn_for(bench_db), autocommit=True) as conn:
        assert conn.execute(FLOOR_SQL, {"batch": batch.id, "rn": 1}).fetchone() == (1,)
        # Not running any more: nothing updated, nothing written.
        assert conn.execute(FLOOR_SQL, {"batch": batch.id, "rn": 1}).fetchone() == (0,)
        events = conn.execute("SELECT count(*) FROM tistate.asset_event").fetchone()
        assert events == (6,)
        assert conn.execute("SELECT count(*) FROM tistate.asset_event_outbox").fetchone() == (1,)
        # On a fresh database it links each alias to the assets it reached, as the function does.
        pairs = conn.execute(
            "SELECT al.name, a.name FROM tistate.asset_alias_asset AS l "
            "JOIN tistate.asset_alias AS al ON al.id = l.alias_id "
            "JOIN tistate.asset AS a ON a.id = l.asset_id"
        ).fetchall()
        want = {(alias, asset(k).name) for k, alias in expected_events(1) if alias is not None}
        assert set(pairs) == want and len(pairs) == 5
