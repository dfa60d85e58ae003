"""Seeder: benchmark databases with DAGs, assets, aliases, alias history and running TIs.

Set-based SQL as the database owner, plus the public functions where they fit: define_dag for every
DAG, create_dag_run and ti_run for the first task instance of a batch, one INSERT ... SELECT
generate_series for the rest (the set-based equivalent of N create_dag_run/ti_run calls).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import (
    ALIASES,
    HOSTNAME,
    N_ASSETS,
    PAUSED_CONSUMER,
    PID,
    PRODUCER_DAG,
    PRODUCER_TASK,
    alias_consumer_dag,
    asset,
    consumer_dag,
    db_name,
    dsn,
    success_payload,
)
from tistate.migrate import MigrationError, migrate

HISTORY_CHUNK = 100_000

BENCH_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS bench.batch (
    id         serial PRIMARY KEY,
    label      text NOT NULL,
    n          integer NOT NULL,
    run_id     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Task instances of a batch by row number: the load generator and pgbench read the same rows.
CREATE TABLE IF NOT EXISTS bench.ti_map (
    batch_id integer NOT NULL REFERENCES bench.batch (id),
    rn       integer NOT NULL,
    ti_id    uuid NOT NULL,
    payload  jsonb NOT NULL,
    PRIMARY KEY (batch_id, rn)
);
"""


@dataclass(frozen=True)
class Batch:
    """N running task instances of one producer DAG run, numbered 1..N."""

    id: int
    dbname: str
    run_id: str
    ti_ids: list[uuid.UUID]  # index rn - 1

    @property
    def n(self) -> int:
        return len(self.ti_ids)


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(dsn("postgres"), autocommit=True)


def _exists(dbname: str) -> bool:
    with _admin() as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            is not None
        )


