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


# Landed migrations are immutable (a database records each one's sha256 and refuses an edited
# file): a change to the SQL is a new migration. These are the checksums of tistate 0.2.0, the
# first release's baseline (0001-0009), of 0.3.0's 0010-0012 and of 0.4.0's 0013.
LANDED = {
    1: "7dbfb0b5feedeec8f9fb45fdab490d4f7ac3bd1423a997b0035a0eb49df9505b",
    2: "684cfe73f39caeb84125a4f6e0d6fc45e5cccba10224e7ef7a404eb0698100a9",
    3: "872a2521c07d64eddff6d23bbbe8872279c5c3781cd886c97dd49b189f6e5f24",
    4: "057ae478e1957f4807d59992e9f3b60d6badb0ac185d0aaa2726076b6954d6d6",
    5: "3ef329dfc86ee7ebd3e5bfe74c7b573f7c21d928a4ef77fd8f3d15e9a1767f3c",
    6: "b2f497c4489126c673ac155b4c8ef92d72791bc7b91a2f0d10bd05c94454be5b",
    7: "3fb5217606886cd6484e830b76c3b7fa8ceb701da694040f2a3ddd5bc659363d",
    8: "f67f6372db59b8efdb83ddbac2332cf8dba698812dab5eb9a97fd99b622097e1",
    9: "88fa0a8e4f969ff5f996a34f674ea430bcfe7e9ca6d130556c15bfc7c8f2e8d0",
    10: "a828fc5e71a72ad6df1d57b19b7892201316be94df11173a865e56aa10545b1d",
    11: "9df3c90fae6a63f3841c58cfcb16f79605f6de27552d53edbfea8709deb9633b",
    12: "4d5ddd5dca4d44cc8f4ce4745b308340286a5a3978698274049851371161543c",
    13: "a7097dca9cfdb0330b5961aeea04c5b49660ea4ce1c8f44cdce82182fa18c1a4",
}


def test_landed_migrations_are_unchanged() -> None:
    found = {m.version: m.checksum for m in migrate.discover()}
    assert {name: found.get(name) for name in LANDED} == LANDED
