"""`tistate demo`: the whole system in one command, on an embedded PostgreSQL by default.

It defines a producer DAG whose tasks emit to an asset and through an asset alias, and two
consumer DAGs (one scheduled on the asset, one on the alias), creates runs, starts every task
instance, then completes them all at once from a thread pool through the library, and reports the
transitions, events, alias links, queued consumers and timings.

It writes only where it is told to: the embedded database by default, even when
TISTATE_DATABASE_URL is set (that variable names the user's real database); another database only
through an explicit --database-url, announced before anything is written.
"""

from __future__ import annotations

import os
import shlex
import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import _db, embedded, models
from ..client import Client
from ..errors import InvalidStateError, RetryableError
from ._common import JsonOutput, console, err_console, handle_errors, print_json, table
from .db import migrate_with_progress

T = TypeVar("T")
PRODUCER = "demo_producer"
ASSET = {"name": "demo.orders", "uri": "s3://demo/orders"}
ALIAS = "demo.daily-tables"
CONSUMERS = {
    "demo_orders_report": {"assets": [ASSET]},
    "demo_tables_sync": {"aliases": [ALIAS]},
}


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(_percentile(values, 0.5), 3),
        "p95": round(_percentile(values, 0.95), 3),
        "max": round(max(values, default=0.0), 3),
        "mean": round(statistics.fmean(values), 3) if values else 0.0,
    }


DemoDatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Run the demo in this database instead of the embedded one: it is migrated and gets "
        "demo DAGs, runs and asset events. Never taken from $TISTATE_DATABASE_URL.",
        show_default=False,
    ),
]


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,  # no bars (nor blank lines) in pipes and logs
    )