def _create(dbname: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
        # Per-function call counts and times (pg_stat_user_functions) for the server-side profile.
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET track_functions = 'pl'")


def _meta(conn: psycopg.Connection[Any], key: str) -> Any:
    row = conn.execute("SELECT value FROM bench.meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else row[0]


def _set_meta(conn: psycopg.Connection[Any], key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO bench.meta (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, Jsonb(value)),
    )


def _define_dags(conn: psycopg.Connection[Any]) -> None:
    assets = [asset(k) for k in range(N_ASSETS)]
    docs: list[dict[str, Any]] = [
        {
            "dag_id": PRODUCER_DAG,
            "owners": "bench",
            "tasks": [
                {
                    "task_id": PRODUCER_TASK,
                    "outlets": [{"type": "Asset", "name": a.name, "uri": a.uri} for a in assets]
                    + [{"type": "AssetAlias", "name": al} for al in ALIASES],
                }
            ],
        }
    ]
    docs += [
        {
            "dag_id": consumer_dag(k),
            "owners": "bench",
            "schedule": {"assets": [{"name": a.name, "uri": a.uri}]},
            "tasks": [{"task_id": "consume"}],
        }
        for k, a in enumerate(assets)
    ]
    docs += [
        {
            "dag_id": alias_consumer_dag(al),
            "owners": "bench",
            "schedule": {"aliases": [al]},
            "tasks": [{"task_id": "consume"}],
        }
        for al in ALIASES
    ]
    # Must never be queued: verification counts any queue row of it as a fault.
    docs.append(
        {
            "dag_id": PAUSED_CONSUMER,
            "owners": "bench",
            "is_paused": True,
            "schedule": {
                "assets": [{"name": assets[0].name, "uri": assets[0].uri}],
                "aliases": [ALIASES[0]],
            },
            "tasks": [{"task_id": "consume"}],
        }
    )
    for doc in docs:
        conn.execute("SELECT tistate.define_dag(p_dag => %s)", (Jsonb(doc),))


def _seed_history(conn: psycopg.Connection[Any], history: int, console: Console) -> None:
    """H pre-existing events linked to each alias (2 x H events), in chunks of generate_series."""
    asset_ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM tistate.asset WHERE name = ANY(%s) ORDER BY name",
            ([asset(k).name for k in range(N_ASSETS)],),
        )
    ]
    alias_ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM tistate.asset_alias WHERE name = ANY(%s) ORDER BY name",
            (list(ALIASES),),
        )
    ]
    total = history * len(alias_ids)
    with Progress(
        TextColumn("history"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("history", total=total)
        for alias_id in alias_ids:
            for start in range(1, history + 1, HISTORY_CHUNK):
                stop = min(history, start + HISTORY_CHUNK - 1)
                conn.execute(
                    """
                    WITH ev AS (
                        INSERT INTO tistate.asset_event (asset_id, extra, source_dag_id,
                            source_task_id, source_run_id, source_map_index, "timestamp")
                        SELECT (%(assets)s::integer[])[1 + i %% %(n)s], jsonb_build_object('i', i),
                               'bench_history', 'emit', 'history-' || (i / 1000), -1,
                               now() - make_interval(secs => i)
                        FROM generate_series(%(start)s::integer, %(stop)s::integer) AS i
                        RETURNING id
                    )
                    INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)
                    SELECT %(alias)s, ev.id FROM ev
                    """,
                    {
                        "assets": asset_ids,
                        "n": len(asset_ids),
                        "start": start,
                        "stop": stop,
                        "alias": alias_id,
                    },
                )
                progress.advance(task, stop - start + 1)
        conn.execute(
            "INSERT INTO tistate.asset_alias_asset (alias_id, asset_id) "
            "SELECT al, a FROM unnest(%s::integer[]) AS al, unnest(%s::integer[]) AS a "
            "ON CONFLICT DO NOTHING",
            (alias_ids, asset_ids),
        )


def ensure_database(history: int, *, fresh: bool = False, console: Console | None = None) -> str:
    """Create, migrate and seed the database for alias history `history`; reuse it when it fits."""
    console = console or Console(stderr=True)
    dbname = db_name(history)
    started = time.monotonic()
    if fresh or not _exists(dbname):
        _create(dbname)
    try:
        migrate(dsn(dbname))
    except MigrationError as exc:  # a migration file changed under an old bench database
        console.print(f"[yellow]{dbname}: {exc}; recreating it[/yellow]")
        _create(dbname)
        migrate(dsn(dbname))
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute(BENCH_SCHEMA_SQL)
        # What docs/dba.md asks of a database behind PgBouncer (which drops the session options
        # `tistate serve` sets): outbox notifications, announced by the servers' relays.
        conn.execute(f"ALTER DATABASE {dbname} SET tistate.notify_events = 'relay'")
        if _meta(conn, "dags") is None:
            _define_dags(conn)
            _set_meta(conn, "dags", True)
        if _meta(conn, "history") != history:
            if _meta(conn, "history") is not None:  # a different size: start again
                conn.close()
                return ensure_database(history, fresh=True, console=console)
            if history:
                _seed_history(conn, history, console)
            _set_meta(conn, "history", history)
            conn.execute("VACUUM ANALYZE")  # autovacuum may be off on this cluster
    console.print(f"{dbname}: ready in {time.monotonic() - started:.1f} s")
    return dbname


def prepare_batch(dbname: str, n: int, label: str) -> Batch:
    """A new producer run with `n` running task instances and their payloads in bench.ti_map."""
    now = datetime.now(UTC)
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        with conn.transaction():
            batch_id = conn.execute(
                "INSERT INTO bench.batch (label, n, run_id) VALUES (%s, %s, '') RETURNING id",
                (label, n),
            ).fetchone()[0]  # type: ignore[index]
            run_id = f"bench-{batch_id}-{label}"
            conn.execute("UPDATE bench.batch SET run_id = %s WHERE id = %s", (run_id, batch_id))
            first = conn.execute(
                "SELECT ti_id "
                "FROM tistate.create_dag_run(p_dag_id => %s, p_run_id => %s, p_now => %s)",
                (PRODUCER_DAG, run_id, now),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)",
                (
                    first,
                    Jsonb(
                        {
                            "state": "running",
                            "hostname": HOSTNAME,
                            "unixname": "bench",
                            "pid": PID,
                            "start_date": now.isoformat(),
                        }
                    ),
                ),
            )
            # The other n - 1 as mapped task instances, already running on the same worker.
            conn.execute(
                """
                INSERT INTO tistate.task_instance (
                    id, dag_id, run_id, task_id, map_index, state, try_number, max_tries, pool,
                    pool_slots, queue, priority_weight, hostname, unixname, pid, start_date,
                    last_heartbeat_at, queued_dttm, scheduled_dttm, updated_at)
                SELECT tistate._uuid7(%(now)s), ti.dag_id, ti.run_id, ti.task_id, i, 'running', 1,
                       ti.max_tries, ti.pool, ti.pool_slots, ti.queue, ti.priority_weight,
                       ti.hostname, ti.unixname, ti.pid, ti.start_date,
                       %(now)s, %(now)s, %(now)s, %(now)s
                FROM tistate.task_instance AS ti, generate_series(0, %(last)s - 1) AS i
                WHERE ti.id = %(first)s
                """,
                {"now": now, "last": n - 1, "first": first},
            )
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM tistate.task_instance "
                    "WHERE dag_id = %s AND run_id = %s ORDER BY map_index",
                    (PRODUCER_DAG, run_id),
                )
            ]
            end_date = now.isoformat()
            with conn.cursor().copy(
                "COPY bench.ti_map (batch_id, rn, ti_id, payload) FROM STDIN"
            ) as copy:
                for rn, ti_id in enumerate(ids, start=1):
                    copy.write_row((batch_id, rn, ti_id, Jsonb(success_payload(rn, end_date))))
        conn.execute("ANALYZE tistate.task_instance")
        conn.execute("ANALYZE bench.ti_map")
    return Batch(id=batch_id, dbname=dbname, run_id=run_id, ti_ids=ids)


def load_payloads(batch: Batch) -> list[dict[str, Any]]:
    """The payloads of a batch, index rn - 1 (the same rows pgbench reads)."""
    with psycopg.connect(dsn(batch.dbname), autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT payload FROM bench.ti_map WHERE batch_id = %s ORDER BY rn", (batch.id,)
            )
        ]
