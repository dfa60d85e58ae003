"""`tistate dag define|list` and `tistate run create`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from .. import _db, models
from ._common import (
    DatabaseUrl,
    JsonOutput,
    console,
    handle_errors,
    load_document,
    open_client,
    parse_json_option,
    print_json,
    require_object,
    table,
)

dag_app = typer.Typer(help="Define and list DAGs.", no_args_is_help=True)
run_app = typer.Typer(help="Create DAG runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dag_app, name="dag")
    app.add_typer(run_app, name="run")


@dag_app.command("define")
@handle_errors
def define_command(
    file: Annotated[Path, typer.Argument(help="DAG document, JSON or YAML ('-' for stdin).")],
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Create or update a DAG from a document (dag_id, owners, schedule, tasks with outlets)."""
    document = require_object(load_document(file), "the DAG document")
    dag = _db.validate(models.DagDefinition, document)
    with open_client(database_url) as client:
        result = client.define_dag(dag)
    if json_output:
        print_json(result)
        return
    console.print(f"defined DAG [bold]{result.dag_id}[/]: {len(result.tasks)} task(s)")
    if result.assets:
        console.print(
            table("assets", ["id", "name", "uri"], [(a.id, a.name, a.uri) for a in result.assets])
        )
    if result.aliases:
        console.print(table("aliases", ["id", "name"], [(a.id, a.name) for a in result.aliases]))


@dag_app.command("list")
@handle_errors
def list_command(database_url: DatabaseUrl = None, json_output: JsonOutput = False) -> None:
    """List DAGs with their schedules and outlets."""
    with open_client(database_url) as client:
        dags = client.dag_list()
    if json_output:
        print_json(dags)
        return
    rows = []
    for d in dags:
        schedule = [f"asset:{a['name']}" for a in d.schedule.get("assets", [])]
        schedule += [f"alias:{a}" for a in d.schedule.get("aliases", [])]
        schedule += [f"name:{n}" for n in d.schedule.get("name_refs", [])]
        schedule += [f"uri:{u}" for u in d.schedule.get("uri_refs", [])]
        outlets = sorted({f"{o['type']}:{o.get('name') or o.get('uri')}" for o in d.outlets})
        flags = ["paused"] * d.is_paused + ["stale"] * d.is_stale + ["fail_fast"] * d.fail_fast
        rows.append((d.dag_id, d.owners, d.task_count, d.run_count, schedule, outlets, flags))
    console.print(
        table("DAGs", ["dag_id", "owners", "tasks", "runs", "schedule", "outlets", "flags"], rows)
    )


@run_app.command("create")
@handle_errors
def create_command(
    dag_id: Annotated[str, typer.Argument(help="The DAG.")],
    run_id: Annotated[str, typer.Argument(help="The new run's id.")],
    logical_date: Annotated[
        datetime | None,
        typer.Option(
            "--logical-date",
            help="ISO 8601 with an offset.",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"],
        ),
    ] = None,
    conf: Annotated[str | None, typer.Option("--conf", help="Run conf as a JSON object.")] = None,
    partition_key: Annotated[str | None, typer.Option("--partition-key")] = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Create a running DAG run with one queued task instance per task."""
    conf_value = parse_json_option(conf, "--conf")
    if conf_value is not None:
        conf_value = require_object(conf_value, "--conf")
    with open_client(database_url) as client:
        tasks = client.create_dag_run(
            dag_id, run_id, logical_date=logical_date, conf=conf_value, partition_key=partition_key
        )
    if json_output:
        print_json(tasks)
        return
    console.print(
        table(
            f"run {dag_id}/{run_id}",
            ["task_id", "map_index", "ti_id"],
            [(t.task_id, t.map_index, t.ti_id) for t in tasks],
        )
    )