def _with_retries(call: Callable[[], T], retries: list[str], attempts: int = 5) -> T:
    """What an Airflow worker does on a 503: retry. A retryable error changed nothing, and a retry
    of a call that did apply answers the no-op, so retrying is always safe."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except RetryableError as exc:
            retries.append(exc.code)
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _success_payload(task_id: str, run_id: str, index: int) -> models.TISuccessStatePayload:
    return models.TISuccessStatePayload(
        end_date=datetime.now(UTC),
        task_outlets=[
            models.AssetProfile(type="Asset", **ASSET),
            models.AssetProfile(type="AssetAlias", name=ALIAS),
        ],
        outlet_events=[
            models.AssetOutletEvent(
                dest_asset_key=models.AssetKey(**ASSET), extra={"run_id": run_id, "n": index}
            ),
            models.AliasOutletEvent(
                source_alias_name=ALIAS,
                dest_asset_key=models.AssetKey(
                    name=f"demo.table.{task_id}", uri=f"s3://demo/tables/{task_id}"
                ),
                extra={"rows": 100 + index},
            ),
        ],
    )


def run_demo(url: str, *, runs: int, tasks: int, workers: int, quiet: bool) -> dict[str, Any]:
    """Drive the scenario against a migrated database; returns the report."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    with Client(url, min_size=1, max_size=workers, timeout=30) as client:
        client.define_dag(
            {
                "dag_id": PRODUCER,
                "owners": "demo",
                "tasks": [
                    {
                        "task_id": f"extract_{i:02d}",
                        "max_tries": 1,
                        "outlets": [
                            {"type": "Asset", **ASSET},
                            {"type": "AssetAlias", "name": ALIAS},
                        ],
                    }
                    for i in range(tasks)
                ],
            }
        )
        for dag_id, schedule in CONSUMERS.items():
            client.define_dag({"dag_id": dag_id, "owners": "demo", "schedule": schedule})

        tis: list[tuple[str, str, UUID]] = []
        with _progress(quiet) as progress:
            bar = progress.add_task("creating runs", total=runs)
            for r in range(runs):
                run_id = f"demo__{stamp}__{r:03d}"
                tis += [
                    (run_id, t.task_id, t.ti_id) for t in client.create_dag_run(PRODUCER, run_id)
                ]
                progress.advance(bar)

        host, pid = socket.gethostname(), os.getpid()
        retries: list[str] = []

        def start(item: tuple[str, str, UUID]) -> None:
            payload = models.TIEnterRunningPayload(
                hostname=host, unixname="demo", pid=pid, start_date=datetime.now(UTC)
            )
            _with_retries(lambda: client.ti_run(item[2], payload), retries)

        def complete(
            numbered: tuple[int, tuple[str, str, UUID]],
        ) -> tuple[float, models.StateUpdateResult]:
            index, (run_id, task_id, ti_id) = numbered
            payload = _success_payload(task_id, run_id, index)
            began = time.perf_counter()
            result = _with_retries(lambda: client.ti_update_state(ti_id, payload), retries)
            return (time.perf_counter() - began) * 1000, result

        with ThreadPoolExecutor(max_workers=workers) as pool, _progress(quiet) as progress:
            bar = progress.add_task("starting task instances", total=len(tis))
            for _ in pool.map(start, tis):
                progress.advance(bar)
            bar = progress.add_task(f"completing ({workers} threads)", total=len(tis))
            burst_began = time.perf_counter()
            outcomes = []
            for outcome in pool.map(complete, enumerate(tis)):
                outcomes.append(outcome)
                progress.advance(bar)
            burst_s = time.perf_counter() - burst_began

        results = [r for _, r in outcomes]
        latencies = [ms for ms, _ in outcomes]
        # A client retry of a completion that already applied: the no-op, nothing duplicated.
        first = tis[0]
        retry = client.ti_update_state(first[2], _success_payload(first[1], first[0], 0))
        # A late, conflicting update: the TI is no longer running.
        conflict: dict[str, Any] = {}
        try:
            client.ti_update_state(
                first[2], models.TITerminalStatePayload(state="failed", end_date=datetime.now(UTC))
            )
        except InvalidStateError as exc:
            conflict = {
                "code": exc.code,
                "message": exc.message,
                "previous_state": exc.previous_state,
            }

        sample = client.ti_get(first[2], log_limit=5)
        assets = [a for a in client.asset_list() if a.name.startswith("demo.")]

    transitions = Counter(f"{r.previous_state}->{r.new_state}" for r in results)
    event_ids = [e for r in results for e in r.asset_event_ids]
    queued = sorted({d for r in results for d in r.queued_dag_ids})
    return {
        "task_instances": len(tis),
        "runs": runs,
        "workers": workers,
        "transitions": {"queued->running": len(tis), **dict(transitions)},
        "asset_events": len(event_ids),
        # Each completion sends one direct event (demo.orders) and one through the alias.
        "alias_events": len(event_ids) - len(results),
        "queued_consumers": queued,
        "assets": [
            {
                "name": a.name,
                "events": a.event_count,
                "aliases": a.aliases,
                "queued_for": a.queued_for,
            }
            for a in assets
        ],
        "retried_calls": dict(Counter(retries)),
        "retry_no_op": {"applied": retry.applied, "asset_event_ids": retry.asset_event_ids},
        "conflict": conflict,
        "timings": {
            "burst_seconds": round(burst_s, 3),
            "completions_per_second": round(len(results) / burst_s, 1) if burst_s else None,
            "call_ms": _summary(latencies),
            "lock_wait_ms": _summary([r.lock_wait_ms or 0.0 for r in results]),
            "lock_held_ms": _summary([r.lock_held_ms or 0.0 for r in results]),
        },
        "sample_ti_id": str(first[2]),
        "sample": sample.model_dump(mode="json"),
    }


