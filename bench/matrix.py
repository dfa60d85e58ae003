"""One benchmark run per (system, C, H), and the matrix of them, written as JSON lines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from bench.common import RESULTS_DIR, code_version, dsn, machine, url, write_json
from bench.load import LoadConfig, LoadResult, make_jobs, run_load, summarise
from bench.monitor import Monitor
from bench.raw import (
    PGBENCH_SYSTEMS,
    max_raw_clients,
    micro_lock_hold,
    run_pgbench,
    wait_for_clients,
)
from bench.seed import ensure_database, load_payloads, prepare_batch
from bench.servers import pgbouncer, start_server, stop_server
from bench.verify import verify_batch

FUNCTION_STATS_SQL = """
SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions
WHERE schemaname = 'tistate' ORDER BY total_time DESC
"""


def _run_async(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def _reset(dbname: str) -> None:
    """Empty the consumer queue (verification compares it with this run) and the stats.

    The notification outbox is emptied too: a run that left rows behind has already failed its
    own verification (outbox_left), and its backlog must not cost the next run a relay burst.
    The tables every run churns are vacuumed (autovacuum may be off on the bench cluster).
    """
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute("DELETE FROM tistate.asset_dag_run_queue")
        conn.execute("DELETE FROM tistate.asset_event_outbox")
        conn.execute("SELECT pg_stat_reset()")
        conn.execute(
            "VACUUM (ANALYZE) tistate.task_instance, tistate.asset_dag_run_queue, "
            "tistate.asset_event_outbox"
        )


def _function_stats(dbname: str) -> dict[str, Any]:
    time.sleep(0.6)  # backends flush their function statistics when they exit
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        rows = conn.execute(FUNCTION_STATS_SQL).fetchall()
    return {
        name: {
            "calls": calls,
            "mean_ms": round(total / calls, 3),
            "self_mean_ms": round(own / calls, 3),
        }
        for name, calls, total, own in rows
        if calls
    }


TABLE_WRITES_SQL = """
SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables
WHERE schemaname = 'tistate' AND n_tup_ins + n_tup_upd > 0 ORDER BY relname
"""


def _table_writes(dbname: str, completed: int) -> dict[str, dict[str, float]]:
    """Rows inserted and updated per completion, by table (stats reset before the run): the
    floor's honesty check, its writes against the function's. Call after _function_stats (which
    waits for the backends' statistics)."""
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        rows = conn.execute(TABLE_WRITES_SQL).fetchall()
    per = max(1, completed)
    return {
        name: {"inserted": round(ins / per, 2), "updated": round(upd / per, 2)}
        for name, ins, upd in rows
    }


def _db_state_checker(dbname: str) -> Callable[[str], Awaitable[str | None]]:
    conn_holder: list[psycopg.AsyncConnection[Any]] = []

    async def check(ti_id: str) -> str | None:
        if not conn_holder:
            conn_holder.append(await psycopg.AsyncConnection.connect(dsn(dbname), autocommit=True))
        cur = await conn_holder[0].execute(
            "SELECT state FROM tistate.task_instance WHERE id = %s", (ti_id,)
        )
        row = await cur.fetchone()
        return None if row is None else str(row[0])

    return check


def run_http(
    system: str,
    *,
    history: int,
    concurrency: int,
    n: int,
    log_dir: Path,
    processes: int = 1,
    via_pgbouncer: bool = False,
    jwt_secret: str | None = None,
    warmup: int = 20,
    time_limit_s: float = 300.0,
    heartbeat: bool = True,
    server_args: Sequence[str] = (),
    server_env: dict[str, str] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Seed a batch, start the server(s), warm up, run the load under the monitor, verify."""
    console = console or Console(stderr=True)
    from bench.common import db_name

    dbname = db_name(history)
    label = f"{system}{'-x' + str(processes) if processes > 1 else ''}-c{concurrency}"
    batch = prepare_batch(dbname, n + warmup, label)
    payloads = load_payloads(batch)
    jobs = make_jobs(batch.ti_ids, payloads, jwt_secret=jwt_secret)
    _reset(dbname)
    result: dict[str, Any] = {
        "system": system + (f" x{processes} via PgBouncer" if via_pgbouncer else ""),
        "kind": "http",
        "history": history,
        "concurrency": concurrency,
        "n": n,
        "processes": processes,
        "pgbouncer": via_pgbouncer,
        "batch": batch.id,
        "at": datetime.now(UTC).isoformat(),
    }
    env = dict(server_env or {})
    with ExitStack() as stack:
        database_url = stack.enter_context(pgbouncer(dbname)) if via_pgbouncer else url(dbname)
        servers = []
        for _ in range(processes):
            server = start_server(
                f"{system}-pgbouncer" if via_pgbouncer and system.startswith("tistate") else system,
                database_url,
                log_dir=log_dir,
                jwt_secret=jwt_secret,
                env_extra=env,
                extra_args=server_args,
            )
            stack.callback(stop_server, server)
            servers.append(server)
        bases = [s.base_url for s in servers]
        checker = _db_state_checker(dbname)
        warm: LoadResult = _run_async(
            run_load(
                LoadConfig(bases, concurrency=len(bases), heartbeat=heartbeat),
                jobs[:warmup],
                checker,
            )
        )
        monitor = Monitor(dsn(dbname), [pid for s in servers for pid in s.serving_pids()])
        monitor.start()
        cfg = LoadConfig(
            bases, concurrency=concurrency, time_limit_s=time_limit_s, heartbeat=heartbeat
        )
        load: LoadResult = _run_async(run_load(cfg, jobs[warmup:], checker))
        monitor.stop()
        result.update(summarise(load, len(jobs) - warmup))
        result["resources"] = monitor.summary(len(load.done))
        result["server_logs"] = [str(s.log_path) for s in servers]
        result["server_exit"] = []
    result["server_exit"] = [s.proc.returncode for s in servers]
    if system != "roundtrip":  # pg_stat_user_functions: the SQL functions' own time
        result["function_stats"] = _function_stats(dbname)
    done = set(load.done) | set(warm.done)
    result["verify"] = verify_batch(dbname, batch.id, done)
    _log_run(console, result)
    return result


def run_raw(
    *,
    history: int,
    concurrency: int,
    n: int,
    system: str = "raw",
    clients: int | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """The same payloads from pgbench (no HTTP, no Python): the function, or the floor.

    `clients`: exactly this many pgbench clients (waiting until they fit); default: C, capped
    at what max_connections leaves now."""
    console = console or Console(stderr=True)
    from bench.common import db_name

    spec = PGBENCH_SYSTEMS[system]
    dbname = db_name(history)
    if clients is None:
        clients = min(concurrency, max_raw_clients())
    else:
        wait_for_clients(clients)
    per = max(1, n // clients)
    batch = prepare_batch(dbname, clients * per, f"{system}-c{concurrency}")
    _reset(dbname)
    monitor = Monitor(dsn(dbname), [])
    monitor.start()
    out = run_pgbench(batch, clients, per_client=per, notify=spec.notify, script_text=spec.script)
    monitor.stop()
    done = out.pop("done_rns") if out["returncode"] == 0 else []
    result: dict[str, Any] = {
        "system": spec.label,
        "kind": "raw",
        "history": history,
        "concurrency": concurrency,
        "n": clients * per,
        "batch": batch.id,
        "at": datetime.now(UTC).isoformat(),
        **out,
        "resources": monitor.summary(out["completed"]),
        "function_stats": _function_stats(dbname),
        "table_writes": _table_writes(dbname, out["completed"]),
        "verify": verify_batch(dbname, batch.id, done),
    }
    # An aborted pgbench (a script error) completes nothing, which verifies clean: not a pass.
    result["verify"]["ok"] = result["verify"]["ok"] and out["returncode"] == 0
    _log_run(console, result)
    return result


def run_micro(
    *, history: int, n: int, concurrency: int, console: Console | None = None
) -> dict[str, Any]:
    """Lock hold per completion from the function's own timing, outside HTTP."""
    console = console or Console(stderr=True)
    from bench.common import db_name

    dbname = db_name(history)
    batch = prepare_batch(dbname, n, f"micro-c{concurrency}")
    payloads = load_payloads(batch)
    _reset(dbname)
    out = _run_async(micro_lock_hold(batch, payloads, concurrency))
    result = {
        "system": "micro (direct calls)",
        "kind": "micro",
        "history": history,
        "n": n,
        "batch": batch.id,
        "at": datetime.now(UTC).isoformat(),
        **out,
        "verify": verify_batch(dbname, batch.id, set(range(1, n + 1))),
    }
    held = result["lock_held_ms"]
    console.print(
        f"micro H={history} c={concurrency}: lock held p50 {held['p50']} ms p99 {held['p99']} ms "
        f"max {held['max']} ms; verify ok={result['verify']['ok']}"
    )
    return result


def _log_run(console: Console, r: dict[str, Any]) -> None:
    lat = r.get("latency_ms", {})
    v = r["verify"]
    res = r.get("resources", {})
    servers = res.get("servers", [])
    rss = "/".join(f"{s['rss_growth_mib']}" for s in servers) or "-"
    threads = "/".join(f"{s['threads_idle']}->{s['threads_peak']}" for s in servers) or "-"
    console.print(
        f"[bold]{r['system']}[/bold] H={r['history']} C={r['concurrency']}: "
        f"{r.get('completed')}/{r.get('n')} done, {r.get('completions_per_s')}/s, "
        f"p50 {lat.get('p50')} p99 {lat.get('p99')} max {lat.get('max')} ms, "
        f"status {r.get('state_status', '')} retries {r.get('retries', '-')}, "
        f"rss +{rss} MiB threads {threads}, lock waiters {res.get('peak_lock_waiters')} "
        f"longest {res.get('longest_lock_wait_ms')} ms, verify ok={v['ok']} "
        f"(lost {v['lost_events']}, dup {v['duplicated_events']}, orphan {v['orphan_events']}, "
        f"queue -{v['queue_missing']}/+{v['queue_unexpected']})"
    )


def run_matrix(
    *,
    systems: Sequence[str],
    concurrencies: Sequence[int],
    histories: Sequence[int],
    n: int,
    reps: int = 1,
    scale_out: bool = True,
    scale_out_histories: Sequence[int] = (0,),
    scale_out_system: str = "tistate",
    micro_n: int = 300,
    jwt_secret: str | None = None,
    out_dir: Path | None = None,
    time_limit_s: float = 300.0,
    pgbench_clients: int | None = None,
    console: Console | None = None,
) -> Path:
    """Every (H, C, system) side by side, rep by rep; returns the results directory."""
    console = console or Console(stderr=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = out_dir or RESULTS_DIR / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path = out_dir / "runs.jsonl"
    write_json(
        out_dir / "meta.json",
        {
            "machine": machine(),
            **code_version(),
            "systems": list(systems),
            "concurrencies": list(concurrencies),
            "histories": list(histories),
            "n": n,
            "reps": reps,
            "scale_out": scale_out,
            "started": stamp,
        },
    )

    def record(r: dict[str, Any]) -> None:
        r["migrations_sha256"] = code_version()["migrations_sha256"]
        with open(runs_path, "a") as fh:
            fh.write(json.dumps(r, default=str) + "\n")

    started = time.monotonic()
    clients_of: dict[tuple[int, int], int] = {
        (h, c): min(c, pgbench_clients) for h in histories for c in concurrencies if pgbench_clients
    }
    for history in histories:
        ensure_database(history, console=console)
        for conc in (1, 8):
            record(
                {
                    **run_micro(history=history, n=micro_n, concurrency=conc, console=console),
                    "rep": 0,
                }
            )
        for rep in range(reps):
            for conc in concurrencies:
                order = list(systems) if rep % 2 == 0 else list(reversed(systems))
                for system in order:
                    if system in PGBENCH_SYSTEMS:
                        # Every pgbench run of a cell with the first one's client count.
                        r = run_raw(
                            history=history,
                            concurrency=conc,
                            n=n,
                            system=system,
                            clients=clients_of.get((history, conc)),
                            console=console,
                        )
                        clients_of.setdefault((history, conc), int(r["clients"]))
                    else:
                        r = run_http(
                            system,
                            history=history,
                            concurrency=conc,
                            n=n,
                            log_dir=out_dir / "logs",
                            jwt_secret=jwt_secret,
                            time_limit_s=time_limit_s,
                            console=console,
                        )
                    record({**r, "rep": rep})
                if scale_out and history in scale_out_histories:
                    r = run_http(
                        scale_out_system,
                        history=history,
                        concurrency=conc,
                        n=n,
                        processes=2,
                        via_pgbouncer=True,
                        log_dir=out_dir / "logs",
                        jwt_secret=jwt_secret,
                        time_limit_s=time_limit_s,
                        server_env={
                            "BENCH_PREPARE_THRESHOLD": "none",
                        },
                        console=console,
                    )
                    record({**r, "rep": rep})
    console.print(f"matrix done in {time.monotonic() - started:.0f} s: {runs_path}")
    return out_dir
