"""The round-trip baseline: Airflow 3.3.2's observed statement sequence, served over HTTP.

Reference section 3.8: lock the task instance with SELECT ... FOR UPDATE, reload it, resolve the
active outlets, then for every event its lookups and inserts as separate round trips, then the
UPDATE, the log row and the COMMIT, with the row lock held from the first statement to the commit.
Written for this benchmark over psycopg 3 against tistate's tables; no Airflow code. It is a
lower bound on Airflow's cost: plain SQL instead of the ORM, no lazy loads, no listener hooks.

Served like Airflow's Execution API: synchronous handlers in the ASGI server's thread pool
(anyio's default of 40 threads), a connection pool of 5 + 10 overflow (SQLAlchemy's defaults,
here a psycopg pool of at most 15) that waits up to 30 s for a connection, no lock timeout.
Deviation kept on purpose: a database error (deadlock included) answers 500 so the client
retries, where Airflow would mark the task failed and answer 204 (reference 3.5).

Run: TISTATE_DATABASE_URL=... uvicorn bench.roundtrip:app
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import jwt
import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

DATABASE_URL = os.environ.get(
    "TISTATE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_h0"
)
JWT_SECRET = os.environ.get("TISTATE_JWT_SECRET", "")
POOL_MAX = int(os.environ.get("BENCH_RT_POOL_MAX", "15"))

pool = ConnectionPool(
    DATABASE_URL,
    min_size=5,
    max_size=POOL_MAX,
    timeout=30.0,
    open=False,
    kwargs={"application_name": "bench-roundtrip"},
)
app = FastAPI(title="round-trip baseline", on_startup=[pool.open], on_shutdown=[pool.close])

SELECT_LOCK = """
SELECT ti.id, ti.state, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.hostname,
       ti.start_date, dr.logical_date, d.owners
FROM tistate.task_instance AS ti
JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
WHERE ti.id = %s
FOR UPDATE OF ti
"""
SELECT_RELOAD = """
SELECT ti.*, dr.*
FROM tistate.task_instance AS ti
JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
WHERE ti.id = %s
FOR UPDATE OF ti
"""
SELECT_ACTIVE = """
SELECT a.id, a.name, a.uri FROM tistate.asset AS a
WHERE EXISTS (SELECT 1 FROM tistate.asset_active AS act WHERE act.name = a.name AND act.uri = a.uri)
  AND ((a.name, a.uri) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
       OR a.name = ANY (%s::text[]) OR a.uri = ANY (%s::text[]))
"""
# The eager-loaded asset: active flag, scheduled DAGs, aliases (a cartesian product, as in Airflow).
SELECT_ASSET = """
SELECT a.id, act.name IS NOT NULL AS active, d.dag_id, d.is_paused, al.id, al.name
FROM tistate.asset AS a
LEFT JOIN tistate.asset_active AS act ON act.name = a.name AND act.uri = a.uri
LEFT JOIN tistate.dag_schedule_asset_reference AS r ON r.asset_id = a.id
LEFT JOIN tistate.dag AS d ON d.dag_id = r.dag_id
LEFT JOIN tistate.asset_alias_asset AS aaa ON aaa.asset_id = a.id
LEFT JOIN tistate.asset_alias AS al ON al.id = aaa.alias_id
WHERE a.name = %s AND a.uri = %s
"""
SELECT_ALIASES = (
    "SELECT al.id, al.name FROM tistate.asset_alias AS al WHERE al.name = ANY (%s::text[])"
)
INSERT_EVENT = """
WITH event AS (
    INSERT INTO tistate.asset_event (asset_id, extra, source_task_id, source_dag_id, source_run_id,
                                     source_map_index, "timestamp", partition_key)
    VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp(), NULL)
    RETURNING id
)
INSERT INTO tistate.asset_event_producer (event_id, ti_id, try_number)
SELECT event.id, %s, %s FROM event
RETURNING event_id
"""
SELECT_REF_DAGS = """
SELECT DISTINCT d.dag_id FROM tistate.dag AS d
LEFT JOIN tistate.dag_schedule_asset_name_reference AS n ON n.dag_id = d.dag_id
LEFT JOIN tistate.dag_schedule_asset_uri_reference AS u ON u.dag_id = d.dag_id
WHERE (n.name = %s OR u.uri = %s) AND d.is_paused IS false
"""
INSERT_ADRQ = """
INSERT INTO tistate.asset_dag_run_queue (asset_id, target_dag_id, created_at)
VALUES (%s, %s, clock_timestamp()) ON CONFLICT DO NOTHING
"""
INSERT_ASSET = """
INSERT INTO tistate.asset (name, uri, "group", extra, created_at, updated_at)
VALUES (%s, %s, 'asset', %s, now(), now())
ON CONFLICT DO NOTHING
"""
INSERT_ALIAS_ASSET = """
INSERT INTO tistate.asset_alias_asset (alias_id, asset_id) VALUES (%s, %s) ON CONFLICT DO NOTHING
"""
SELECT_ALIAS_CONSUMERS = """
SELECT al.id, d.dag_id, d.is_paused FROM tistate.asset_alias AS al
LEFT JOIN tistate.dag_schedule_asset_alias_reference AS r ON r.alias_id = al.id
LEFT JOIN tistate.dag AS d ON d.dag_id = r.dag_id
WHERE al.name = ANY (%s::text[])
"""
INSERT_ALIAS_EVENT = (
    "INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id) VALUES (%s, %s)"
)
UPDATE_TI = """
UPDATE tistate.task_instance SET state = 'success', end_date = %s,
       duration = extract(epoch FROM %s::timestamptz - start_date), next_method = NULL,
       next_kwargs = NULL, updated_at = clock_timestamp()
