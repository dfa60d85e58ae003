"""Runs every pgTAP file in db_tests/ with pg_prove against a freshly migrated database, on both
flavors: the standalone schema and a database made by Airflow 3.3.2's `airflow db migrate`.
Files about what only the standalone flavor has (its own tables, define_dag, create_dag_run) run
there only; airflow_mode.sql runs on Airflow only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

DB_TESTS = Path(__file__).resolve().parents[1] / "db_tests"
FILES = sorted(p for p in DB_TESTS.glob("*.sql") if not p.name.startswith("_"))
STANDALONE_ONLY = {"00_structure", "define_dag", "create_dag_run", "ti_queue"}
AIRFLOW_ONLY = {"airflow_mode"}
CASES = [
    pytest.param(path, flavor, id=f"{path.stem}-{flavor}")
    for flavor in ("standalone", "airflow")
    for path in FILES
    if path.stem not in (AIRFLOW_ONLY if flavor == "standalone" else STANDALONE_ONLY)
]


def test_pgtap_files_exist() -> None:
    assert FILES, "db_tests/ holds no pgTAP files"


@pytest.mark.parametrize(("path", "flavor"), CASES, scope="session")
def test_pgtap(path: Path, db_dsn: str) -> None:
    pg_prove = shutil.which("pg_prove")
    assert pg_prove, "pg_prove is not installed (Debian: libtap-parser-sourcehandler-pgtap-perl)"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA public")
    params = conninfo_to_dict(db_dsn)
    cmd = [pg_prove, "--verbose", "--failures", "-d", str(params["dbname"])]
    for option, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if key in params:
            cmd += [option, str(params[key])]
    result = subprocess.run(
        [*cmd, str(path)], capture_output=True, text=True, timeout=240, cwd=DB_TESTS
    )
    assert result.returncode == 0, result.stdout + result.stderr
