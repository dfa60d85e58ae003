"""The README's steps run as written: the three steps to a database, the library snippet, the CLI
first steps with examples/ and the HTTP quickstart (curl against a real server on loopback).

Each block is taken from README.md by its `<!-- README test: NAME -->` marker, never copied here, so
a README edit that breaks a step fails this test. The test supplies only what the README tells the
reader to choose: the database (a fresh one of the test's), the secret and the port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from http_support import free_port

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_block(name: str) -> str:
    match = re.search(rf"<!-- README test: {name} -->\n```(\w+)\n(.*?)```", README, re.S)
    assert match, f"README.md has no block marked 'README test: {name}'"
    return match.group(2)


def clean_env(database_url: str, **extra: str) -> dict[str, str]:
    """The user's environment: no TISTATE_/PG settings of the test run, the README's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TISTATE_", "PG"))}
    env.update(TISTATE_DATABASE_URL=database_url, COLUMNS="100", **extra)
    return env


def run_setup(env: dict[str, str]) -> None:
    """The README's three steps, less creating the database and exporting its URL (the test's)."""
    steps = [
        line
        for line in readme_block("setup").splitlines()
        if line.strip() and not line.startswith(("createdb", "export "))
    ]
    assert steps == ["tistate db migrate"], steps
    for step in steps:
        done = subprocess.run(
            ["bash", "-c", step], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr


def test_setup_steps_say_what_to_create(empty_db_dsn: str) -> None:
    block = readme_block("setup")
    assert "createdb" in block and "TISTATE_DATABASE_URL" in block
    env = clean_env(empty_db_dsn)
    run_setup(env)
    status = subprocess.run(
        ["tistate", "db", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr


def test_library_snippet_runs_as_written(empty_db_dsn: str) -> None:
    env = clean_env(empty_db_dsn)
    run_setup(env)
    snippet = readme_block("library")
    done = subprocess.run(
        [sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # asset_event_ids, queued_dag_ids: one event, no consumer defined
    assert re.fullmatch(r"\[\d+\] \[\]\n", done.stdout), done.stdout


def test_library_snippet_without_migrate_says_what_to_do(empty_db_dsn: str) -> None:
    """The traceback of a forgotten `db migrate` names the command (TistateError.__str__)."""
    env = clean_env(empty_db_dsn)
    done = subprocess.run(
        [sys.executable, "-c", readme_block("library")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "SchemaOutdatedError" in last and "run `tistate db migrate`" in last, last


def test_cli_steps_and_http_quickstart_run_as_written(empty_db_dsn: str) -> None:
    port = free_port()
    env = clean_env(
        empty_db_dsn,
        TISTATE_JWT_SECRET="a" * 64,
        TISTATE_PORT=str(port),
    )
    run_setup(env)

    cli = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block("cli")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert "Traceback" not in cli.stdout + cli.stderr
    # ti show of the task that succeeded: its direct event, its alias event, the queued consumers
    for expected in ("success", "orders", "table-a", "daily-tables", "orders_report"):
        assert expected in cli.stdout, expected
    assert "tables_sync" in cli.stdout and "orders_audit" in cli.stdout

    http = readme_block("http")
    expected_codes = re.findall(r"# (\d{3})\b", http)
    assert expected_codes == ["200", "204", "204", "200", "409"], expected_codes
    # The README starts the server in the background and kills it at the end; a failed step
    # must not leave it running.
    script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + http
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    codes = [line for line in done.stdout.splitlines() if re.fullmatch(r"\d{3}", line)]
    assert codes == expected_codes, (done.stdout, done.stderr)


def test_readme_names_the_test_requirements() -> None:
    section = README[README.index("## Running the tests") :]
    for needed in (
        "pip install -e '.[test]'",
        "postgresql-15-pgtap",
        "libtap-parser-sourcehandler-pgtap-perl",
        "apache-airflow[postgres]==3.3.2",
        "minutes",
    ):
        assert needed in section, needed


@pytest.mark.parametrize("link", ["examples/", "docs/dags.md", "docs/dba.md"])
def test_readme_links_exist(link: str) -> None:
    assert f"]({link})" in README
    assert (REPO / link).exists()
