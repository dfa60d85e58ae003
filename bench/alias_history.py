"""Does a success's cost depend on its alias's event history? (issue 2, "Done means").

In one run: a scratch database is migrated, an alias "big" gets 1,000,000 linked events (seeded
set-based with generate_series), an alias "empty" gets none, and N successes with 1 direct event and
5 alias events are timed on each alias, alternating, server-side (clock_timestamp() around the
ti_update_state call inside the database; the commit is not included). Prints medians.

    python -m bench alias-history --database-url postgresql://postgres@127.0.0.1:5432/postgres

--database-url names any database of the server: the scratch database is created next to it and
dropped afterwards (--keep keeps it).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from tistate import migrate

ALIASES = ("big", "empty")
ALIAS_EVENTS = 5
HISTORY_ASSETS = 1000

TIMED_CALL = """
CREATE FUNCTION pg_temp.timed_success(p_ti_id uuid, p_payload jsonb)
RETURNS double precision
LANGUAGE plpgsql
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_result  tistate.state_update_result;
BEGIN
    v_result := tistate.ti_update_state(p_ti_id => p_ti_id, p_payload => p_payload);
    IF NOT v_result.applied OR cardinality(v_result.asset_event_ids) <> 1 + %(alias_events)s THEN
        RAISE EXCEPTION 'unexpected result %%', v_result;
    END IF;
    RETURN extract(epoch FROM clock_timestamp() - v_started) * 1000;