WHERE id = %s
"""
INSERT_LOG = """
INSERT INTO tistate.log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date,
                         owner, extra)
VALUES (clock_timestamp(), %s, %s, %s, %s, %s, 'success', %s, %s, %s)
"""


def _detail(status: int, reason: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"detail": {"reason": reason, "message": message, **extra}}, status_code=status
    )


def _authorised(request: Request, ti_id: str) -> JSONResponse | None:
    if not JWT_SECRET:
        return None
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return _detail(401, "unauthorized", "missing bearer token")
    try:
        claims = jwt.decode(
            header[7:], JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False}
        )
    except jwt.PyJWTError as exc:
        return _detail(403, "forbidden", str(exc))
    if claims.get("sub") != ti_id:
        return _detail(403, "forbidden", "token subject does not match the task instance")
    return None


def _missing(conn: psycopg.Connection[Any], ti_id: str) -> JSONResponse:
    gone = conn.execute(
        "SELECT 1 FROM tistate.task_instance_history WHERE task_instance_id = %s", (ti_id,)
    ).fetchone()
    conn.rollback()
    if gone:
        return _detail(410, "gone", "Task Instance was archived by a retry")
    return _detail(404, "not_found", "Task Instance not found")


def _queue(conn: psycopg.Connection[Any], asset_id: int, dag_ids: set[str]) -> None:
    if dag_ids:  # executemany in set order, as Airflow does (the order differs between processes)
        conn.cursor().executemany(INSERT_ADRQ, [(asset_id, d) for d in dag_ids])


def _register(conn: psycopg.Connection[Any], ti: tuple[Any, ...], payload: dict[str, Any]) -> None:
    """Airflow's register_asset_changes_in_db as separate round trips (reference 4.1, 4.2)."""
    ti_id, _, dag_id, task_id, run_id, map_index, try_number = ti[:7]
    outlets = payload.get("task_outlets") or []
    events = payload.get("outlet_events") or []
    if not outlets and not events:
        return
    keys = [(o["name"], o["uri"]) for o in outlets if o.get("type") == "Asset"]
    name_refs = [o["name"] for o in outlets if o.get("type") == "AssetNameRef"]
    uri_refs = [o["uri"] for o in outlets if o.get("type") == "AssetUriRef"]
    alias_names = {o["name"] for o in outlets if o.get("type") == "AssetAlias"}
    active = conn.execute(
        SELECT_ACTIVE, ([k[0] for k in keys], [k[1] for k in keys], name_refs, uri_refs)
    ).fetchall()
    by_key = {(name, uri): aid for aid, name, uri in active}
    direct: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ev in events:
        if not ev.get("source_alias_name"):
            k = ev["dest_asset_key"]
            direct.setdefault((k["name"], k["uri"]), []).append(ev)

    def emit(name: str, uri: str, extra: Any, aliases: list[str]) -> None:
        rows = conn.execute(SELECT_ASSET, (name, uri)).fetchall()
        asset_id = rows[0][0]
        consumers = {r[2] for r in rows if r[2] is not None and not r[3]}
        linked = {r[5] for r in rows if r[5] is not None}
        alias_rows = conn.execute(SELECT_ALIASES, (aliases,)).fetchall()
        event_id = conn.execute(
            INSERT_EVENT,
            (
                asset_id,
                json.dumps(extra or {}),
                task_id,
                dag_id,
                run_id,
                map_index,
                ti_id,
                try_number,
            ),
        ).fetchone()[0]  # type: ignore[index]
        for alias_id, alias_name in alias_rows:
            if alias_name not in linked:
                conn.execute(INSERT_ALIAS_ASSET, (alias_id, asset_id))
        if aliases:
            linked_to_event: set[int] = set()
            for alias_id, consumer, paused in conn.execute(
                SELECT_ALIAS_CONSUMERS, (aliases,)
            ).fetchall():
                if alias_id not in linked_to_event:
                    conn.execute(INSERT_ALIAS_EVENT, (alias_id, event_id))
                    linked_to_event.add(alias_id)
                if consumer is not None and not paused:
                    consumers.add(consumer)
        consumers |= {r[0] for r in conn.execute(SELECT_REF_DAGS, (name, uri)).fetchall()}
        _queue(conn, asset_id, consumers)

    for key in keys:
        if key not in by_key:
            continue  # inactive or missing: skipped with a warning in Airflow
        for ev in direct.get(key) or [{"extra": None}]:
            emit(key[0], key[1], ev.get("extra"), [])
    # Alias events: one per (asset, asset extra, extra), linked to every alias that sent it.
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for ev in events:
        alias = ev.get("source_alias_name")
        if alias and alias in alias_names:
            k = ev["dest_asset_key"]
            gk = (
                k["name"],
                k["uri"],
                json.dumps(ev.get("dest_asset_extra") or {}, sort_keys=True),
                json.dumps(ev.get("extra") or {}, sort_keys=True),
            )
            groups.setdefault(gk, []).append(alias)
    for (name, uri, asset_extra, extra), aliases in groups.items():
        if not conn.execute(SELECT_ASSET, (name, uri)).fetchone():
            conn.execute(INSERT_ASSET, (name, uri, asset_extra))
        emit(name, uri, json.loads(extra), sorted(set(aliases)))


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.patch("/execution/task-instances/{ti_id}/state")
def ti_update_state(ti_id: str, request: Request, body: dict[str, Any]) -> Response:
    denied = _authorised(request, ti_id)
    if denied is not None:
        return denied
    state = body.get("state")
    if state != "success" or "end_date" not in body:
        return _detail(
            422, "invalid_payload", "only the success payload is implemented by the baseline"
        )
    end_date = datetime.fromisoformat(str(body["end_date"]).replace("Z", "+00:00"))
    try:
        with pool.connection() as conn:
            ti = conn.execute(SELECT_LOCK, (ti_id,)).fetchone()
            if ti is None:
                return _missing(conn, ti_id)
            conn.execute(SELECT_RELOAD, (ti_id,)).fetchone()
            if ti[1] == state:
                conn.commit()
                return Response(status_code=200)
            if ti[1] != "running":
                conn.rollback()
                return _detail(
                    409,
                    "invalid_state",
                    "TI was not in the running state so it cannot be updated",
                    previous_state=ti[1],
                )
            _register(conn, ti, body)
            conn.execute(UPDATE_TI, (end_date, end_date, ti_id))
            host = json.dumps({"host_name": ti[7]}) if ti[7] else None
            conn.execute(INSERT_LOG, (ti[2], ti[3], ti[4], ti[5], ti[6], ti[9], ti[10], host))
            conn.commit()
    except psycopg.Error as exc:
        return _detail(500, "Database error", f"{type(exc).__name__}: {exc}".splitlines()[0])
    return Response(status_code=204)


