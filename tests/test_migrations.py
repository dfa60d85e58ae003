"""The migrator: fresh install, idempotent re-run, concurrency, checksums, psql-only equivalence."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tistate import migrate

ROOT = Path(__file__).resolve().parents[1]


def test_fresh_install_applies_every_migration(empty_db_dsn: str) -> None:
    applied = migrate.migrate(empty_db_dsn)
    assert [m.version for m in applied] == [m.version for m in migrate.discover()]
    with psycopg.connect(empty_db_dsn) as conn:
        row = conn.execute("SELECT tistate.schema_version()").fetchone()
    assert row is not None and row[0] == migrate.latest_version()


def test_rerun_is_a_noop(empty_db_dsn: str) -> None:
    migrate.migrate(empty_db_dsn)
    assert migrate.migrate(empty_db_dsn) == []


def test_ten_concurrent_migrators_apply_each_migration_once(empty_db_dsn: str) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: migrate.migrate(empty_db_dsn), range(10)))
    applied_versions = sorted(m.version for result in results for m in result)
    assert applied_versions == [m.version for m in migrate.discover()]
    with psycopg.connect(empty_db_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM tistate.schema_migrations").fetchone()
    assert count is not None and count[0] == len(migrate.discover())


def test_edited_applied_migration_is_refused(empty_db_dsn: str) -> None:
    migrate.migrate(empty_db_dsn)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE tistate.schema_migrations SET checksum = 'edited' WHERE version = 1")
        assert migrate.verify(conn) == [
            "0001_tistate_schema.sql was edited after it was applied (checksum mismatch)"
        ]
    with pytest.raises(migrate.MigrationError, match="edited"):
        migrate.migrate(empty_db_dsn)


def test_unknown_applied_version_is_reported(empty_db_dsn: str) -> None:
    migrate.migrate(empty_db_dsn)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tistate.schema_migrations (version, name, checksum)"
            " VALUES (9999, 'x', 'y')"
        )
        assert migrate.verify(conn) == ["version 9999 (x) is applied but unknown to this code"]


def _dump(dsn: str) -> str:
    result = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--schema=tistate", dsn],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    return "\n".join(
        line
        for line in out.splitlines()
        if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))
    )


def _migrations_table(dsn: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT version, name, checksum FROM tistate.schema_migrations ORDER BY version"
        ).fetchall()


def test_psql_only_install_equals_runner_install(empty_db_dsn: str, db_dsn: str) -> None:
    # db_dsn was built by the Python runner (template); empty_db_dsn gets the documented psql loop.
    subprocess.run(
        ["sh", str(ROOT / "sql_functions" / "psql_migrate.sh"), empty_db_dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    assert _dump(empty_db_dsn) == _dump(db_dsn)
    assert _migrations_table(empty_db_dsn) == _migrations_table(db_dsn)
    # and the runner then finds nothing to do
    assert migrate.migrate(empty_db_dsn) == []
