"""A newcomer's first hour with the CLI (issue 16, and the CLI items of issue 17): the demo never
writes where it was not told to and its next step runs; a refused connection is a configuration
error, not "retry"; usage mistakes are usage errors; output fits 80 columns with one timestamp
format; `serve --help` lists every setting; `token mint` offers what `serve` accepts.

Real PostgreSQL, real console-script subprocesses (or typer's runner), a real PgBouncer for the
password check; nothing of the database is mocked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from faultkit.processes import PGBOUNCER, _give_to_postgres, free_port
from tistate import errors
from tistate.cli import app

REPO = Path(__file__).resolve().parents[1]
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PRODUCER = """
dag_id: producer
tasks:
  - task_id: load
    max_tries: 1
    outlets:
      - {type: Asset, name: orders, uri: "s3://lake/orders"}
"""


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment: none of the test run's TISTATE_/PG settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TISTATE_", "PG"))}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str], timeout: int = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def cli(dsn: str, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, [*args, "--database-url", dsn], env=env)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def tables_of(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'tistate'").fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------ 1-2: the demo
def test_demo_never_writes_into_the_exported_database_and_its_next_step_runs(
    empty_db_dsn: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "pgdata"
    env = user_env(TISTATE_DATABASE_URL=empty_db_dsn, TISTATE_DATA_DIR=str(data_dir))
    demo = run("tistate", "demo", "--runs", "1", "--tasks", "2", env=env)
    assert demo.returncode == 0, demo.stderr
    assert "TISTATE_DATABASE_URL is set" in demo.stderr and "--database-url" in demo.stderr
    assert tables_of(empty_db_dsn) == 0, "the demo wrote into the exported database"
    assert (data_dir / "PG_VERSION").exists()
    assert not demo.stdout.startswith("\n")  # no blank lines of progress bars in a pipe
    assert "\n\n\n" not in demo.stdout

    step = next(line for line in demo.stdout.splitlines() if line.startswith("next: "))
    command = step.removeprefix("next: ")
    ti_id = UUID_RE.search(command)
    assert ti_id
    # The printed step, run as the user would, with TISTATE_DATABASE_URL still exported.
    shown = run("bash", "-c", command, env={**env, "COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    assert ti_id.group(0) in shown.stdout and "success" in shown.stdout
    assert str(data_dir) in demo.stdout  # where the embedded data lives
    assert "Delete that directory" in demo.stdout


def test_without_any_url_commands_use_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    env = user_env(TISTATE_DATA_DIR=str(data_dir))
    demo = run("tistate", "demo", "--runs", "1", "--tasks", "1", "--json", env=env)
    assert demo.returncode == 0, demo.stderr
    report = json.loads(demo.stdout)
    assert report["next_step"] == f"TISTATE_DATA_DIR={shlex.quote(str(data_dir))} tistate " + (
        f"ti show {report['sample_ti_id']}"
    )
    listed = run("tistate", "ti", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert report["sample_ti_id"] in {t["id"] for t in json.loads(listed.stdout)}


def test_demo_into_a_named_database_says_so_first(db_dsn: str) -> None:
    result = cli(db_dsn, "demo", "--runs", "1", "--tasks", "1")
    assert "writes into the database --database-url names" in result.stderr
    assert "tistate ti show" in result.stdout and "--database-url" in result.stdout


def test_demo_ignores_the_variable_for_its_option() -> None:
    """--database-url of the demo has no envvar: the variable never selects the demo's target."""
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "env var: TISTATE_DATABASE_URL" not in result.stdout


