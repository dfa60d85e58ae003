"""Forward-only migration runner for the SQL in sql_functions/migrations.

Each pending migration runs in its own transaction under a transaction-scoped advisory lock, so any
number of processes may migrate the same database at once: the first applies, the others wait, then
see the version recorded and skip it. An applied migration whose file changed is refused
(checksums).
The psql loop in docs/dba.md performs exactly the same statements, so both paths give one result.

Two flavors of one SQL source: `standalone` (schema tistate holds its own copy of Airflow's tables)
and `airflow` (the functions run on the tables `airflow db migrate` made, in `airflow_schema`). The
flavor is chosen at install (the session setting tistate.flavor, which 0001 records in
tistate.installation); a migration whose first line is `-- tistate:flavor=standalone` is recorded
but not run in the airflow flavor.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

# 'tistate' as a number; the same constant appears in sql_functions/psql_migrate.sh.
ADVISORY_LOCK_KEY = 7_454_871_387_525_470
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FLAVOR_MARKER = re.compile(r"^-- tistate:flavor=(standalone|airflow)\s*$")
FLAVORS = ("standalone", "airflow")


class MigrationError(Exception):
    """The database's migration history does not match the bundled migrations."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str

    @property
    def filename(self) -> str:
        return self.path.name

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def only_flavor(self) -> str | None:
        """The one flavor this migration runs in (its first-line marker), or None for both."""
        with self.path.open(encoding="utf-8") as file:
            match = _FLAVOR_MARKER.match(file.readline())
        return match[1] if match else None


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str


def migrations_dir() -> Path:
    """The bundled migrations (inside the wheel), else the checkout's sql_functions/migrations."""
    bundled = resources.files("tistate").joinpath("sql_functions", "migrations")
    if bundled.is_dir():
        return Path(str(bundled))
    checkout = Path(__file__).resolve().parents[2] / "sql_functions" / "migrations"
    if checkout.is_dir():
        return checkout
    raise MigrationError("no migrations found: neither bundled nor in a checkout")


def discover(directory: Path | None = None) -> list[Migration]:
    """All migration files in version order; refuses gaps, duplicates and badly named files."""
    directory = directory or migrations_dir()
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_snake_name.sql")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found.append(Migration(int(match[1]), match[2], path, checksum))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.filename}: expected version {expected:04d}")
    return found


def latest_version() -> int:
    migrations = discover()
    return migrations[-1].version if migrations else 0


def applied(conn: psycopg.Connection[Any]) -> list[AppliedMigration]:
    """What schema_migrations records, or nothing on a database never migrated."""
    # A plain MVCC query of pg_tables, not to_regclass(): the catalog cache may not yet have seen a
    # table another migrator committed while we waited for the advisory lock.
    exists = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
        " WHERE schemaname = 'tistate' AND tablename = 'schema_migrations')"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "SELECT version, name, checksum FROM tistate.schema_migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*row) for row in rows]


def verify(
    conn: psycopg.Connection[Any], migrations: Iterable[Migration] | None = None
) -> list[str]:
    """Problems between the database's history and the bundled files (empty when consistent)."""
    known = {m.version: m for m in (migrations if migrations is not None else discover())}
    problems = []
    for row in applied(conn):
        migration = known.get(row.version)
        if migration is None:
            problems.append(
                f"version {row.version} ({row.name}) is applied but unknown to this code"
            )
        elif migration.checksum != row.checksum:
            problems.append(
                f"{migration.filename} was edited after it was applied (checksum mismatch)"
            )
    return problems


def installed_flavor(conn: psycopg.Connection[Any]) -> tuple[str, str | None] | None:
    """(flavor, airflow schema) of an installed database, None before 0001 ran."""
    exists = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
        " WHERE schemaname = 'tistate' AND tablename = 'installation')"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT flavor, airflow_schema FROM tistate.installation").fetchone()
    return (row[0], row[1]) if row else None


def pending(conn: psycopg.Connection[Any]) -> list[Migration]:
    done = {row.version for row in applied(conn)}
    return [m for m in discover() if m.version not in done]


