"""The `tistate` CLI: through typer's CliRunner (fast, in-process) and as a real subprocess (the
installed console script): exit codes from the error registry, --json output parsed, clear errors
on stderr and never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tistate import errors, migrate, tokens
from tistate.cli import app

REPO = Path(__file__).resolve().parents[1]
PRODUCER_YAML = """
dag_id: producer
owners: data-team
tasks:
  - task_id: load
    max_tries: 1
    outlets:
      - {type: Asset, name: orders, uri: "s3://lake/orders"}
      - {type: AssetAlias, name: daily-tables}
  - task_id: report
"""
CONSUMER_JSON = {
    "dag_id": "consumer",
    "schedule": {
        "assets": [{"name": "orders", "uri": "s3://lake/orders"}],
        "aliases": ["daily-tables"],
    },
}
SUCCESS = {
    "state": "success",
    "end_date": "2025-06-01T12:00:05Z",
    "task_outlets": [
        {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
        {"type": "AssetAlias", "name": "daily-tables"},
    ],
    "outlet_events": [
        {
            "source_alias_name": "daily-tables",
            "dest_asset_key": {"name": "table-a", "uri": "s3://lake/a"},
            "extra": {"rows": 3},
        }
    ],
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, dsn: str, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--database-url", dsn])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def invoke_json(runner: CliRunner, dsn: str, *args: str) -> Any:
    return json.loads(invoke(runner, dsn, *args, "--json").stdout)


def _define(runner: CliRunner, dsn: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "producer.yaml").write_text(PRODUCER_YAML)
    (tmp_path / "consumer.json").write_text(json.dumps(CONSUMER_JSON))
    defined = invoke_json(runner, dsn, "dag", "define", str(tmp_path / "producer.yaml"))
    assert defined["tasks"] == ["load", "report"]
    invoke(runner, dsn, "dag", "define", str(tmp_path / "consumer.json"))
    tasks = invoke_json(runner, dsn, "run", "create", "producer", "r1", "--conf", '{"a": 1}')
    return {t["task_id"]: t["ti_id"] for t in tasks}


def test_a_task_life_through_the_cli(runner: CliRunner, db_dsn: str, tmp_path: Path) -> None:
    tis = _define(runner, db_dsn, tmp_path)
    load = tis["load"]
    context = invoke_json(runner, db_dsn, "ti", "run", load, "--hostname", "w1", "--pid", "7")
    assert context["dag_run"]["conf"] == {"a": 1}
    invoke(runner, db_dsn, "ti", "heartbeat", load, "--hostname", "w1", "--pid", "7")
    (tmp_path / "success.json").write_text(json.dumps(SUCCESS))
    result = invoke_json(runner, db_dsn, "ti", "update-state", load, str(tmp_path / "success.json"))
    assert result["applied"] is True and result["new_state"] == "success"
    assert result["queued_dag_ids"] == ["consumer"]
    again = invoke(runner, db_dsn, "ti", "update-state", load, str(tmp_path / "success.json"))
    assert "no-op" in again.stdout

    shown = invoke_json(runner, db_dsn, "ti", "show", load)
    assert [link["alias"] for link in shown["alias_links"]] == ["daily-tables"]
    assert sorted(e["name"] for e in shown["asset_events"]) == ["orders", "table-a"]
    human = invoke(runner, db_dsn, "ti", "show", load).stdout
    assert "alias links" in human and "table-a" in human and "consumer" in human

    listed = invoke_json(runner, db_dsn, "ti", "list", "--dag-id", "producer")
    assert [(t["task_id"], t["state"]) for t in listed] == [
        ("load", "success"),
        ("report", "queued"),
    ]
    assert "report" in invoke(runner, db_dsn, "ti", "list", "--state", "queued").stdout

    assets = {a["name"]: a for a in invoke_json(runner, db_dsn, "asset", "list")}
    assert assets["table-a"]["aliases"] == ["daily-tables"]
    emitted = invoke_json(runner, db_dsn, "asset", "emit", "orders", "--extra", '{"by": "cli"}')
    assert emitted["queued_dag_ids"] == ["consumer"]
    events = invoke_json(runner, db_dsn, "asset", "events", "--name", "orders")
    assert events[0]["extra"] == {"by": "cli"} and len(events) == 2
    assert "table-a" in invoke(runner, db_dsn, "asset", "events").stdout

    dags = {d["dag_id"]: d for d in invoke_json(runner, db_dsn, "dag", "list")}
    assert dags["producer"]["run_count"] == 1
    assert "consumer" in invoke(runner, db_dsn, "dag", "list").stdout

    report = tis["report"]
    assert invoke_json(runner, db_dsn, "ti", "skip-downstream", load, "report") == {"skipped": 1}
    marked = invoke_json(runner, db_dsn, "ti", "mark", report, "none", "--reason", "rerun it")
    assert (marked["previous_state"], marked["new_state"]) == ("skipped", None)
    # A cleared try that ended: the next try has a new id (the old one answers TS410).
    assert marked["new_ti_id"] not in (None, report)
    report = marked["new_ti_id"]
    queued = invoke_json(runner, db_dsn, "ti", "queue", report)
    assert queued["new_state"] == "queued"
    shortcut = invoke(runner, db_dsn, "ti", "update-state", report, "--state", "failed", code=5)
    assert "TS409" in shortcut.stderr and '"previous_state": "queued"' in shortcut.stderr


def test_errors_use_the_registry_exit_codes(runner: CliRunner, db_dsn: str, tmp_path: Path) -> None:
    tis = _define(runner, db_dsn, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"state": "success", "end_date": "2025-06-01T12:00:00Z", "oops": 1}))
    result = invoke(runner, db_dsn, "ti", "update-state", tis["load"], str(bad), code=3)
    assert "TS422" in result.stderr and "oops" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"state": ')
    result = invoke(runner, db_dsn, "ti", "update-state", tis["load"], str(broken), code=3)
    assert "not valid JSON" in result.stderr
    # Right shape, rejected by the SQL: still TS422 with the field.
    sql_bad = tmp_path / "sql_bad.json"
    sql_bad.write_text(
        json.dumps(
            {**SUCCESS, "task_outlets": [{"type": "Asset", "name": "x", "uri": "airflow://x"}]}
        )
    )
    invoke(runner, db_dsn, "ti", "run", tis["load"])
    result = invoke(runner, db_dsn, "ti", "update-state", tis["load"], str(sql_bad), code=3)
    assert "task_outlets[0].uri" in result.stderr
    missing = "00000000-0000-7000-8000-000000000000"
    result = invoke(runner, db_dsn, "ti", "show", missing, code=errors.NotFoundError.exit_code)
    assert "TS404" in result.stderr
    invoke(
        runner, db_dsn, "run", "create", "producer", "r1", code=errors.InvalidStateError.exit_code
    )
    invoke(runner, db_dsn, "ti", "list", "--limit", "-1", code=2)  # usage error (typer)
    # A missing file is a usage error (issue 16), not an invalid payload.
    invoke(
        runner,
        db_dsn,
        "dag",
        "define",
        str(tmp_path / "nope.yaml"),
        code=errors.UsageError.exit_code,
    )


def test_schema_commands(runner: CliRunner, empty_db_dsn: str) -> None:
    result = invoke(runner, empty_db_dsn, "ti", "list", code=errors.SchemaOutdatedError.exit_code)
    assert "tistate db migrate" in result.stderr
    status = invoke_json(runner, empty_db_dsn, "db", "status")
    assert status["schema_version"] == 0
    assert {m["state"] for m in status["migrations"]} == {"pending"}
    invoke(runner, empty_db_dsn, "db", "verify", code=8)
    applied = invoke_json(runner, empty_db_dsn, "db", "migrate", "--to", "2")
    assert applied["applied"] == ["0001_tistate_schema.sql", "0002_airflow_tables.sql"]
    invoke(runner, empty_db_dsn, "ti", "list", code=errors.SchemaOutdatedError.exit_code)
    invoke(runner, empty_db_dsn, "db", "migrate")
    assert "up to date" in invoke(runner, empty_db_dsn, "db", "migrate").stdout
    status = invoke_json(runner, empty_db_dsn, "db", "status")
    assert status["schema_version"] == migrate.latest_version()
    assert "ok" in invoke(runner, empty_db_dsn, "db", "verify").stdout
    assert json.loads(invoke(runner, empty_db_dsn, "db", "verify", "--json").stdout)["ok"] is True
    sql = runner.invoke(app, ["db", "sql", "1"])
    assert sql.exit_code == 0 and "CREATE SCHEMA" in sql.stdout
    assert runner.invoke(app, ["db", "sql", "999"]).exit_code == 8


def test_token_mint(runner: CliRunner) -> None:
    ti_id = "01972b5c-ee00-76df-a3a2-db3722a22acf"
    secret = "x" * 64
    result = runner.invoke(app, ["token", "mint", ti_id, "--algorithm", "HS512", "--ttl", "60"],
                           env={"TISTATE_JWT_SECRET": secret})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    claims = tokens.verify(result.stdout.strip(), secret=secret, subject=ti_id)
    assert claims["sub"] == ti_id and claims["exp"] - claims["iat"] == 60
    with pytest.raises(tokens.TokenError) as caught:
        tokens.verify(
            result.stdout.strip(), secret=secret, subject="01972b5c-ee00-76df-a3a2-000000000000"
        )
    assert caught.value.reason == "subject_mismatch"
    with pytest.raises(tokens.TokenError) as caught:
        tokens.verify(result.stdout.strip(), secret="y" * 64)
    assert caught.value.reason == "invalid_signature"
    missing = runner.invoke(app, ["token", "mint", ti_id], env={"TISTATE_JWT_SECRET": ""})
    assert missing.exit_code == tokens.MissingSecretError.exit_code
    assert "TISTATE_JWT_SECRET" in missing.stderr


def test_demo_on_a_configured_database(runner: CliRunner, db_dsn: str) -> None:
    report = invoke_json(runner, db_dsn, "demo", "--runs", "3", "--tasks", "10", "--workers", "8")
    assert report["database"] == "configured"
    assert report["task_instances"] == 30
    assert report["transitions"] == {"queued->running": 30, "running->success": 30}
    assert report["asset_events"] == 60 and report["alias_events"] == 30
    assert report["queued_consumers"] == ["demo_orders_report", "demo_tables_sync"]
    assert report["retry_no_op"]["applied"] is False
    assert report["conflict"]["code"] == "TS409"
    assert report["timings"]["call_ms"]["max"] > 0
    assert [link["alias"] for link in report["sample"]["alias_links"]] == ["demo.daily-tables"]
    # Twice on the same database: new runs, no clash.
    human = invoke(runner, db_dsn, "demo", "--runs", "1", "--tasks", "2").stdout
    assert "running->success" in human and "nothing duplicated" in human


# ------------------------------------------------------------------ the installed console script
def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> Any:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_console_script_exit_codes_and_json(db_dsn: str, tmp_path: Path) -> None:
    env = {"TISTATE_DATABASE_URL": db_dsn}
    missing = _run("tistate", "ti", "show", "00000000-0000-7000-8000-000000000000", env=env)
    assert missing.returncode == 4
    assert "TS404" in missing.stderr and "Traceback" not in missing.stderr
    listed = _run("tistate", "ti", "list", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    bad = tmp_path / "payload.yaml"
    bad.write_text("state: success\nend_date: not-a-date\n")
    result = _run("tistate", "ti", "update-state", "00000000-0000-7000-8000-000000000000", str(bad),
                  env=env)  # fmt: skip
    assert result.returncode == 3
    assert "TS422" in result.stderr and "end_date" in result.stderr
    assert "Traceback" not in result.stderr
    down = _run("tistate", "dag", "list", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert down.returncode == 75 and "Traceback" not in down.stderr
    shim = _run(sys.executable, str(REPO / "cli.py"), "--version")
    assert shim.returncode == 0 and shim.stdout.startswith("tistate ")


def test_demo_on_the_embedded_server(tmp_path: Path) -> None:
    """No database configured: pgserver starts in the data dir, the demo runs, the server stops."""
    data_dir = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TISTATE_", "PG"))}
    result = subprocess.run(
        ["tistate", "demo", "--json", "--runs", "2", "--tasks", "5", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["database"] == "embedded"
    assert report["task_instances"] == 10
    assert report["transitions"]["running->success"] == 10
    assert (data_dir / "PG_VERSION").exists()
    # Stopped cleanly on exit: no postmaster.pid left behind.
    assert not (data_dir / "postmaster.pid").exists()


def _tistate_bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tistate", "bench", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


def test_bench_runs_python_dash_m_bench_of_the_checkout() -> None:
    result = _tistate_bench("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m bench" in result.stdout  # the bench's own command, in a child
    for command in (
        "seed", "run", "micro", "matrix", "report", "statements", "profile", "airflow-oom",
        "http-cpu", "alias-history",
    ):  # fmt: skip
        assert command in result.stdout
    sub = _tistate_bench("micro", "--help")
    assert sub.returncode == 0 and "--concurrency" in sub.stdout
    # The bench's exit code is the command's: a usage error is click's 2.
    assert _tistate_bench("no-such-command").returncode == 2


def test_bench_without_a_checkout_says_where_it_lives(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tistate.cli import bench as bench_cli

    monkeypatch.setattr(bench_cli, "_checkout_root", lambda: None)  # as from an installed wheel
    result = runner.invoke(app, ["bench", "matrix"])
    assert result.exit_code == 2
    assert "source checkout" in result.stderr and "pip install -e '.[bench]'" in result.stderr
    assert "python -m bench" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_python_dash_m_tistate_is_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tistate", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("tistate ")


def test_bench_never_runs_a_bench_package_of_the_current_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tistate.cli import bench as bench_cli

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__main__.py").write_text("raise SystemExit('ran the folder bench')\n")
    monkeypatch.chdir(tmp_path)
    # As installed from a wheel (no checkout around the package), in a folder that has a bench/.
    wheel = tmp_path / "site-packages" / "x" / "tistate" / "cli" / "bench.py"
    monkeypatch.setattr(bench_cli, "__file__", str(wheel))
    assert bench_cli._checkout_root() is None


def test_bench_in_a_folder_with_its_own_bench_runs_the_checkouts(tmp_path: Path) -> None:
    # `python -m` would put the current directory first on sys.path; the child runs with -P.
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__init__.py").write_text("")
    (tmp_path / "bench" / "__main__.py").write_text("raise SystemExit('ran the folder bench')\n")
    result = _tistate_bench("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ran the folder bench" not in result.stdout + result.stderr
    assert "Usage: python -m bench" in result.stdout
