"""Where PostgreSQL's time goes during one HTTP run: pg_stat_statements, nested statements included.

    python -m bench statements -c 80 --n 3000

Needs `pg_stat_statements` in `shared_preload_libraries` (a server restart). The bench database
gets the extension and `pg_stat_statements.track = 'all'`, so the statements the PL/pgSQL
functions run are counted one by one beside the top-level calls the server sends; both are
removed again afterwards. The counters are reset just before the load and read right after it.
Each statement is reported with its calls per completion, mean and total execution time, and its
share of the top-level total. Nested statements' time is part of their caller's, so the shares
overlap and do not add up to 100%. A statement that fails is not counted (e.g. a heartbeat
answered 409), but the nested statements it ran before failing are. Times are wall times inside
the server, lock waits included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench.common import db_name, dsn

__all__ = ["available", "statement_profile"]

ENABLE_HINT = (
    "pg_stat_statements is not loaded. As a superuser: ALTER SYSTEM SET shared_preload_libraries = "
    "'pg_stat_statements'; then restart PostgreSQL (e.g. pg_ctlcluster 15 main restart)."
)


def available(dbname: str) -> bool:
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return row is not None and "pg_stat_statements" in str(row[0])


def _prepare(dbname: str) -> None:
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET pg_stat_statements.track = 'all'")


def _cleanup(dbname: str) -> None:
    """The bench database as it was: no extension, no track setting (the library stays loaded)."""
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" RESET pg_stat_statements.track')
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")


def _reset(dbname: str) -> None:
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def _read(dbname: str, top: int) -> list[dict[str, Any]]:
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        cur = conn.execute(
            """
            SELECT toplevel, calls, total_exec_time, mean_exec_time, rows,
                   regexp_replace(query, '\\s+', ' ', 'g') AS query
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT ILIKE '%%pg_stat_%%' AND query NOT ILIKE '%%pg_locks%%'
             ORDER BY total_exec_time DESC
             LIMIT %s
            """,
            (top,),
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def statement_profile(
    *,
    history: int,
    concurrency: int,
    n: int,
    top: int,
    jwt_secret: str | None,
    log_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """One tistate run with statement statistics; the run's figures plus the top statements."""
    from bench.matrix import run_http
    from bench.seed import ensure_database

    ensure_database(history, console=console)
    dbname = db_name(history)
    if not available(dbname):
        raise SystemExit(ENABLE_HINT)
    _prepare(dbname)
    try:
        _reset(dbname)  # the seeding of the batch and the warm-up are counted too (small)
        run = run_http(
            "tistate",
            history=history,
            concurrency=concurrency,
            n=n,
            jwt_secret=jwt_secret,
            log_dir=log_dir,
            console=console,
        )
        statements = _read(dbname, top)
    finally:
        _cleanup(dbname)
    completed = max(int(run.get("completed") or 0), 1)
    toplevel_ms = sum(s["total_exec_time"] for s in statements if s["toplevel"])
    for s in statements:
        s["calls_per_completion"] = round(s["calls"] / completed, 2)
        s["mean_us"] = round(s["mean_exec_time"] * 1000, 1)
        s["total_ms"] = round(s["total_exec_time"], 1)
        share = s["total_exec_time"] / toplevel_ms if toplevel_ms else None
        s["share_of_toplevel"] = round(share, 3) if share is not None else None
        del s["total_exec_time"], s["mean_exec_time"]
    title = f"pg_stat_statements, tistate C={concurrency} H={history}, {completed} done"
    table = Table(title=title)
    for column in ("level", "calls/compl.", "mean µs", "total ms", "share", "statement"):
        table.add_column(column, justify="left" if column == "statement" else "right")
    for s in statements:
        table.add_row(
            "top" if s["toplevel"] else "nested",
            f"{s['calls_per_completion']:.2f}",
            f"{s['mean_us']:.0f}",
            f"{s['total_ms']:.0f}",
            f"{s['share_of_toplevel']:.0%}" if s["share_of_toplevel"] is not None else "-",
            s["query"][:110],
        )
    console.print(table)
    summary = {k: run.get(k) for k in ("completed", "completions_per_s", "latency_ms")}
    return {"run": summary, "statements": statements}
