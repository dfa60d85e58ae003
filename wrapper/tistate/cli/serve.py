"""`tistate serve`: the Execution-API-compatible HTTP service (see tistate.http).

With no --database-url and no TISTATE_DATABASE_URL, it starts the embedded PostgreSQL the way
`tistate demo` does (tistate.embedded), migrated, and stops it on exit. The JWT secret is read from
TISTATE_JWT_SECRET only, never from the command line (where `ps` would show it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import _db, embedded
from ._common import DatabaseUrl, console, err_console, handle_errors


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


@handle_errors
def serve_command(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8080).", min=0)] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Server processes on the port, each with its own pool (default 1).",
            min=1,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    pool_size: Annotated[
        int | None,
        typer.Option("--pool-size", help="Database connections, fixed (default 10).", min=1),
    ] = None,
    pool_max_waiting: Annotated[
        int | None,
        typer.Option(
            "--pool-max-waiting",
            help="Requests that may wait for a connection (default 1000).",
            min=1,
        ),
    ] = None,
    pool_timeout: Annotated[
        float | None,
        typer.Option(
            "--pool-timeout", help="Seconds a request may wait for a connection (default 2)."
        ),
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            "--max-in-flight",
            help="Execution requests admitted at once (default: pool size + max waiting); "
            "more get 503.",
            min=1,
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout", help="Seconds a call may wait for a row lock (default: the SQL's 2)."
        ),
    ] = None,
    statement_timeout: Annotated[
        float | None,
        typer.Option(
            "--statement-timeout",
            help="statement_timeout of the pool's sessions, bounding each call (default 30).",
        ),
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", help="Required token audience.")
    ] = None,
    jwt_issuer: Annotated[
        str | None, typer.Option("--jwt-issuer", help="Required token issuer.")
    ] = None,
    jwt_algorithms: Annotated[
        str | None,
        typer.Option(
            "--jwt-algorithms", help="Accepted algorithms, comma-separated (default HS256,HS512)."
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Accept requests without a token. For a local demo only: anyone reaching the "
            "port can change any task instance.",
        ),
    ] = False,
    pgbouncer: Annotated[
        bool,
        typer.Option(
            "--pgbouncer",
            help="No server-side prepared statements (PgBouncer in transaction-pooling mode).",
        ),
    ] = False,
    notify_events: Annotated[
        str | None,
        typer.Option(
            "--notify-events",
            help="How events are announced on tistate_events: relay (outbox + this process's "
            "relay, the default), on (pg_notify in each transaction) or off.",
        ),
    ] = None,
    graceful_timeout: Annotated[
        float | None,
        typer.Option(
            "--graceful-timeout", help="Seconds in-flight requests get on SIGTERM (default 30)."
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="debug, info, warning or error (default info)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar=embedded.DATA_DIR_ENV,
            show_envvar=True,
            help="Data directory of the embedded PostgreSQL (used without a database URL).",
        ),
    ] = None,
) -> None:
    """Serve the Execution API endpoints (state, run, heartbeat, skip-downstream), /health,
    /ready, /metrics and /openapi.json."""
    # Imported here: FastAPI and uvicorn take ~0.5 s to import, which no other command should pay.
    from ..http.server import serve
    from ..http.settings import Settings

    algorithms = (
        tuple(a.strip().upper() for a in jwt_algorithms.split(",") if a.strip())
        if jwt_algorithms
        else None
    )
    try:
        settings = Settings.from_env(
            host=host,
            port=port,
            workers=workers,
            database_url=_db.database_url(database_url) or None,
            pool_size=pool_size,
            pool_max_waiting=pool_max_waiting,
            pool_timeout=pool_timeout,
            max_in_flight=max_in_flight,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            jwt_audience=jwt_audience,
            jwt_issuer=jwt_issuer,
            jwt_algorithms=algorithms,
            insecure_no_auth=True if insecure_no_auth else None,
            prepared_statements=False if pgbouncer else None,
            notify_events=notify_events,
            graceful_timeout=graceful_timeout,
            log_level=log_level,
        )
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if settings.database_url:
        serve(settings)
        return
    directory = data_dir or embedded.data_dir()
    console.print(f"no database URL: starting the embedded PostgreSQL in {directory} ...")
    with embedded.embedded_database(directory) as url:
        serve(settings.with_database_url(url))