END
$$
"""


def payload(alias: str) -> Jsonb:
    return Jsonb(
        {
            "state": "success",
            "end_date": "2025-01-01T00:01:00Z",
            "task_outlets": [
                {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
                {"type": "AssetAlias", "name": alias},
            ],
            "outlet_events": [
                {"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {}},
                *(
                    {
                        "source_alias_name": alias,
                        "dest_asset_key": {
                            "name": f"{alias}-t{k}",
                            "uri": f"s3://tables/{alias}/{k}",
                        },
                        "extra": {"k": k},
                    }
                    for k in range(ALIAS_EVENTS)
                ),
            ],
        }
    )


def seed(conn: psycopg.Connection[Any], calls: int, history: int) -> dict[str, list[uuid.UUID]]:
    """DAGs, assets, the alias history and `calls` running task instances per alias."""
    for alias in ALIASES:
        tables = [
            {"name": f"{alias}-t{k}", "uri": f"s3://tables/{alias}/{k}"}
            for k in range(ALIAS_EVENTS)
        ]
        for dag in (
            {"dag_id": f"consumer_{alias}", "schedule": {"aliases": [alias]}},
            # the alias's target assets exist and are active before the first call
            {"dag_id": f"tables_{alias}", "is_paused": True, "schedule": {"assets": tables}},
        ):
            conn.execute("SELECT tistate.define_dag(p_dag => %s)", [Jsonb(dag)])
    conn.execute(
        "SELECT tistate.define_dag(p_dag => %s)",
        [
            Jsonb(
                {
                    "dag_id": "consumer_orders",
                    "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]},
                }
            )
        ],
    )
    conn.execute(
        "SELECT tistate.define_dag(p_dag => %s)",
        [
            Jsonb(
                {
                    "dag_id": "producer",
                    # A task writes events only for the outlets its DAG declares (TS403).
                    "tasks": [
                        {
                            "task_id": "load",
                            "outlets": [
                                {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
                                *({"type": "AssetAlias", "name": a} for a in ALIASES),
                            ],
                        }
                    ],
                }
            )
        ],
    )

    # History: `history` events on HISTORY_ASSETS assets, every one linked to alias "big".
    started = time.monotonic()
    conn.execute(
        'INSERT INTO tistate.asset (name, uri, "group", extra, created_at, updated_at)'
        " SELECT 'history-' || i, 's3://history/' || i, 'asset', '{}', now(), now()"
        " FROM generate_series(1, %s) AS i",
        [HISTORY_ASSETS],
    )
    conn.execute(
        "INSERT INTO tistate.asset_alias_asset (alias_id, asset_id)"
        " SELECT al.id, a.id FROM tistate.asset_alias AS al, tistate.asset AS a"
        " WHERE al.name = 'big' AND a.name LIKE 'history-%%'"
    )
    conn.execute(
        "INSERT INTO tistate.asset_event (asset_id, extra, source_task_id, source_dag_id,"
        '  source_run_id, source_map_index, "timestamp")'
        " SELECT a.id, jsonb_build_object('i', i), 'load', 'old_producer',"
        "        'old_run_' || (i / 1000), -1, timestamptz '2024-01-01' + i * interval '1 second'"
        " FROM generate_series(1, %s) AS i"
        " JOIN tistate.asset AS a ON a.name = 'history-' || (1 + i %% %s)",
        [history, HISTORY_ASSETS],
    )
    conn.execute(
        "INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)"
        " SELECT al.id, e.id FROM tistate.asset_alias AS al, tistate.asset_event AS e"
        " WHERE al.name = 'big' AND e.source_dag_id = 'old_producer'"
    )
    print(f"seeded {history:,} linked events in {time.monotonic() - started:.1f}s")

    tis: dict[str, list[uuid.UUID]] = {alias: [] for alias in ALIASES}
    running = Jsonb(
        {
            "state": "running",
            "hostname": "bench",
            "unixname": "bench",
            "pid": 1,
            "start_date": "2025-01-01T00:00:00Z",
        }
    )
    for i in range(calls * len(ALIASES)):
        row = conn.execute(
            "SELECT ti_id FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => %s)",
            [f"run_{i}"],
        ).fetchone()
        assert row is not None
        conn.execute("SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)", [row[0], running])
        tis[ALIASES[i % len(ALIASES)]].append(row[0])
    conn.execute("ANALYZE")
    return tis


def linked_events(conn: psycopg.Connection[Any], alias: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM tistate.asset_alias_asset_event AS l"
        " JOIN tistate.asset_alias AS al ON al.id = l.alias_id WHERE al.name = %s",
        [alias],
    ).fetchone()
    assert row is not None
    return int(row[0])


def measure(dsn: str, calls: int, history: int) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET tistate.notify_events = on")
        tis = seed(conn, calls, history)
        before = {alias: linked_events(conn, alias) for alias in ALIASES}
        conn.execute(TIMED_CALL % {"alias_events": ALIAS_EVENTS})
        timings: dict[str, list[float]] = {alias: [] for alias in ALIASES}
        for i in range(calls):
            # alternate, so drift (autovacuum, caches, other load) hits both sides alike
            order = ALIASES if i % 2 == 0 else ALIASES[::-1]
            for alias in order:
                row = conn.execute(
                    "SELECT pg_temp.timed_success(%s, %s)", [tis[alias][i], payload(alias)]
                ).fetchone()
                assert row is not None
                timings[alias].append(float(row[0]))
        after = {alias: linked_events(conn, alias) for alias in ALIASES}
    result: dict[str, Any] = {"calls_per_alias": calls, "history": history}
    for alias in ALIASES:
        values = sorted(timings[alias])
        result[alias] = {
            "linked_events_before": before[alias],
            "linked_events_after": after[alias],
            "median_ms": round(statistics.median(values), 3),
            "p90_ms": round(values[int(0.9 * (len(values) - 1))], 3),
            "mean_ms": round(statistics.fmean(values), 3),
            "min_ms": round(values[0], 3),
        }
    result["median_ratio_big_over_empty"] = round(
        result["big"]["median_ms"] / result["empty"]["median_ms"], 3
    )
    return result


def run(database_url: str, *, calls: int, history: int, keep: bool, as_json: bool) -> None:
    """Create the scratch database beside `database_url`, measure, print, drop it (unless keep)."""
    scratch = f"tistate_bench_alias_{os.getpid()}"
    params = conninfo_to_dict(database_url)
    admin_dsn = make_conninfo(**params)  # type: ignore[arg-type]
    params["dbname"] = scratch
    scratch_dsn = make_conninfo(**params)  # type: ignore[arg-type]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        migrate.migrate(scratch_dsn)
        result = measure(scratch_dsn, calls, history)
    finally:
        if not keep:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"success with 1 direct + {ALIAS_EVENTS} alias events, {calls} calls per alias,"
        " server-side ms"
    )
    print(
        f"{'alias':<8}{'linked events before':>22}{'median':>10}{'p90':>10}{'mean':>10}{'min':>10}"
    )
    for alias in ALIASES:
        r = result[alias]
        print(
            f"{alias:<8}{r['linked_events_before']:>22,}{r['median_ms']:>10.3f}{r['p90_ms']:>10.3f}"
            f"{r['mean_ms']:>10.3f}{r['min_ms']:>10.3f}"
        )
    print(f"median ratio big/empty: {result['median_ratio_big_over_empty']}")


if __name__ == "__main__":  # `python -m bench.alias_history ...`, its name before bench.cli
    from bench.cli import app

    app(["alias-history", *sys.argv[1:]], prog_name="python -m bench")