# ------------------------------------------------------------------ 6: refused connections
@pytest.fixture
def password_bouncer(tmp_path: Path) -> Any:
    """PgBouncer on loopback that checks a password (the shared server trusts everyone)."""
    root = tmp_path / "bouncer"
    root.mkdir()
    root.chmod(0o755)
    port = free_port()
    (root / "userlist.txt").write_text('"postgres" "right-password"\n')
    lines = [
        "[databases]",
        "* = host=127.0.0.1 port=5432",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = plain",
        f"auth_file = {root / 'userlist.txt'}",
        f"logfile = {root / 'pgbouncer.log'}",
        f"pidfile = {root / 'pgbouncer.pid'}",
    ]
    if os.geteuid() == 0:
        lines.append("user = postgres")
    (root / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    for path in [tmp_path, root, *root.iterdir()]:
        path.chmod(path.stat().st_mode | 0o755)
        _give_to_postgres(path)
    process = subprocess.Popen(
        [PGBOUNCER, str(root / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            psycopg.connect(
                f"postgresql://postgres:right-password@127.0.0.1:{port}/postgres", connect_timeout=1
            ).close()
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("pgbouncer did not start") from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    ("url", "sqlstate", "hint"),
    [
        ("postgresql://postgres@127.0.0.1:5432/tistate_no_such_db", "3D000", "createdb"),
        ("postgresql://tistate_no_such_role@127.0.0.1:5432/postgres", "28000", "CREATE ROLE"),
    ],
    ids=["missing-database", "unknown-role"],
)
def test_a_refused_connection_is_a_configuration_error(url: str, sqlstate: str, hint: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught, errors.translate_errors():
        psycopg.connect(url)
    assert caught.value.sqlstate == sqlstate and not caught.value.retryable
    done = run("tistate", "ti", "list", "--database-url", url, env=user_env())
    assert done.returncode == errors.ConfigurationError.exit_code == 78
    assert sqlstate in done.stderr and hint in done.stderr
    assert "retry" not in done.stderr


def test_a_wrong_password_is_a_configuration_error(password_bouncer: int) -> None:
    url = f"postgresql://postgres:wrong-password@127.0.0.1:{password_bouncer}/postgres"
    with pytest.raises(errors.ConfigurationError) as caught, errors.translate_errors():
        psycopg.connect(url)
    assert caught.value.sqlstate == "28P01"
    done = run("tistate", "dag", "list", "--database-url", url, env=user_env())
    assert done.returncode == 78, done.stderr
    assert "password" in done.stderr and "credentials" in done.stderr


def test_an_unreachable_server_stays_retryable() -> None:
    done = run("tistate", "dag", "list", "--database-url", "postgresql://x@127.0.0.1:1/x",
               env=user_env())  # fmt: skip
    assert done.returncode == 75


def test_errors_str_carries_the_hint(empty_db_dsn: str) -> None:
    with (
        pytest.raises(errors.SchemaOutdatedError) as caught,
        psycopg.connect(empty_db_dsn) as conn,
        errors.translate_errors(),
    ):
        conn.execute("SELECT tistate.schema_version()")
    assert "run `tistate db migrate`" in str(caught.value)


# ------------------------------------------------------------------ 6, 17: usage and payloads
def test_usage_errors(db_dsn: str, tmp_path: Path) -> None:
    usage = errors.UsageError.exit_code
    assert usage == 2
    missing = cli(db_dsn, "dag", "define", str(tmp_path / "nope.yaml"), code=usage)
    assert "nope.yaml" in missing.stderr and "TS422" not in missing.stderr
    empty = CliRunner().invoke(app, ["ti", "list", "--database-url", ""])
    assert empty.exit_code == usage and "empty" in empty.stderr
    bad_state = cli(db_dsn, "ti", "list", "--state", "sucess", code=usage)
    assert "success" in bad_state.stderr  # the accepted states are listed
    cli(db_dsn, "asset", "emit", code=usage)


def test_nan_and_yaml_aliases_are_refused(db_dsn: str, tmp_path: Path) -> None:
    payload = errors.InvalidPayloadError.exit_code
    nan = cli(db_dsn, "asset", "emit", "orders", "--extra", '{"a": NaN}', code=payload)
    assert "NaN" in nan.stderr and "22P02" not in nan.stderr
    yaml_nan = tmp_path / "p.yaml"
    yaml_nan.write_text("state: success\nend_date: '2026-01-01T00:00:00Z'\nrendered: .nan\n")
    cli(db_dsn, "ti", "update-state", "00000000-0000-7000-8000-000000000000", str(yaml_nan),
        code=payload)  # fmt: skip
    # 543 bytes that expand into ~4 GiB with aliases: refused at the first alias
    bomb = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n"
    for name, previous in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    bomb_file = tmp_path / "bomb.yaml"
    bomb_file.write_text(bomb)
    started = time.monotonic()
    refused = cli(db_dsn, "dag", "define", str(bomb_file), code=payload)
    assert time.monotonic() - started < 10
    assert "alias" in refused.stderr


def test_asset_emit_by_uri_alone(db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PRODUCER)
    cli(db_dsn, "dag", "define", str(tmp_path / "p.yaml"))
    emitted = json.loads(cli(db_dsn, "asset", "emit", "--uri", "s3://lake/orders", "--json").stdout)
    assert emitted["asset_event_id"]


def test_hints_name_cli_commands(db_dsn: str) -> None:
    result = cli(db_dsn, "run", "create", "nope", "r1", code=errors.NotFoundError.exit_code)
    assert "tistate dag define FILE" in result.stderr
    assert "define_dag" not in result.stderr


# ------------------------------------------------------------------ 7: terminal output
def test_output_at_80_columns_and_one_timestamp_format(db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PRODUCER)
    cli(db_dsn, "dag", "define", str(tmp_path / "p.yaml"))
    ids = []
    for r in range(3):
        tasks = json.loads(cli(db_dsn, "run", "create", "producer", f"run_{r}", "--json").stdout)
        ids.append(tasks[0]["ti_id"])
        started = cli(db_dsn, "ti", "run", ids[-1]).stdout
        assert "True" not in started and "False" not in started
        cli(db_dsn, "ti", "update-state", ids[-1], "--state", "success")
    env = user_env(TISTATE_DATABASE_URL=db_dsn, COLUMNS="80")
    for args in (("ti", "list"), ("ti", "show", ids[0]), ("asset", "list"), ("asset", "events")):
        out = run("tistate", *args, env=env)
        assert out.returncode == 0, out.stderr
        for line in out.stdout.splitlines():
            assert len(line) <= 80, (args, line)
        for ti_id in ids if args == ("ti", "list") else ids[:1]:
            if args[0] == "ti":
                assert ti_id in out.stdout, (args, out.stdout)  # never folded
        assert "+00:00" not in out.stdout and "True" not in out.stdout
        assert "False" not in out.stdout
        stamps = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+\S*", out.stdout)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps), stamps
    shown = json.loads(run("tistate", "ti", "show", ids[0], "--json", env=env).stdout)
    for key in ("start_date", "end_date", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", shown["task_instance"][key])
    assert all(e["timestamp"].endswith("Z") for e in shown["asset_events"])


def test_ti_list_says_when_the_limit_cut_it(db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PRODUCER)
    cli(db_dsn, "dag", "define", str(tmp_path / "p.yaml"))
    for r in range(3):
        cli(db_dsn, "run", "create", "producer", f"run_{r}")
    cut = cli(db_dsn, "ti", "list", "--limit", "2", "--json")
    assert len(json.loads(cut.stdout)) == 2 and "more match" in cut.stderr
    whole = cli(db_dsn, "ti", "list", "--limit", "3", "--json")
    assert len(json.loads(whole.stdout)) == 3 and "more match" not in whole.stderr


# ------------------------------------------------------------------ 5: serve and tokens
def test_serve_help_lists_every_setting_with_its_default() -> None:
    source = (REPO / "wrapper" / "tistate" / "http" / "settings.py").read_text()
    names = set(re.findall(r'take\(\s*"(TISTATE_[A-Z_]+)"', source))
    assert len(names) > 20
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = re.sub(r"\s+", " ", result.stdout)
    for name in sorted(names):
        assert re.search(rf"{name} \[[^\]]+\]", text), f"serve --help does not list {name}"
    assert "TISTATE_JWT_SECRET" in text and "token_hex(32)" in text
    assert "/docs" in text


def test_token_mint_offers_only_what_serve_accepts() -> None:
    ti = "01a2512e-9338-7a6d-89b0-1e62d4392551"
    env = {"TISTATE_JWT_SECRET": "s" * 64}
    assert (
        CliRunner().invoke(app, ["token", "mint", ti, "--algorithm", "HS512"], env=env).exit_code
        == 0
    )
    refused = CliRunner().invoke(app, ["token", "mint", ti, "--algorithm", "HS384"], env=env)
    assert refused.exit_code == errors.UsageError.exit_code
    assert "HS256" in refused.stderr
    help_text = CliRunner().invoke(app, ["token", "mint", "--help"], env={"COLUMNS": "200"})
    assert "HS384" not in help_text.stdout


def test_openapi_declares_the_bearer_scheme_and_examples() -> None:
    document = json.loads((REPO / "docs" / "openapi.json").read_text())
    schemes = document["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        if path.startswith("/execution/"):
            for operation in operations.values():
                assert operation["security"] == [{name: []}]
                examples = operation["requestBody"]["content"]["application/json"]["examples"]
                assert examples, path


def test_serve_on_a_database_without_the_schema_says_so_once(empty_db_dsn: str) -> None:
    port = free_port()
    env = user_env(TISTATE_JWT_SECRET="s" * 64)
    process = subprocess.Popen(
        ["tistate", "serve", "--port", str(port), "--database-url", empty_db_dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        time.sleep(4)  # the relay would have retried ~3 times by now
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert output.count("schema missing: run `tistate db migrate`") <= 2, output  # CLI + relay
    assert output.count("notification relay") <= 1, output
    assert "schema missing" in output.splitlines()[0]