@app.put("/execution/task-instances/{ti_id}/heartbeat")
def ti_heartbeat(ti_id: str, request: Request, body: dict[str, Any]) -> Response:
    denied = _authorised(request, ti_id)
    if denied is not None:
        return denied
    try:
        with pool.connection() as conn:
            cur = conn.execute(
                "UPDATE tistate.task_instance SET last_heartbeat_at = clock_timestamp(), "
                "updated_at = clock_timestamp() "
                "WHERE id = %s AND state = 'running' AND hostname = %s AND pid = %s",
                (ti_id, body.get("hostname"), body.get("pid")),
            )
            if cur.rowcount:
                conn.commit()
                return Response(status_code=204)
            row = conn.execute(
                "SELECT state, hostname, pid FROM tistate.task_instance WHERE id = %s FOR UPDATE",
                (ti_id,),
            ).fetchone()
            if row is None:
                return _missing(conn, ti_id)
            conn.rollback()
            if row[1] != body.get("hostname") or row[2] != body.get("pid"):
                return _detail(
                    409,
                    "running_elsewhere",
                    "TI is already running elsewhere",
                    current_hostname=row[1],
                    current_pid=row[2],
                )
            return _detail(
                409,
                "not_running",
                "TI is no longer in the running state and task should terminate",
                current_state=row[0],
            )
    except psycopg.Error as exc:
        return _detail(500, "Database error", f"{type(exc).__name__}: {exc}".splitlines()[0])
