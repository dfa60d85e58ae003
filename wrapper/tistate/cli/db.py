"""`tistate db migrate|status|verify|sql|snapshot`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.progress import BarColumn, Progress, TextColumn

from .. import migrate
from ..errors import SchemaOutdatedError, UsageError, translate_errors
from ._common import DatabaseUrl, JsonOutput, console, database, handle_errors, print_json, table

db_app = typer.Typer(help="Install and inspect the database schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


AirflowFlag = Annotated[
    bool,
    typer.Option(
        "--airflow",
        help="Install onto a database made by `airflow db migrate` (Airflow 3.3.x): the functions "
        "run on Airflow's own tables. Refused, with nothing installed, on anything else.",
    ),
]
AirflowSchema = Annotated[
    str | None,
    typer.Option(
        "--airflow-schema",
        help="The schema of Airflow's tables ([database] sql_alchemy_schema); implies --airflow. "
        "Default: public.",
    ),
]


def migrate_with_progress(
    url: str,
    *,
    target: int | None = None,
    quiet: bool = False,
    flavor: str | None = None,
    airflow_schema: str = "public",
) -> list[str]:
    """Apply pending migrations with a progress bar; returns the files applied."""
    migrations = [m for m in migrate.discover() if target is None or m.version <= target]
    applied: list[str] = []
    with Progress(
        TextColumn("[bold]migrating[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.description}"),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    ) as progress:
        task = progress.add_task("", total=len(migrations))

        def step(migration: migrate.Migration) -> None:
            progress.update(task, advance=1, description=migration.filename)

        with translate_errors():
            done = migrate.migrate(
                url, target=target, on_applied=step, flavor=flavor, airflow_schema=airflow_schema
            )
        applied = [m.filename for m in done]
    return applied


@db_app.command("migrate")
@handle_errors
def migrate_command(
    database_url: DatabaseUrl = None,
    to: Annotated[int | None, typer.Option("--to", help="Stop at this version.")] = None,
    airflow: AirflowFlag = False,
    airflow_schema: AirflowSchema = None,
    json_output: JsonOutput = False,
) -> None:
    """Apply every pending migration (safe to run concurrently and repeatedly)."""
    flavor = "airflow" if airflow or airflow_schema else None
    with database(database_url) as url:
        applied = migrate_with_progress(
            url,
            target=to,
            quiet=json_output,
            flavor=flavor,
            airflow_schema=airflow_schema or "public",
        )
    if json_output:
        print_json({"applied": applied, "latest": migrate.latest_version()})
    elif applied:
        for name in applied:
            console.print(f"applied {name}")
    else:
        console.print("nothing to migrate: the schema is up to date")


def _status(url: str) -> dict[str, object]:
    with translate_errors(), psycopg.connect(url, autocommit=True) as conn:
        recorded = {row.version: row for row in migrate.applied(conn)}
        compatibility = migrate.compatibility(conn)
        applied_at = {}
        if recorded:
            rows = conn.execute("SELECT version, applied_at FROM tistate.schema_migrations")
            applied_at = {version: at for version, at in rows.fetchall()}
    migrations = []
    for m in migrate.discover():
        row = recorded.get(m.version)
        if row is None:
            state = "pending"
        elif row.checksum != m.checksum:
            state = "changed"
        else:
            state = "applied"
        migrations.append(
            {
                "version": m.version,
                "name": m.name,
                "state": state,
                "applied_at": applied_at.get(m.version),
            }
        )
    known = {m.version for m in migrate.discover()}
    for version, row in sorted(recorded.items()):
        if version not in known:
            migrations.append(
                {"version": version, "name": row.name, "state": "unknown", "applied_at": None}
            )
    return {
        "schema_version": max(recorded, default=0),
        "latest_version": migrate.latest_version(),
        "flavor": compatibility.flavor,
        "airflow_schema": compatibility.airflow_schema,
        "airflow_revision": compatibility.airflow_revision,
        "problems": compatibility.problems,
        "migrations": migrations,
    }


@db_app.command("status")
@handle_errors
def status_command(database_url: DatabaseUrl = None, json_output: JsonOutput = False) -> None:
    """Show applied and pending migrations."""
    with database(database_url) as url:
        status = _status(url)
    if json_output:
        print_json(status)
        return
    rows = [
        (m["version"], m["name"], m["state"], m["applied_at"])
        for m in status["migrations"]  # type: ignore[attr-defined]
    ]
    console.print(table(None, ["version", "name", "state", "applied at"], rows))
    console.print(
        f"schema version {status['schema_version']}, this tistate ships {status['latest_version']}"
    )
    if status["flavor"] == "airflow":
        console.print(
            f"flavor airflow: Airflow's tables in schema {status['airflow_schema']}, "
            f"alembic revision {status['airflow_revision']}"
        )
    elif status["flavor"]:
        console.print("flavor standalone: tistate's own copy of Airflow's tables")
    for problem in status["problems"]:  # type: ignore[attr-defined]
        console.print(f"problem: {problem}")


@db_app.command("verify")
@handle_errors
def verify_command(database_url: DatabaseUrl = None, json_output: JsonOutput = False) -> None:
    """Check the migration history against the bundled files, and in Airflow mode the Airflow
    revision, the columns tistate uses and tistate_owner's grants."""
    with (
        database(database_url) as url,
        translate_errors(),
        psycopg.connect(url, autocommit=True) as conn,
    ):
        problems = migrate.verify(conn)
        compatibility = migrate.compatibility(conn)
        problems += compatibility.problems
        pending = [m.filename for m in migrate.pending(conn)]
    if json_output:
        print_json(
            {
                "ok": not problems and not pending,
                "flavor": compatibility.flavor,
                "airflow_revision": compatibility.airflow_revision,
                "problems": problems,
                "pending": pending,
            }
        )
    else:
        for problem in problems:
            console.print(f"problem: {problem}")
        for name in pending:
            console.print(f"pending: {name}")
    if problems:
        raise SchemaOutdatedError(
            "the database's migration history does not match this tistate",
            detail={"reason": "schema_mismatch", "problems": problems},
            hint="fix forward with a new migration; never edit an applied one",
        )
    if pending:
        raise SchemaOutdatedError(
            f"{len(pending)} migration(s) pending", detail={"pending": pending}
        )
    if not json_output:
        console.print("ok: every applied migration matches its file")
        if compatibility.flavor == "airflow":
            console.print(
                f"ok: Airflow revision {compatibility.airflow_revision},"
                " columns and grants as expected"
            )


@db_app.command("sql")
@handle_errors
def sql_command(
    version: Annotated[int, typer.Argument(help="Migration version, e.g. 1.")],
) -> None:
    """Print one migration's SQL (for installing with your own tool or psql)."""
    typer.echo(migrate.migration_sql(version), nl=False)


@db_app.command("snapshot")
@handle_errors
def snapshot_command(
    database_url: DatabaseUrl = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Target directory (default: sql_functions/snapshot of a source checkout)."
        ),
    ] = None,
) -> None:
    """Regenerate the snapshot (schema.sql, functions/*.sql) from a migrated database."""
    if directory is None and not (migrate.snapshot_dir().parents[1] / "pyproject.toml").is_file():
        raise UsageError(
            "outside a source checkout there is no sql_functions/snapshot: give --dir DIR",
            hint="tistate db snapshot --dir ./snapshot",
        )
    with database(database_url) as url:
        written = migrate.write_snapshot(url, directory)
    console.print(f"wrote {len(written)} files")
