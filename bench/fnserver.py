"""A minimal stand-in HTTP server over tistate.ti_update_state (not tistate's server).

One async handler per path, one SQL call per request through a bounded psycopg async pool, 503 +
Retry-After when the pool is exhausted or the database answers a retryable error. It exists to
validate the load generator before `tistate serve` lands, and afterwards to show what tistate's
own HTTP layer costs on top of the bare function call. Heartbeats use Airflow's fast-path UPDATE
(the SQL heartbeat function may not exist yet).

Run: TISTATE_DATABASE_URL=... uvicorn bench.fnserver:app
"""

from __future__ import annotations

import json
import os
from typing import Any

import jwt
import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

DATABASE_URL = os.environ.get(
    "TISTATE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_h0"
)
JWT_SECRET = os.environ.get("TISTATE_JWT_SECRET", "")
POOL_MAX = int(os.environ.get("BENCH_FN_POOL_MAX", "10"))
RETRYABLE = {"40001", "40P01", "55P03", "57014"}
STATUS = {"TS404": 404, "TS409": 409, "TS410": 410, "TS422": 422, "TS403": 403}

pool = AsyncConnectionPool(
    DATABASE_URL,
    min_size=POOL_MAX,
    max_size=POOL_MAX,
    timeout=1.0,
    open=False,
    kwargs={
        "autocommit": True,
        "application_name": "bench-fnserver",
        # PgBouncer in transaction mode cannot keep server-side prepared statements
        "prepare_threshold": None if os.environ.get("BENCH_PREPARE_THRESHOLD") == "none" else 5,
    },
)


async def _open() -> None:
    await pool.open()


async def _close() -> None:
    await pool.close()


app = FastAPI(title="function stand-in", on_startup=[_open], on_shutdown=[_close])


def _error(exc: Exception) -> Response:
    if isinstance(exc, PoolTimeout):
        return JSONResponse(
            {"detail": {"reason": "busy", "message": "no database connection free"}},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    assert isinstance(exc, psycopg.Error)
    code = exc.sqlstate or ""
    if code in RETRYABLE or code.startswith("08"):
        return JSONResponse(
            {"detail": {"reason": "retry", "message": str(exc)}},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    if code in STATUS:
        detail = exc.diag.message_detail or "{}"
        return JSONResponse({"detail": json.loads(detail)}, status_code=STATUS[code])
    return JSONResponse(
        {"detail": {"reason": "Database error", "message": str(exc)}}, status_code=500
    )


def _authorised(request: Request, ti_id: str) -> Response | None:
    if not JWT_SECRET:
        return None
    header = request.headers.get("authorization", "")
    try:
        claims = jwt.decode(
            header[7:], JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False}
        )
    except jwt.PyJWTError as exc:
        return JSONResponse(
            {"detail": {"reason": "forbidden", "message": str(exc)}}, status_code=403
        )
    if claims.get("sub") != ti_id:
        return JSONResponse(
            {"detail": {"reason": "forbidden", "message": "wrong subject"}}, status_code=403
        )
    return None


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.patch("/execution/task-instances/{ti_id}/state")
async def ti_update_state(ti_id: str, request: Request) -> Response:
    denied = _authorised(request, ti_id)
    if denied is not None:
        return denied
    body: Any = await request.json()
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT applied FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)",
                (ti_id, Jsonb(body)),
            )
            row = await cur.fetchone()
    except (psycopg.Error, PoolTimeout) as exc:
        return _error(exc)
    return Response(status_code=204 if row and row[0] else 200)


@app.put("/execution/task-instances/{ti_id}/heartbeat")
async def ti_heartbeat(ti_id: str, request: Request) -> Response:
    denied = _authorised(request, ti_id)
    if denied is not None:
        return denied
    body: Any = await request.json()
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE tistate.task_instance SET last_heartbeat_at = clock_timestamp(), "
                "updated_at = clock_timestamp() "
                "WHERE id = %s AND state = 'running' AND hostname = %s AND pid = %s",
                (ti_id, body.get("hostname"), body.get("pid")),
            )
            if cur.rowcount:
                return Response(status_code=204)
    except (psycopg.Error, PoolTimeout) as exc:
        return _error(exc)
    return JSONResponse(
        {"detail": {"reason": "not_running", "message": "not running here"}}, status_code=409
    )
