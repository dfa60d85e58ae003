"""The bench's one command line, `python -m bench ...`: every measurement is a subcommand.

Seed, one run, the matrix (HTTP systems beside pgbench's raw and floor), micro-runs, statements,
profiles, the report, and the separate studies (airflow-oom, http-cpu, alias-history). Imports are
inside the commands, so `--help` works without the bench extras installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="tistate load and micro benchmarks"
)
console = Console(stderr=True)
REPO = Path(__file__).resolve().parent.parent


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


@app.command()
def seed(
    history: Annotated[int, typer.Option(help="events linked to each alias beforehand")] = 0,
    n: Annotated[int, typer.Option(help="running task instances to create (0: none)")] = 0,
    fresh: Annotated[bool, typer.Option(help="drop and recreate the database")] = False,
) -> None:
    """Create, migrate and seed bench_h<history>; optionally add a batch of N running TIs."""
    from bench.seed import ensure_database, prepare_batch

    dbname = ensure_database(history, fresh=fresh, console=console)
    if n:
        batch = prepare_batch(dbname, n, "manual")
        console.print(f"batch {batch.id}: {batch.n} running task instances in run {batch.run_id}")


@app.command()
def serve(history: int = 0, port: int = 8700) -> None:
    """Serve the round-trip baseline in the foreground (for manual runs)."""
    import uvicorn

    from bench.common import db_name, url

    os.environ.setdefault("TISTATE_DATABASE_URL", url(db_name(history)))
    uvicorn.run(
        "bench.roundtrip:app", host="127.0.0.1", port=port, access_log=False, log_level="warning"
    )


@app.command()
def run(
    system: Annotated[
        str,
        typer.Argument(
            help="tistate | tistate-w2 | roundtrip | raw | raw-notify-on | raw-nonotify | floor"
        ),
    ],
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 80,
    history: int = 0,
    n: Annotated[int, typer.Option(help="completions")] = 1000,
    processes: int = 1,
    pgbouncer: bool = False,
    heartbeat: bool = True,
    jwt_secret: Annotated[str | None, typer.Option(envvar="TISTATE_JWT_SECRET")] = None,
    time_limit: float = 300.0,
    out: Annotated[
        Path | None, typer.Option(help="append the result to this JSON-lines file")
    ] = None,
) -> None:
    """One run: seed a batch, start the server(s), load, sample, verify; prints the JSON result."""
    from bench.common import RESULTS_DIR
    from bench.matrix import run_http, run_raw
    from bench.raw import PGBENCH_SYSTEMS
    from bench.seed import ensure_database

    ensure_database(history, console=console)
    if system in PGBENCH_SYSTEMS:
        result = run_raw(
            history=history, concurrency=concurrency, n=n, system=system, console=console
        )
    else:
        result = run_http(
            system,
            history=history,
            concurrency=concurrency,
            n=n,
            processes=processes,
            via_pgbouncer=pgbouncer,
            jwt_secret=jwt_secret,
            heartbeat=heartbeat,
            time_limit_s=time_limit,
            log_dir=RESULTS_DIR / "logs",
            server_env={"BENCH_PREPARE_THRESHOLD": "none"} if pgbouncer else None,
            console=console,
        )
    text = json.dumps(result, default=str)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as fh:
            fh.write(text + "\n")
    print(json.dumps(result, indent=2, default=str))


@app.command()
def micro(history: int = 0, n: int = 300, concurrency: int = 1) -> None:
    """Lock wait and hold per completion, from ti_update_state's own timing (no HTTP)."""
    from bench.matrix import run_micro
    from bench.seed import ensure_database

    ensure_database(history, console=console)
    print(
        json.dumps(
            run_micro(history=history, n=n, concurrency=concurrency, console=console), indent=2
        )
    )


@app.command()
def statements(
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 80,
    history: int = 0,
    n: int = 3000,
    top: int = 30,
    jwt_secret: Annotated[str | None, typer.Option(envvar="TISTATE_JWT_SECRET")] = None,
    out: Annotated[Path | None, typer.Option(help="write the JSON result here")] = None,
) -> None:
    """pg_stat_statements (nested statements included) over one tistate run."""
    from bench.common import RESULTS_DIR
    from bench.statements import statement_profile

    result = statement_profile(
        history=history,
        concurrency=concurrency,
        n=n,
        top=top,
        jwt_secret=jwt_secret,
        log_dir=RESULTS_DIR / "logs",
        console=console,
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))


@app.command()
def matrix(
    systems: Annotated[
        str,
        typer.Option(
            help="comma list of tistate, tistate-w2, roundtrip (HTTP); raw, raw-notify-on, "
            "raw-nonotify, floor (pgbench)"
        ),
    ] = "tistate,roundtrip,raw,floor",
    concurrency: Annotated[str, typer.Option("-c", "--concurrency")] = "20,80,200,500",
    history: Annotated[str, typer.Option(help="comma list of alias history sizes")] = "0,1000000",
    n: Annotated[int, typer.Option(help="completions per run")] = 1500,
    reps: int = 1,
    scale_out: bool = True,
    scale_out_history: str = "0",
    scale_out_system: str = "tistate",
    micro_n: int = 300,
    jwt_secret: Annotated[str | None, typer.Option(envvar="TISTATE_JWT_SECRET")] = None,
    time_limit: float = 300.0,
    pgbench_clients: Annotated[
        int | None,
        typer.Option(
            help="pgbench clients of every raw/floor run (default: C, capped by what "
            "max_connections leaves at the cell's first pgbench run)"
        ),
    ] = None,
    out: Path | None = None,
) -> None:
    """The whole matrix, side by side; results in bench/results/<stamp>/ (then run `report`)."""
    from bench.matrix import run_matrix

    names = [s.strip() for s in systems.split(",") if s.strip()]
    out_dir = run_matrix(
        systems=names,
        concurrencies=_ints(concurrency),
        histories=_ints(history),
        n=n,
        reps=reps,
        scale_out=scale_out,
        scale_out_histories=_ints(scale_out_history),
        scale_out_system=scale_out_system,
        micro_n=micro_n,
        jwt_secret=jwt_secret,
        out_dir=out,
        time_limit_s=time_limit,
        pgbench_clients=pgbench_clients,
        console=console,
    )
    print(out_dir)


