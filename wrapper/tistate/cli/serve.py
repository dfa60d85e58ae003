"""`tistate serve`: the Execution-API-compatible HTTP service (see tistate.http).

With no --database-url and no TISTATE_DATABASE_URL, it starts the embedded PostgreSQL the way
`tistate demo` does (tistate.embedded), migrated, and stops it on exit. The JWT secret is read from
TISTATE_JWT_SECRET only, never from the command line (where `ps` would show it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from .. import _db, embedded
from ..errors import TistateError, translate_errors
from ._common import DatabaseUrl, console, err_console, handle_errors

#: Every TISTATE_* variable `serve` reads (tistate.http.settings.Settings.from_env), with the
#: Settings field it sets and what it does; `tistate serve --help` lists them with their defaults.
SETTINGS_HELP: tuple[tuple[str, str, str], ...] = (
    (
        "TISTATE_DATABASE_URL",
        "database_url",
        "PostgreSQL URL; an SQLAlchemy one (postgresql+psycopg2://) too (unset: the embedded one)",
    ),
    ("TISTATE_JWT_SECRET", "jwt_secret", "HMAC secret tokens are signed with (or a key below)"),
    ("TISTATE_JWT_ALGORITHMS", "jwt_algorithms", "accepted token algorithms"),
    ("TISTATE_JWT_AUDIENCE", "jwt_audience", "accepted token audiences, comma-separated"),
    ("TISTATE_JWT_ISSUER", "jwt_issuer", "required token issuer"),
    ("TISTATE_JWT_LEEWAY", "jwt_leeway", "seconds of clock skew tolerated"),
    ("TISTATE_JWT_PUBLIC_KEY_PATH", "jwt_public_key_path", "PEM public key tokens are signed for"),
    (
        "TISTATE_JWT_PRIVATE_KEY_PATH",
        "jwt_private_key_path",
        "PEM private key: verifies, and signs refreshed tokens",
    ),
    ("TISTATE_JWT_JWKS_URL", "jwt_jwks_url", "JWKS file or URL of trusted public keys"),
    ("TISTATE_JWT_KID", "jwt_kid", "kid of refreshed tokens"),
    (
        "TISTATE_JWT_EXPIRATION_TIME",
        "jwt_expiration_time",
        "seconds a refreshed token is valid (as Airflow's)",
    ),
    ("TISTATE_TOKEN_REFRESH", "token_refresh", "re-issue tokens near expiry (Refreshed-API-Token)"),
    (
        "TISTATE_AIRFLOW_API_URL",
        "airflow_api_url",
        "Airflow's API server (not the proxy): awaiting_input is forwarded there",
    ),
    ("TISTATE_FORWARD_TIMEOUT", "forward_timeout", "seconds a forwarded request may take"),
    (
        "TISTATE_COMPATIBILITY_INTERVAL",
        "compatibility_interval",
        "seconds between checks of compatibility_problems() (503 while any)",
    ),
    ("TISTATE_INSECURE_NO_AUTH", "insecure_no_auth", "accept requests without a token"),
    ("TISTATE_HOST", "host", "address to bind"),
    ("TISTATE_PORT", "port", "port"),
    ("TISTATE_WORKERS", "workers", "server processes"),
    ("TISTATE_POOL_SIZE", "pool_size", "database connections per process"),
    ("TISTATE_POOL_MAX_WAITING", "pool_max_waiting", "requests that may wait for one"),
    ("TISTATE_POOL_TIMEOUT", "pool_timeout", "seconds a request may wait for one"),
    ("TISTATE_MAX_IN_FLIGHT", "max_in_flight", "requests admitted at once"),
    ("TISTATE_LOCK_TIMEOUT", "lock_timeout", "seconds a call may wait for a row lock"),
    ("TISTATE_STATEMENT_TIMEOUT", "statement_timeout", "seconds a call may take"),
    ("TISTATE_RETRY_AFTER", "retry_after", "Retry-After seconds of a 503"),
    ("TISTATE_MAX_BODY_BYTES", "max_body_bytes", "largest request body (413 above)"),
    ("TISTATE_BODY_MEMORY_BYTES", "body_memory_bytes", "memory for request bodies per process"),
    ("TISTATE_MAX_HEADER_BYTES", "max_header_bytes", "largest request head (431 above)"),
    ("TISTATE_HEADER_TIMEOUT", "header_timeout", "seconds to receive a request head (408)"),
    ("TISTATE_BODY_TIMEOUT", "body_timeout", "seconds to receive a request body (408)"),
    ("TISTATE_MAX_CONNECTIONS", "max_connections", "open client connections"),
    ("TISTATE_HEARTBEAT_BATCH", "heartbeat_batch", "heartbeats in one database call at most"),
    ("TISTATE_PREPARED_STATEMENTS", "prepared_statements", "server-side prepared statements"),
    ("TISTATE_NOTIFY_EVENTS", "notify_events", "relay, on or off"),
    ("TISTATE_RELAY_INTERVAL", "relay_interval", "seconds between relay transactions"),
    ("TISTATE_GRACEFUL_TIMEOUT", "graceful_timeout", "seconds in-flight requests get on SIGTERM"),
    ("TISTATE_LOG_LEVEL", "log_level", "debug, info, warning or error"),
    ("TISTATE_DATA_DIR", "", "embedded database's data directory (no database URL)"),
)
_DEFAULTS_SHOWN_AS = {
    "database_url": "unset",
    "jwt_secret": "unset",
    "jwt_issuer": "unset",
    "jwt_algorithms": "HS256,HS512; with a key: the key's",
    "jwt_public_key_path": "unset",
    "jwt_private_key_path": "unset",
    "jwt_jwks_url": "unset",
    "jwt_kid": "not-used, or the key's thumbprint",
    "airflow_api_url": "unset",
    "max_in_flight": "pool size + max waiting",
    "lock_timeout": "the SQL's 2",
}


def _default(field: str) -> str:
    if field in _DEFAULTS_SHOWN_AS:
        return _DEFAULTS_SHOWN_AS[field]
    if not field:
        return str(embedded.default_data_dir())
    from ..http.settings import Settings

    value: Any = {f.name: f.default for f in dataclasses.fields(Settings)}[field]
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def settings_epilog() -> str:
    """The help's list of settings: variable, default, meaning (options override them)."""
    lines = [
        "[bold]Settings[/] (an option wins over its variable; default in brackets):",
        "",
    ]
    from ..http.settings import AIRFLOW_NAMES

    airflow = dict(AIRFLOW_NAMES)
    for name, field, meaning in SETTINGS_HELP:
        fallback = f" (unset: {airflow[name]})" if name in airflow else ""
        lines.append(f"  {name} [{_default(field)}]{fallback}: {meaning}")
    lines += [
        "",
        "An Airflow deployment's configuration works as it is: each TISTATE_ variable left unset "
        "is read from Airflow's name beside it (docs/airflow.md).",
        "",
        "Make the secret 32 random bytes, e.g. "
        "TISTATE_JWT_SECRET=$(python -c 'import secrets; print(secrets.token_hex(32))'), "
        "and mint tokens with the same one (tistate token mint TI_ID). "
        "The API's description: /openapi.json, browsable at /docs.",
    ]
    return "\n".join(lines).replace("[", "\\[").replace("\\[bold]", "[bold]")


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=settings_epilog())(serve_command)


