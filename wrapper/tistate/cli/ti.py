"""`tistate ti show|list|update-state|run|heartbeat|mark|queue|skip-downstream`."""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from .. import models
from ..errors import InvalidPayloadError, UsageError
from ._common import (
    DatabaseUrl,
    JsonOutput,
    LockTimeoutOption,
    console,
    err_console,
    handle_errors,
    load_document,
    open_client,
    parse_json_option,
    print_json,
    require_object,
    table,
)

ti_app = typer.Typer(help="Inspect and drive task instances.", no_args_is_help=True)

TiId = Annotated[UUID, typer.Argument(help="Task instance id.", metavar="TI_ID")]
END_DATE_STATES = {"success", "failed", "skipped", "removed", "upstream_failed", "up_for_retry"}
#: Airflow 3's task-instance states, and 'none' for a task instance without one.
TI_STATES = (
    "none", "scheduled", "queued", "running", "success", "failed", "skipped", "removed",
    "upstream_failed", "up_for_retry", "up_for_reschedule", "restarting", "deferred",
    "awaiting_input",
)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(ti_app, name="ti")


def print_result(result: models.StateUpdateResult, json_output: bool) -> None:
    if json_output:
        print_json(result)
        return
    verb = "applied" if result.applied else "no-op (already in that state)"
    console.print(
        f"{result.ti_id}: {result.previous_state or 'none'} -> {result.new_state or 'none'} {verb}"
    )
    if result.new_ti_id:
        console.print(f"  new task instance id (next try): {result.new_ti_id}")
    if result.asset_event_ids:
        console.print(f"  asset events: {', '.join(map(str, result.asset_event_ids))}")
    if result.queued_dag_ids:
        console.print(f"  queued consumers: {', '.join(result.queued_dag_ids)}")
    if result.lock_wait_ms is not None and result.lock_held_ms is not None:
        console.print(
            f"  lock wait {result.lock_wait_ms:.2f} ms, lock held {result.lock_held_ms:.2f} ms"
        )


def show_detail(detail: models.TaskInstanceDetail) -> None:
    ti = detail.task_instance
    fields = [
        "id", "dag_id", "run_id", "task_id", "map_index", "state", "try_number", "max_tries",
        "hostname", "pid", "start_date", "end_date", "duration", "last_heartbeat_at",
        "next_method", "trigger_id", "rendered_map_index", "updated_at",
    ]  # fmt: skip
    console.print(table("task instance", ["field", "value"], [(f, ti.get(f)) for f in fields]))
    if detail.history:
        console.print(
            table(
                "archived tries",
                ["try", "id", "state", "start", "end", "reason"],
                [
                    (h["try_number"], h["task_instance_id"], h["state"], h["start_date"],
                     h["end_date"], h.get("retry_reason"))
                    for h in detail.history
                ],
            )
        )  # fmt: skip
    console.print(
        table(
            "asset events produced",
            ["id", "asset", "uri", "try", "via alias", "extra", "partition", "timestamp"],
            [
                (e.id, e.name, e.uri, e.try_number, e.aliases, e.extra, e.partition_key,
                 e.timestamp.isoformat())
                for e in detail.asset_events
            ],
        )
    )  # fmt: skip
    if detail.alias_links:
        console.print(
            table(
                "alias links",
                ["alias", "event", "asset", "uri"],
                [(a["alias"], a["event_id"], a["name"], a["uri"]) for a in detail.alias_links],
            )
        )
    console.print(
        table(
            "queued consumers (asset_dag_run_queue)",
            ["asset", "consumer dag", "queued at"],
            [(q["name"], q["target_dag_id"], q["created_at"]) for q in detail.queued_consumers],
        )
    )
    console.print(
        table(
            "audit log (newest first)",
            ["id", "when", "event", "try", "extra"],
            [(g["id"], g["dttm"], g["event"], g["try_number"], g["extra"]) for g in detail.log],
        )
    )