def migrate(
    conninfo: str,
    *,
    target: int | None = None,
    on_applied: Callable[[Migration], None] | None = None,
    flavor: str | None = None,
    airflow_schema: str = "public",
) -> list[Migration]:
    """Apply every pending migration up to `target`; returns those this process applied.

    `flavor` is the flavor to install (default standalone); on an installed database it must be
    None or the installed one. An Airflow database that tistate does not support is refused by
    0001, with nothing installed.
    """
    if flavor is not None and flavor not in FLAVORS:
        raise MigrationError(f"unknown flavor {flavor!r}: one of {', '.join(FLAVORS)}")
    migrations = [m for m in discover() if target is None or m.version <= target]
    done: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        problems = verify(conn, discover())
        if problems:
            raise MigrationError("; ".join(problems))
        installed = installed_flavor(conn)
        if installed is not None and flavor is not None and installed[0] != flavor:
            raise MigrationError(
                f"this database has tistate installed as {installed[0]}, not {flavor}; "
                "the flavor is chosen once, at install"
            )
        if installed is not None and flavor == "airflow" and installed[1] != airflow_schema:
            raise MigrationError(
                f"tistate is installed on Airflow schema {installed[1]}, not {airflow_schema}"
            )
        settings = {"flavor": flavor or "standalone", "airflow_schema": airflow_schema}
        for migration in migrations:
            if _apply_one(conn, migration, settings):
                done.append(migration)
            if on_applied:
                on_applied(migration)
    return done