def schema_problem(url: str) -> str | None:
    """Why the tistate schema cannot serve yet (missing, older than this tistate), or None."""
    from ..client import check_schema_version

    try:
        with translate_errors(), psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            present = conn.execute(
                "SELECT to_regprocedure('tistate.schema_version()') IS NOT NULL"
            ).fetchone()
            if not present or not present[0]:
                return "schema missing: run `tistate db migrate`"
            row = conn.execute(_db.SCHEMA_VERSION).fetchone()
        check_schema_version(int(row[0]) if row else 0)
    except TistateError as exc:
        return str(exc)
    return None


def check_keys(settings: Any) -> None:
    """Exit 78 with a clear message when a configured key or JWKS cannot be read."""
    from ..http.auth import make_signer, make_verifier

    if settings.insecure_no_auth:
        return
    try:
        make_verifier(settings)
        make_signer(settings)
    except Exception as exc:
        from rich.markup import escape

        err_console.print(
            f"[bold red]error:[/] cannot load the token keys: {escape(str(exc))}", soft_wrap=True
        )
        raise typer.Exit(78) from None


def refuse_if_incompatible(url: str) -> None:
    """Exit 8 with tistate.compatibility_problems() when not empty: in Airflow mode, an Airflow
    revision tistate does not know, a changed column or a missing grant (never a wrong write)."""
    from .. import migrate

    with translate_errors(), psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        problems = migrate.compatibility(conn).problems
    if not problems:
        return
    err_console.print(
        "[bold red]error:[/] tistate cannot run safely on this database, not starting:",
        soft_wrap=True,
    )
    for problem in problems:
        err_console.print(f"  - {problem}", soft_wrap=True, markup=False)
    err_console.print(
        "hint: after an Airflow upgrade, install the tistate release that supports it and run "
        "`tistate db migrate --airflow`; until then remove the proxy rule so Airflow's API "
        "server serves every route (docs/airflow.md)",
        soft_wrap=True,
        markup=False,
    )
    raise typer.Exit(8)


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
    check_keys(settings)
    if settings.database_url:
        problem = schema_problem(settings.database_url)
        if problem:
            # Said once here: the service starts anyway (/ready answers 503 until it is fixed).
            err_console.print(f"[bold yellow]warning:[/] {problem}", soft_wrap=True)
        else:
            refuse_if_incompatible(settings.database_url)
        serve(settings)
        return
    directory = data_dir or embedded.data_dir()
    console.print(f"no database URL: starting the embedded PostgreSQL in {directory} ...")
    with embedded.embedded_database(directory) as url:
        serve(settings.with_database_url(url))
