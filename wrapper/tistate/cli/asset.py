"""`tistate asset list|events|emit`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer

from ..errors import UsageError
from ._common import (
    DatabaseUrl,
    JsonOutput,
    console,
    handle_errors,
    open_client,
    parse_json_option,
    print_json,
    require_object,
    table,
)

asset_app = typer.Typer(help="Assets and their events.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(asset_app, name="asset")


@asset_app.command("list")
@handle_errors
def list_command(database_url: DatabaseUrl = None, json_output: JsonOutput = False) -> None:
    """Assets with their events, aliases, consumers and queued consumers."""
    with open_client(database_url) as client:
        assets = client.asset_list()
    if json_output:
        print_json(assets)
        return
    console.print(
        table(
            "assets",
            ["id", "name", "uri", "active", "events", "last", "aliases", "consumers", "queued"],
            [
                (a.id, a.name, a.uri, a.active, a.event_count, a.last_event_at, a.aliases,
                 a.consumers, a.queued_for)
                for a in assets
            ],
        )
    )  # fmt: skip


@asset_app.command("events")
@handle_errors
def events_command(
    name: Annotated[str | None, typer.Option("--name", help="Only this asset (by name).")] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="Only this asset (by uri).")] = None,
    ti_id: Annotated[UUID | None, typer.Option("--ti-id", help="Only events of this TI.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, max=10000)] = 50,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Asset events, newest first."""
    with open_client(database_url) as client:
        events = client.asset_events(name=name, uri=uri, ti_id=ti_id, limit=limit)
    if json_output:
        print_json(events)
        return
    console.print(
        table(
            f"asset events ({len(events)})",
            ["id", "asset", "source", "try", "via alias", "extra", "partition", "timestamp"],
            [
                (e.id, e.name,
                 f"{e.source_dag_id}/{e.source_run_id}/{e.source_task_id}" if e.source_dag_id
                 else "manual",
                 e.try_number, e.aliases, e.extra, e.partition_key, e.timestamp.isoformat())
                for e in events
            ],
        )
    )  # fmt: skip


@asset_app.command("emit")
@handle_errors
def emit_command(
    name: Annotated[
        str | None,
        typer.Argument(help="Asset name (or give --uri alone).", show_default=False),
    ] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="Asset uri.")] = None,
    extra: Annotated[str | None, typer.Option("--extra", help="JSON object.")] = None,
    partition_key: Annotated[str | None, typer.Option("--partition-key")] = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """A manual asset event on an active asset, named by NAME, --uri or both; queues the asset's
    consumers like a task's event."""
    if name is None and uri is None:
        raise UsageError("name the asset: NAME, --uri URI, or both")
    extra_value = parse_json_option(extra, "--extra")
    if extra_value is not None:
        extra_value = require_object(extra_value, "--extra")
    with open_client(database_url) as client:
        result = client.emit_asset_event(name, uri, extra=extra_value, partition_key=partition_key)
    if json_output:
        print_json(result)
        return
    queued = ", ".join(result.queued_dag_ids) or "none"
    console.print(
        f"asset event {result.asset_event_id} on asset {result.asset_id}; queued: {queued}"
    )