def _asset_rows(assets: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """demo.orders, then the alias targets folded into one row."""
    direct = [a for a in assets if a["name"] == ASSET["name"]]
    targets = [a for a in assets if a["name"] != ASSET["name"]]
    rows: list[tuple[Any, ...]] = [
        (a["name"], a["events"], a["aliases"], a["queued_for"]) for a in direct
    ]
    if targets:
        rows.append(
            (
                f"demo.table.* ({len(targets)} assets)",
                sum(a["events"] for a in targets),
                sorted({alias for a in targets for alias in a["aliases"]}),
                sorted({dag for a in targets for dag in a["queued_for"]}),
            )
        )
    return rows


def print_report(report: dict[str, Any], where: str) -> None:
    console.print(f"[bold]tistate demo[/] on {where}")
    console.print(
        f"{report['task_instances']} task instances in {report['runs']} runs of {PRODUCER}, "
        f"completed concurrently by {report['workers']} threads\n"
    )
    console.print(
        table("transitions", ["transition", "count"], list(report["transitions"].items()))
    )
    console.print(
        table(
            "assets",
            ["asset", "events (all time)", "aliases", "queued consumers"],
            _asset_rows(report["assets"]),
        )
    )
    t = report["timings"]
    console.print(
        table(
            "timings of the burst",
            ["measure", "p50", "p95", "max", "mean"],
            [
                (name, *(t[key][k] for k in ("p50", "p95", "max", "mean")))
                for name, key in (
                    ("ti_update_state call (ms)", "call_ms"),
                    ("row lock wait (ms)", "lock_wait_ms"),
                    ("row lock held (ms)", "lock_held_ms"),
                )
            ],
        )
    )
    console.print(
        f"burst: {t['burst_seconds']} s, {t['completions_per_second']} completions/s; "
        f"{report['asset_events']} asset events ({report['alias_events']} through alias {ALIAS}), "
        f"consumers queued: {', '.join(report['queued_consumers']) or 'none'}"
    )
    if report["retried_calls"]:
        console.print(f"retried after a retryable error (503): {report['retried_calls']}")
    retry = report["retry_no_op"]
    console.print(
        f"client retry of a finished completion: applied: {'yes' if retry['applied'] else 'no'}, "
        f"same events {', '.join(map(str, retry['asset_event_ids']))} (nothing duplicated)"
    )
    if report["conflict"]:
        c = report["conflict"]
        console.print(
            f"late 'failed' update: {c['code']} {c['message']} (was {c['previous_state']})"
        )
    console.print("\none task instance in detail:")
    console.print(
        table(
            None,
            ["event", "asset", "via alias", "extra"],
            [
                (e["id"], e["name"], e["aliases"], e["extra"])
                for e in report["sample"]["asset_events"]
            ],
        )
    )
    console.print(f"\nnext: {report['next_step']}", soft_wrap=True)
    if report["database"] == "embedded":
        console.print(
            f"The embedded data stays in {report['data_dir']}; without a database URL, tistate "
            "commands use it (starting it as needed). Delete that directory to reset or remove it.",
            soft_wrap=True,
        )


def next_step(ti_id: str, *, database_url: str | None, directory: Path | None) -> str:
    """The command that shows the sample task instance, exactly as the user can run it."""
    if database_url is not None:
        return f"tistate ti show {ti_id} --database-url {shlex.quote(database_url)}"
    prefix = []
    if os.environ.get(_db.DATABASE_URL_ENV):  # it would win over the embedded database
        prefix.append(f"env -u {_db.DATABASE_URL_ENV}")
    default = embedded.default_data_dir().expanduser().resolve()
    if directory is not None and directory.expanduser().resolve() != default:
        prefix.append(f"{embedded.DATA_DIR_ENV}={shlex.quote(str(directory))}")
    return " ".join([*prefix, f"tistate ti show {ti_id}"])


@handle_errors
def demo_command(
    database_url: DemoDatabaseUrl = None,
    runs: Annotated[int, typer.Option("--runs", min=1, max=1000, help="DAG runs to create.")] = 10,
    tasks: Annotated[int, typer.Option("--tasks", min=1, max=200, help="Tasks per run.")] = 10,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Threads.")] = 16,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar=embedded.DATA_DIR_ENV,
            help="Embedded server's data directory (default: the user data dir).",
        ),
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Run the whole system once on the embedded PostgreSQL (or the one --database-url names):
    DAGs, runs, a burst of concurrent completions with asset and alias events."""
    if database_url is not None:
        url = _db.database_url(database_url)  # refuses an empty one
        err_console.print(
            "the demo writes into the database --database-url names: it migrates it and adds "
            f"the DAGs {PRODUCER}, {', '.join(CONSUMERS)} with runs and asset events",
            soft_wrap=True,
        )
        migrate_with_progress(url, quiet=json_output or not console.is_terminal)
        report = run_demo(url, runs=runs, tasks=tasks, workers=workers, quiet=json_output)
        report["database"] = "configured"
        where = "the database --database-url names"
    else:
        if os.environ.get(_db.DATABASE_URL_ENV):
            err_console.print(
                f"note: {_db.DATABASE_URL_ENV} is set, but the demo never writes there unless told "
                "to: it uses the embedded database (to use yours: --database-url URL)",
                soft_wrap=True,
            )
        directory = data_dir or embedded.data_dir()
        if not json_output:
            console.print(f"starting the embedded PostgreSQL in {directory} ...")
        began = time.perf_counter()
        with embedded.embedded_database(directory) as embedded_url:
            startup = time.perf_counter() - began
            report = run_demo(
                embedded_url, runs=runs, tasks=tasks, workers=workers, quiet=json_output
            )
        report["database"] = "embedded"
        report["data_dir"] = str(directory)
        report["timings"]["embedded_startup_seconds"] = round(startup, 3)
        where = f"an embedded PostgreSQL ({directory}; started in {startup:.1f} s, now stopped)"
    report["next_step"] = next_step(
        report["sample_ti_id"],
        database_url=database_url,
        directory=None if database_url is not None else directory,
    )
    if json_output:
        print_json(report)
    else:
        print_report(report, where)
