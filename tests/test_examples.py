"""Every file of examples/ is accepted: DAG documents by `tistate dag define`, state payloads by
`tistate ti update-state` (on a running task instance of the example producer). A DAG document of
the wrong shape is refused with the keys accepted there, not an internal class name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tistate import errors
from tistate.cli import app

REPO = Path(__file__).resolve().parents[1]
DAGS = sorted((REPO / "examples" / "dags").iterdir())
PAYLOADS = sorted((REPO / "examples" / "payloads").iterdir())


def cli(dsn: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, [*args, "--database-url", dsn])
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def define_all(dsn: str) -> None:
    for path in DAGS:
        defined = json.loads(cli(dsn, "dag", "define", str(path), "--json").stdout)
        assert defined["dag_id"]


def test_examples_exist() -> None:
    assert {p.suffix for p in DAGS} >= {".yaml", ".json"}
    assert len(DAGS) >= 4 and len(PAYLOADS) >= 3


def test_every_dag_example_is_accepted_and_schedules_what_it_says(db_dsn: str) -> None:
    define_all(db_dsn)
    dags = {d["dag_id"]: d for d in json.loads(cli(db_dsn, "dag", "list", "--json").stdout)}
    assert {"producer", "orders_report", "tables_sync", "orders_audit"} <= set(dags)
    assert dags["orders_report"]["schedule"]["assets"]
    assert dags["tables_sync"]["schedule"]["aliases"] == ["daily-tables"]
    assert dags["orders_audit"]["schedule"]["name_refs"] == ["orders"]
    assert dags["orders_audit"]["schedule"]["uri_refs"] == ["s3://lake/tables/a"]
    types = {o["type"] for o in dags["producer"]["outlets"]}
    assert types == {"Asset", "AssetAlias"}


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.name)
def test_every_payload_example_is_accepted(db_dsn: str, payload: Path) -> None:
    define_all(db_dsn)
    tasks = json.loads(cli(db_dsn, "run", "create", "producer", "r1", "--json").stdout)
    load = next(t["ti_id"] for t in tasks if t["task_id"] == "load")
    cli(db_dsn, "ti", "run", load)
    result = json.loads(cli(db_dsn, "ti", "update-state", load, str(payload), "--json").stdout)
    assert result["applied"] is True
    assert result["previous_state"] == "running"
    if payload.name == "success_with_events.json":
        assert len(result["asset_event_ids"]) == 2  # orders, and table-a through the alias
        assert set(result["queued_dag_ids"]) == {"orders_report", "tables_sync", "orders_audit"}


def test_a_wrong_schedule_lists_the_accepted_keys(db_dsn: str, tmp_path: Path) -> None:
    doc = tmp_path / "wrong.yaml"
    doc.write_text("dag_id: c\nschedule:\n  asset: [{name: a, uri: 's3://a'}]\n")
    result = cli(db_dsn, "dag", "define", str(doc), code=errors.InvalidPayloadError.exit_code)
    assert "schedule.asset" in result.stderr
    assert "assets, aliases, name_refs, uri_refs" in result.stderr
    doc.write_text("dag_id: c\nschedule: [orders]\n")
    result = cli(db_dsn, "dag", "define", str(doc), code=errors.InvalidPayloadError.exit_code)
    assert "assets, aliases, name_refs, uri_refs" in result.stderr
    assert "DagSchedule" not in result.stderr
    doc.write_text("dag_id: c\ntasks: [{task_id: t, outlet: []}]\n")
    result = cli(db_dsn, "dag", "define", str(doc), code=errors.InvalidPayloadError.exit_code)
    assert "outlets" in result.stderr and "max_tries" in result.stderr


def test_docs_describe_every_key_of_the_dag_document() -> None:
    from tistate import models

    text = (REPO / "docs" / "dags.md").read_text()
    for model in (models.DagDefinition, models.DagSchedule, models.TaskDefinition):
        for key in model.model_fields:
            assert f"| `{key}` |" in text, f"docs/dags.md does not describe {model.__name__}.{key}"