def _apply_one(
    conn: psycopg.Connection[Any], migration: Migration, settings: dict[str, str]
) -> bool:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        # Re-read under the lock: another process may have applied it while we waited.
        recorded = {row.version: row for row in applied(conn)}
        if migration.version in recorded:
            if recorded[migration.version].checksum != migration.checksum:
                raise MigrationError(f"{migration.filename} was edited after it was applied")
            return False
        installed = installed_flavor(conn)
        flavor = installed[0] if installed else settings["flavor"]
        conn.execute("SET LOCAL lock_timeout = '5s'")
        conn.execute("SELECT set_config('tistate.flavor', %s, true)", (flavor,))
        conn.execute(
            "SELECT set_config('tistate.airflow_schema', %s, true)", (settings["airflow_schema"],)
        )
        if migration.only_flavor in (None, flavor):
            try:
                conn.execute(migration.read().encode())  # a trusted file; bytes run as a script
            except psycopg.Error as error:
                if error.sqlstate == "TS501":  # 0001 refused this database: nothing installed
                    raise MigrationError(str(error.diag.message_primary)) from None
                raise
        conn.execute(
            "INSERT INTO tistate.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )
    return True


def migration_sql(version: int) -> str:
    for migration in discover():
        if migration.version == version:
            return migration.read()
    raise MigrationError(f"no migration with version {version}")


def _run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MigrationError(f"{cmd[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _normalise_dump(text: str) -> str:
    # Drop lines that change from one dump to the next (tool version, random \restrict keys).
    unstable = ("-- Dumped from", "-- Dumped by", "\\restrict", "\\unrestrict")
    lines = [line for line in text.splitlines() if not line.startswith(unstable)]
    return "\n".join(lines).strip() + "\n"


def snapshot_files(conninfo: str) -> dict[str, str]:
    """The generated review view of a migrated database: relative path -> content.

    schema.sql holds types, tables, indexes, constraints and grants (pg_dump without functions);
    functions/<name>.sql holds one function each, from pg_get_functiondef, with its comment.
    """
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "dump"
        _run(
            [
                "pg_dump",
                "--schema-only",
                "--no-owner",
                "--schema=tistate",
                "-Fc",
                "-f",
                str(archive),
                "-d",
                conninfo,
            ]
        )
        toc = _run(["pg_restore", "-l", str(archive)]).splitlines()
        keep = Path(tmp) / "toc"
        keep.write_text("\n".join(line for line in toc if " FUNCTION " not in line) + "\n")
        schema = _run(["pg_restore", "--no-owner", "-L", str(keep), "-f", "-", str(archive)])
    files = {"schema.sql": _normalise_dump(schema)}
    with psycopg.connect(conninfo) as conn:
        # Names in the definitions are qualified unless visible: the same output whatever the
        # database's or role's search_path.
        conn.execute("SET search_path = pg_catalog")
        rows = conn.execute(
            """
            SELECT p.proname, pg_get_function_identity_arguments(p.oid),
                   pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc'),
                   coalesce((SELECT string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                        ELSE a.grantee::regrole::text END, ', ')
                             FROM aclexplode(p.proacl) AS a
                             WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), '')
            FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE n.nspname = 'tistate'
            ORDER BY p.proname, 2
            """
        ).fetchall()
    names = [row[0] for row in rows]
    defined_by = _defining_migrations()
    calls: dict[str, list[str]] = {}
    for name, args, definition, comment, grantees in rows:
        filename = name if names.count(name) == 1 else f"{name}({args})"
        text = (
            f"-- defined by migration {defined_by.get(name, '?')}\n"
            f"-- EXECUTE granted to: {grantees or 'owner only'}\n" + definition.rstrip() + ";\n"
        )
        if comment:
            text += f"\nCOMMENT ON FUNCTION tistate.{name}({args}) IS {_quote(comment)};\n"
        files[f"functions/{filename}.sql"] = text
        body = definition.split("AS $function$", 1)[-1]
        calls[name] = sorted({c for c in _CALL.findall(body) if c != name and c in names})
    files["index.md"] = _index(rows, calls, defined_by)
    return files


_CALL = re.compile(r"\btistate\.(\w+)\s*\(")


def _defining_migrations() -> dict[str, str]:
    """Function name -> the file of the newest migration that (re)defines it."""
    found: dict[str, str] = {}
    pattern = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION tistate\.(\w+)\s*\(")
    for migration in discover():
        for name in pattern.findall(migration.read()):
            found[name] = migration.filename
    return found


def _index(rows: list[Any], calls: dict[str, list[str]], defined_by: dict[str, str]) -> str:
    """The generated map of the SQL API: each public function, who may call it, what it calls."""
    lines = [
        "# The SQL API at a glance (generated by `tistate db snapshot`; do not edit)",
        "",
        "Public functions (EXECUTE granted to a role), the migration that last defined each,",
        "and the tistate functions each calls directly (private helpers start with `_`).",
        "",
        "| function | granted to | defined by | calls |",
        "|---|---|---|---|",
    ]
    for name, args, _definition, _comment, grantees in rows:
        if not grantees:
            continue
        called = ", ".join(f"`{c}`" for c in calls[name]) or "-"
        lines.append(f"| `{name}({args})` | {grantees} | {defined_by.get(name, '?')} | {called} |")
    private = sorted({r[0] for r in rows if not r[4]})
    lines += ["", "Private helpers: " + ", ".join(f"`{p}`" for p in private), ""]
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def snapshot_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "sql_functions" / "snapshot"


def write_snapshot(conninfo: str, directory: Path | None = None) -> list[str]:
    """Regenerate sql_functions/snapshot/ from a migrated database; returns the files written."""
    directory = directory or snapshot_dir()
    files = snapshot_files(conninfo)
    if (directory / "functions").is_dir():
        for stale in (directory / "functions").glob("*.sql"):
            stale.unlink()
    for relative, content in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return sorted(files)


@dataclass(frozen=True)
class Compatibility:
    """What an installed database is, and why tistate could not run safely on it now."""

    flavor: str | None  # None: tistate is not installed
    airflow_schema: str | None
    airflow_revision: str | None
    problems: list[str]


def compatibility(conn: psycopg.Connection[Any]) -> Compatibility:
    """The flavor, the Airflow revision and tistate.compatibility_problems() of a database."""
    installed = installed_flavor(conn)
    if installed is None:
        return Compatibility(None, None, None, [])
    flavor, schema = installed
    revision = None
    if flavor == "airflow" and schema is not None:
        found = conn.execute(
            "SELECT to_regclass(quote_ident(%s) || '.alembic_version') IS NOT NULL", (schema,)
        ).fetchone()
        if found and found[0]:
            row = conn.execute(
                psycopg.sql.SQL(
                    "SELECT string_agg(version_num, ',') FROM {}.alembic_version"
                ).format(psycopg.sql.Identifier(schema))
            ).fetchone()
            revision = row[0] if row else None
    has_check = conn.execute(
        "SELECT to_regprocedure('tistate.compatibility_problems()') IS NOT NULL"
    ).fetchone()
    problems: list[str] = []
    if has_check and has_check[0]:
        problems = [row[0] for row in conn.execute("SELECT tistate.compatibility_problems()")]
    return Compatibility(flavor, schema, revision, problems)