@app.command()
def profile(
    system: Annotated[str, typer.Argument(help="tistate | tistate-w2 | roundtrip")] = "tistate",
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 80,
    n: int = 1000,
    history: int = 0,
    duration: float = 12.0,
    out: Path = Path("bench/results/profile"),
) -> None:
    """py-spy on the server process during one run: functions with the most CPU samples."""
    from bench.common import write_json
    from bench.profile import profile_run

    result = profile_run(system, concurrency, n, history, duration, out)
    write_json(out / f"{system}-c{concurrency}.json", result)
    print(json.dumps(result, indent=2))


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="a bench/results/<stamp> directory")],
    doc: Path = Path("docs/benchmarks.md"),
    plot: Path = Path("docs/benchmarks.png"),
    no_plot: Annotated[bool, typer.Option(help="tables only (one C makes no curve)")] = False,
    section: Annotated[str, typer.Option(help="marker name in the document")] = "results",
) -> None:
    """Tables, ratios and the plot from a results directory into docs/benchmarks.md."""
    from bench.report import floor_summary, write_report

    write_report(results, doc, None if no_plot else plot, section)
    console.print(f"wrote {doc}" + ("" if no_plot else f" and {plot}"))
    print(floor_summary(results))  # service / raw / floor, when the runs have a floor


@app.command("airflow-oom")
def airflow_oom(
    concurrency: Annotated[str, typer.Option("-c", "--concurrency")] = "80,500",
    n: Annotated[int, typer.Option(help="task instances per run (the mapped task's length)")] = 500,
    reps: int = 1,
    systems: str = "airflow,tistate",
    time_limit: Annotated[float, typer.Option(help="seconds per run at most")] = 240.0,
    pool_size: Annotated[int, typer.Option(help="tistate serve's TISTATE_POOL_SIZE")] = 16,
    out: Annotated[Path | None, typer.Option(help="JSON-lines file of the results")] = None,
    keep: Annotated[bool, typer.Option(help="keep the database and the temp folder")] = False,
    fresh_servers: Annotated[
        bool, typer.Option(help="restart the servers before every measurement (RSS per run)")
    ] = True,
    airflow_workers: Annotated[int, typer.Option(help="Airflow's [api] workers")] = 1,
    tistate_workers: Annotated[int, typer.Option(help="tistate serve --workers")] = 1,
) -> None:
    """The OOM scenario on an Airflow 3.3 database: Airflow's API server alone against nginx +
    tistate serve in front of it (same database, DAGs, Airflow-minted tokens)."""
    from bench.airflow_oom import run as run_oom
    from bench.airflow_oom import table

    results = run_oom(
        _ints(concurrency),
        n=n,
        reps=reps,
        systems=[s for s in systems.split(",") if s],
        time_limit=time_limit,
        pool_size=pool_size,
        out=out,
        keep=keep,
        fresh_servers=fresh_servers,
        airflow_workers=airflow_workers,
        tistate_workers=tistate_workers,
    )
    print(table(results))


@app.command("http-cpu")
def http_cpu(
    src: Annotated[Path, typer.Option(help="source tree of server B")] = REPO,
    ab: Annotated[
        Path | None, typer.Option(metavar="SRC_A", help="also run server A from this tree")
    ] = None,
    n: Annotated[int, typer.Option("-n", "--n", help="task instances per repetition")] = 600,
    reps: int = 5,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency", help="connections")] = 4,
    pool_size: int = 10,
    warmup: Annotated[int, typer.Option(help="warm-up task instances per server")] = 200,
    keep_db: Annotated[bool, typer.Option(help="reuse bench_httpcpu as it is")] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="also write the figures here")
    ] = None,
) -> None:
    """Server CPU per heartbeat and per state call, from /proc; --ab: two trees side by side."""
    from bench.http_cpu import run as run_http_cpu

    code = run_http_cpu(
        src=src,
        ab=ab,
        n=n,
        reps=reps,
        concurrency=concurrency,
        pool_size=pool_size,
        warmup=warmup,
        keep_db=keep_db,
        json_path=json_path,
    )
    raise typer.Exit(code)


@app.command("alias-history")
def alias_history(
    database_url: Annotated[
        str,
        typer.Option(
            envvar="TISTATE_DATABASE_URL",
            help="any database of the server; a scratch database is created beside it",
        ),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    calls: Annotated[int, typer.Option(help="timed successes per alias")] = 200,
    history: Annotated[int, typer.Option(help="events linked to alias 'big'")] = 1_000_000,
    keep: Annotated[bool, typer.Option(help="keep the scratch database")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON only")] = False,
) -> None:
    """Server time of a success against its alias's event history (1,000,000 linked vs none)."""
    from bench.alias_history import run as run_alias_history

    run_alias_history(database_url, calls=calls, history=history, keep=keep, as_json=as_json)
