"""Installing tistate onto a database made by Airflow 3.3.2's `airflow db migrate` (Airflow mode).

Refusals leave nothing installed; an install keeps every `airflow db` command working; the psql-only
path installs the same as the runner; the standalone tables are Airflow's, column by column; the
CLI reports the flavor and re-checks the revision, columns and grants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from tistate import migrate
from tistate.cli import app

ROOT = Path(__file__).resolve().parents[1]
# Differences between tistate's standalone tables and Airflow's (table.column: why). None today:
# every column the standalone schema has is Airflow's, with its type, nullability and default.
ALLOWED_DIFFERENCES: dict[str, str] = {}


def nothing_installed(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regnamespace('tistate') IS NULL").fetchone()
    return row is not None and row[0] is True


def columns(dsn: str, schema: str, tables: list[str]) -> dict[str, tuple[str, bool, bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod),
                      a.attnotnull, a.atthasdef
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'
                  AND a.attnum > 0 AND NOT a.attisdropped""",
            (schema, tables),
        ).fetchall()
    return {name: (typ, notnull, hasdef) for name, typ, notnull, hasdef in rows}


def test_the_standalone_tables_are_airflows_column_by_column(
    db_dsn: str, airflow_db_dsn: str
) -> None:
    with psycopg.connect(db_dsn) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT DISTINCT table_name::text FROM tistate.airflow_column")
        ]
    assert len(tables) == 19
    ours = columns(db_dsn, "tistate", tables)
    airflows = columns(airflow_db_dsn, "public", tables)
    differences = {
        name: f"tistate {mine}, Airflow {airflows.get(name, 'no such column')}"
        for name, mine in ours.items()
        if airflows.get(name) != mine and name not in ALLOWED_DIFFERENCES
    }
    assert differences == {}
    assert set(ours) - set(airflows) == set(ALLOWED_DIFFERENCES)


def test_install_on_airflow_then_every_airflow_db_command_still_works(
    airflow_db_dsn: str,
) -> None:
    applied = migrate.migrate(airflow_db_dsn, flavor="airflow")
    assert [m.version for m in applied] == [m.version for m in migrate.discover()]
    with psycopg.connect(airflow_db_dsn) as conn:
        assert migrate.compatibility(conn) == migrate.Compatibility(
            "airflow", "public", "d2f4e1b3c5a7", []
        )
        # 0002 (tistate's copy of Airflow's tables) is recorded but not run: no copy exists.
        row = conn.execute("SELECT to_regclass('tistate.task_instance')").fetchone()
        assert row is not None and row[0] is None
    for command in (["db", "migrate"], ["db", "check-migrations"], ["db", "reset", "-y"]):
        result = run_airflow(airflow_db_dsn, *command)
        assert result.returncode == 0, result.stdout + result.stderr


def run_airflow(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    params = conninfo_to_dict(dsn)
    url = "postgresql+psycopg2://{}@{}:{}/{}".format(
        params.get("user", "postgres"),
        params.get("host", "127.0.0.1"),
        params.get("port", 5432),
        params["dbname"],
    )
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'",
            "alembic revision a1b2c3d4e5f6, which this tistate does not support; supported: "
            "d2f4e1b3c5a7 (Airflow 3.3.0-3.3.2)",
        ),
        (
            "ALTER TABLE task_instance ALTER COLUMN hostname TYPE text",
            "column task_instance.hostname: expected character varying(1000) NULL without default,"
            " found text NULL without default",
        ),
        (
            "ALTER TABLE asset_event ALTER COLUMN extra SET DEFAULT '{}'",
            "column asset_event.extra: expected json NOT NULL without default, found json NOT NULL"
            " with a default",
        ),
        ("INSERT INTO team (name) VALUES ('blue')", "multi-team deployment"),
    ],
    ids=["revision", "column-type", "column-default", "multi-team"],
)
def test_an_airflow_database_tistate_does_not_support_is_refused(
    airflow_db_dsn: str, change: str, message: str
) -> None:
    with psycopg.connect(airflow_db_dsn, autocommit=True) as conn:
        conn.execute(change)  # type: ignore[arg-type]
    with pytest.raises(migrate.MigrationError) as refused:
        migrate.migrate(airflow_db_dsn, flavor="airflow")
    assert message in str(refused.value)
    assert nothing_installed(airflow_db_dsn)


def test_a_database_that_is_not_airflows_is_refused(empty_db_dsn: str) -> None:
    with pytest.raises(
        migrate.MigrationError, match=r"not an Airflow database: no table public\.alembic_version"
    ):
        migrate.migrate(empty_db_dsn, flavor="airflow")
    assert nothing_installed(empty_db_dsn)


def test_the_flavor_is_chosen_once(db_dsn: str) -> None:
    with pytest.raises(migrate.MigrationError, match="installed as standalone, not airflow"):
        migrate.migrate(db_dsn, flavor="airflow")


def dump(dsn: str) -> str:
    result = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--schema=tistate", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    return "\n".join(
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))
    )


def test_psql_only_install_on_airflow_equals_the_runners(
    airflow_template: str, airflow_db_dsn: str
) -> None:
    from conftest import create_database, drop_database

    other = f"tistate_af_psql_{os.getpid()}"
    other_dsn = create_database(other, template=airflow_template)
    try:
        migrate.migrate(airflow_db_dsn, flavor="airflow")
        result = subprocess.run(
            ["sh", str(ROOT / "sql_functions" / "psql_migrate.sh"), "--airflow", other_dsn],
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.splitlines() == [f"applying {m.path.stem}" for m in migrate.discover()]
        assert dump(other_dsn) == dump(airflow_db_dsn)
        assert migrate.migrate(other_dsn) == []
    finally:
        drop_database(other)


def test_the_cli_installs_reports_and_verifies_airflow_mode(airflow_db_dsn: str) -> None:
    runner = CliRunner()
    done = runner.invoke(
        app, ["db", "migrate", "--airflow", "--database-url", airflow_db_dsn, "--json"]
    )
    assert done.exit_code == 0, done.output
    status = json.loads(
        runner.invoke(app, ["db", "status", "--json", "--database-url", airflow_db_dsn]).stdout
    )
    assert (status["flavor"], status["airflow_schema"], status["airflow_revision"]) == (
        "airflow",
        "public",
        "d2f4e1b3c5a7",
    )
    verified = runner.invoke(app, ["db", "verify", "--json", "--database-url", airflow_db_dsn])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    # A grant lost (e.g. Airflow recreated a table) is found by verify.
    with psycopg.connect(airflow_db_dsn, autocommit=True) as conn:
        conn.execute("REVOKE INSERT ON asset_event FROM tistate_owner")
    verified = runner.invoke(app, ["db", "verify", "--json", "--database-url", airflow_db_dsn])
    assert verified.exit_code == 8
    assert json.loads(verified.stdout)["problems"] == [
        "tistate_owner lacks INSERT on public.asset_event"
    ]


def test_the_cli_refuses_with_a_clear_message(empty_db_dsn: str) -> None:
    result = CliRunner().invoke(app, ["db", "migrate", "--airflow", "--database-url", empty_db_dsn])
    assert result.exit_code != 0
    assert "not an Airflow database" in result.stderr
    assert nothing_installed(empty_db_dsn)
