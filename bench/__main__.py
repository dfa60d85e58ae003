"""`python -m bench ...`: seed, serve a baseline, one run, micro-run, the matrix, the report."""

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
def serve(
    system: Annotated[str, typer.Argument(help="roundtrip | function")],
    history: int = 0,
    port: int = 8700,
) -> None:
    """Serve a baseline app in the foreground (for manual runs)."""
    import uvicorn

    from bench.common import db_name, url

    os.environ.setdefault("TISTATE_DATABASE_URL", url(db_name(history)))
    module = {"roundtrip": "bench.roundtrip:app", "function": "bench.fnserver:app"}[system]
    uvicorn.run(module, host="127.0.0.1", port=port, access_log=False, log_level="warning")


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
        str, typer.Option(help="comma list of tistate, roundtrip, function, raw")
    ] = ("tistate,roundtrip,raw"),
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
    out: Path | None = None,
) -> None:
    """The whole matrix, side by side; results in bench/results/<stamp>/ (then run `report`)."""
    from bench.matrix import run_matrix
    from bench.servers import tistate_serve_available

    names = [s.strip() for s in systems.split(",") if s.strip()]
    if ("tistate" in names or scale_out_system == "tistate") and not tistate_serve_available():
        console.print(
            "[red]`tistate serve` is not available yet; use --systems roundtrip,function,raw[/red]"
        )
        raise typer.Exit(2)
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
        console=console,
    )
    print(out_dir)


@app.command()
def profile(
    system: Annotated[str, typer.Argument(help="tistate | roundtrip | function")] = "tistate",
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
    section: Annotated[str, typer.Option(help="marker name in the document")] = "results",
) -> None:
    """Tables, ratios and the plot from a results directory into docs/benchmarks.md."""
    from bench.report import write_report

    write_report(results, doc, plot, section)
    console.print(f"wrote {doc} and {plot}")


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


if __name__ == "__main__":
    app()