@ti_app.command("show")
@handle_errors
def show_command(
    ti_id: TiId,
    log_limit: Annotated[int, typer.Option("--log-limit", min=0, max=1000)] = 20,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """A task instance with its run, asset events, alias links, queued consumers and audit log."""
    with open_client(database_url) as client:
        detail = client.ti_get(ti_id, log_limit=log_limit)
    if json_output:
        print_json(detail)
    else:
        show_detail(detail)


@ti_app.command("list")
@handle_errors
def list_command(
    dag_id: Annotated[str | None, typer.Option("--dag-id")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help=f"One of: {', '.join(TI_STATES)} ('none': no state)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, max=10000)] = 100,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """List task instances (at most --limit; says so when more match)."""
    if state is not None and state not in TI_STATES:
        raise UsageError(f"unknown --state {state!r}", hint=f"use one of: {', '.join(TI_STATES)}")
    with open_client(database_url) as client:
        # One more than asked: whether the limit cut the list.
        tis = client.ti_list(dag_id=dag_id, run_id=run_id, state=state, limit=limit + 1)
    cut = len(tis) > limit
    tis = tis[:limit]
    if cut:
        err_console.print(
            f"showing the first {limit} task instances; more match (raise --limit, or narrow "
            "with --dag-id, --run-id, --state)",
            soft_wrap=True,
        )
    if json_output:
        print_json(tis)
        return
    console.print(
        table(
            f"task instances ({len(tis)}{'+' if cut else ''})",
            ["id", "state", "task_id", "dag_id", "run_id", "try", "map", "host", "duration"],
            [
                (t.id, t.state, t.task_id, t.dag_id, t.run_id, t.try_number, t.map_index,
                 t.hostname, t.duration)
                for t in tis
            ],
        )
    )  # fmt: skip


@ti_app.command("update-state")
@handle_errors
def update_state_command(
    ti_id: TiId,
    payload_file: Annotated[
        Path | None,
        typer.Argument(
            help="TIStateUpdate payload, JSON or YAML ('-' for stdin).", show_default=False
        ),
    ] = None,
    payload: Annotated[str | None, typer.Option("--payload", help="The payload as JSON.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Shortcut: this state with end_date now (no outlets)."),
    ] = None,
    lock_timeout: LockTimeoutOption = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """The Execution API state PATCH: success (with asset events), failed, up_for_retry, ...

    A payload of a finishing state without `end_date` gets now (the HTTP API requires it)."""
    given = [x is not None for x in (payload_file, payload, state)]
    if sum(given) != 1:
        raise InvalidPayloadError(
            "give exactly one of PAYLOAD_FILE, --payload or --state",
            detail={"reason": "invalid_payload", "field": "", "message": "no payload"},
        )
    body: Any
    if payload_file is not None:
        body = load_document(payload_file)
    elif payload is not None:
        body = parse_json_option(payload, "--payload")
    else:
        body = {"state": state}
    body = require_object(body, "the payload")
    if body.get("state") in END_DATE_STATES and "end_date" not in body:
        body = {**body, "end_date": datetime.now(UTC).isoformat()}  # the files of examples/
    with open_client(database_url) as client:
        result = client.ti_update_state(ti_id, body, lock_timeout=lock_timeout)
    print_result(result, json_output)


@ti_app.command("run")
@handle_errors
def run_command(
    ti_id: TiId,
    hostname: Annotated[str | None, typer.Option("--hostname")] = None,
    unixname: Annotated[str | None, typer.Option("--unixname")] = None,
    pid: Annotated[int | None, typer.Option("--pid")] = None,
    lock_timeout: LockTimeoutOption = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """queued/restarting -> running; prints the run context (defaults: this host, user, pid)."""
    body = models.TIEnterRunningPayload(
        hostname=hostname or socket.gethostname(),
        unixname=unixname or getpass.getuser(),
        pid=pid if pid is not None else os.getpid(),
        start_date=datetime.now(UTC),
    )
    with open_client(database_url) as client:
        context = client.ti_run(ti_id, body, lock_timeout=lock_timeout)
    if json_output:
        print_json(context)
        return
    console.print(
        f"{ti_id} is running on {body.hostname} (pid {body.pid}); "
        f"run {context.dag_run.dag_id}/{context.dag_run.run_id}, max_tries {context.max_tries}, "
        f"retry on failure: {'yes' if context.should_retry else 'no'}"
    )


@ti_app.command("heartbeat")
@handle_errors
def heartbeat_command(
    ti_id: TiId,
    hostname: Annotated[str, typer.Option("--hostname", help="As given to `ti run`.")],
    pid: Annotated[int, typer.Option("--pid", help="As given to `ti run`.")],
    lock_timeout: LockTimeoutOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Heartbeat a running try (fails if it runs elsewhere or no longer runs)."""
    with open_client(database_url) as client:
        client.ti_heartbeat(ti_id, hostname, pid, lock_timeout=lock_timeout)
    console.print(f"{ti_id}: heartbeat recorded")


@ti_app.command("mark")
@handle_errors
def mark_command(
    ti_id: TiId,
    state: Annotated[str, typer.Argument(help="Any state, or 'none'.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    lock_timeout: LockTimeoutOption = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Operator override to any state, audited; emits no asset events."""
    with open_client(database_url) as client:
        result = client.ti_mark(ti_id, state, reason=reason, lock_timeout=lock_timeout)
    print_result(result, json_output)


@ti_app.command("queue")
@handle_errors
def queue_command(
    ti_id: TiId,
    lock_timeout: LockTimeoutOption = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """The scheduler's step back to queued (from none, scheduled, up_for_retry, ...)."""
    with open_client(database_url) as client:
        result = client.ti_queue(ti_id, lock_timeout=lock_timeout)
    print_result(result, json_output)


@ti_app.command("skip-downstream")
@handle_errors
def skip_downstream_command(
    ti_id: TiId,
    tasks: Annotated[list[str], typer.Argument(help="Task ids (or task_id:map_index).")],
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Skip tasks of the caller's run that are not running or finished."""
    targets: list[str | tuple[str, int]] = []
    for task in tasks:
        name, sep, index = task.rpartition(":")
        targets.append((name, int(index)) if sep and index.lstrip("-").isdigit() else task)
    with open_client(database_url) as client:
        count = client.ti_skip_downstream(ti_id, targets)
    if json_output:
        print_json({"skipped": count})
    else:
        console.print(f"skipped {count} task instance(s)")
