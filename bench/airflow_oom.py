"""The OOM scenario on an Airflow 3.3 database: Airflow's API server alone against the deployment.

One Airflow world for the whole command: a database made by `airflow db migrate`, tistate
installed into it (`migrate(flavor="airflow")`), a DAG folder written here (`oom_producer`: one
mapped task `emit` expanded to N task instances, outlets one asset and two aliases, so that every
success carries 1 direct + 5 alias events like bench.common.success_payload; consumers on the asset
and on each alias), `airflow dags reserialize`, and one triggered run per measurement whose task
instances Airflow's scheduler creates (`airflow scheduler --num-runs`), held from execution by a
0-slot pool, as tests/airflow_e2e/world.py does. Before a measurement, its run's task instances are
put in `running` with the UPDATE of that harness (the writes of Airflow's `/run`).

Systems, each measured on its own fresh run:

- `airflow`: `airflow api-server --apps execution` (one worker) serves every route;
- `tistate`: nginx with deploy/nginx/tistate.conf as shipped (addresses replaced) in front of the
  same Airflow API server and `tistate serve` (configured by Airflow's own AIRFLOW__* variables).

The load is bench.load's: C workers, each finishing task instances like the Task SDK (a heartbeat
PUT at once and every 5 s, the success PATCH; 5 s timeout, 5 retries with random exponential
backoff on timeouts, connection errors and 5xx). Tokens are minted by Airflow's own
`airflow.api_fastapi.auth.tokens.JWTGenerator` in a subprocess, as the Execution API's `/run` mints
them (HS512 with `[api_auth] jwt_secret`, `sub` = TI id, scope `execution`, audience
urn:airflow.apache.org:task).

Reported per run: completions/s, latency p50/p99 (a completion, retries included), lost events
(per finished TI, 6 minus the asset_event rows with its run id and map index), Airflow's own count
(asset_event rows with the run's source_run_id against 6 x TIs in `success`), TI states, the RSS of
every server process tree (idle, peak, end) and the status counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg

from bench import load
from bench.common import PG_HOST, PG_PORT, PG_USER, RESULTS_DIR, machine, scratch_db
from bench.procfs import tree, tree_rss_kib
from bench.servers import free_port

REPO = Path(__file__).resolve().parents[1]
NGINX_CONF = REPO / "deploy" / "nginx" / "tistate.conf"
DB_NAME = scratch_db("airflow_oom")
HOLD_POOL = "tistate_hold"
JWT_SECRET = "tistate-bench-airflow-oom-" + "s" * 64  # HS512: at least 64 bytes
AUDIENCE = "urn:airflow.apache.org:task"
PRODUCER = "oom_producer"
ASSET = ("oom_asset_0", "s3://oom-lake/asset-0")
ALIASES = ("oom_alias_a", "oom_alias_b")
ALIAS_EVENTS = 5
EVENTS_PER_TI = 1 + ALIAS_EVENTS
SYSTEMS = ("airflow", "tistate")

DAG_FILE = '''"""bench/airflow_oom.py's DAGs: a mapped producer (0-slot pool), consumers."""
from airflow.sdk import DAG, Asset, AssetAlias, task

N = {n}
ASSET = Asset(name="{asset_name}", uri="{asset_uri}")
ALIASES = [AssetAlias("{alias_a}"), AssetAlias("{alias_b}")]

with DAG(dag_id="{producer}", schedule=None, catchup=False, max_active_runs=64,
         default_args={{"pool": "{pool}"}}):

    @task(task_id="emit", outlets=[ASSET, *ALIASES], max_active_tis_per_dag=None)
    def emit(i: int) -> None:
        pass

    emit.expand(i=list(range(N)))

with DAG(dag_id="oom_consumer_asset", schedule=[ASSET], catchup=False,
         default_args={{"pool": "{pool}"}}):

    @task
    def consume() -> None:
        pass

    consume()

with DAG(dag_id="oom_asset_owner", schedule=None, catchup=False,
         default_args={{"pool": "{pool}"}}):

    @task(outlets=[Asset(name=f"oom_alias_asset_{{j}}", uri=f"s3://oom-lake/a{{j}}")
                   for j in range({alias_events})])
    def own() -> None:
        pass

    own()

for alias in ALIASES:
    with DAG(dag_id="oom_consumer_" + alias.name, schedule=[alias], catchup=False,
             default_args={{"pool": "{pool}"}}):

        @task
        def consume_alias() -> None:
            pass

        consume_alias()
'''

MINT_SCRIPT = """
import json, sys
from airflow.api_fastapi.auth.tokens import JWTGenerator
gen = JWTGenerator(secret_key=sys.argv[1], valid_for=7200, audience=sys.argv[2], algorithm="HS512")
for line in sys.stdin:
    ti = line.strip()
    if ti:
        print(json.dumps([ti, gen.generate(extras={"sub": ti, "scope": "execution"})]))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def admin_dsn(dbname: str = "postgres") -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname}"


def answers(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


# --- RSS of process trees ------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of named process trees every 0.25 s: before, peak, after."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: tree_rss_kib(pid) for name, pid in pids.items()}
        self.peak = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss_kib(pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, pid in self.pids.items():
            after = tree_rss_kib(pid)
            out[name] = {
                "before_mib": round(self.before[name] / 1024, 1),
                "peak_mib": round(self.peak[name] / 1024, 1),
                "after_mib": round(after / 1024, 1),
                "growth_mib": round((self.peak[name] - self.before[name]) / 1024, 1),
                "processes": len(tree(pid)),
            }
        return out


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    n: int
    env: dict[str, str]
    dsn: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)
    airflow_port: int = field(default_factory=free_port)
    tistate_port: int = field(default_factory=free_port)
    nginx_port: int = field(default_factory=free_port)

    def airflow(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with (self.root / "commands.log").open("a") as fh:
            fh.write(f"\n=== airflow {' '.join(args)} -> {done.returncode}\n")
            fh.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)}: {(done.stdout + done.stderr)[-3000:]}")
        return done.stdout

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        fh = (self.root / f"{name}.log").open("ab")
        self.logs.append(fh)
        self.processes[name] = subprocess.Popen(
            args, env=env, cwd=self.root, stdout=fh, stderr=subprocess.STDOUT
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)
        for fh in self.logs:
            fh.close()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited {process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.5)


def build_world(root: Path, n: int, runs: int, airflow_workers: int = 1) -> tuple[World, list[str]]:
    """Migrate, install tistate, write and serialize the DAGs, trigger `runs` runs and let the
    scheduler create their task instances (held in `scheduled` by the 0-slot pool)."""
    from tistate import migrate

    with psycopg.connect(admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    dags = root / "dags"
    dags.mkdir(parents=True)
    (dags / "oom_dags.py").write_text(
        DAG_FILE.format(
            n=n,
            asset_name=ASSET[0],
            asset_uri=ASSET[1],
            alias_a=ALIASES[0],
            alias_b=ALIASES[1],
            producer=PRODUCER,
            pool=HOLD_POOL,
            alias_events=ALIAS_EVENTS,
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONFIG", "_AIRFLOW", "TISTATE_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
            ),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "100000",
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n)),
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__API__WORKERS": str(airflow_workers),
            "AIRFLOW__METRICS__STATSD_ON": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "home" / "logs"),
        }
    )
    world = World(root=root, n=n, env=env, dsn=admin_dsn(DB_NAME))
    (root / "home").mkdir()
    env["AIRFLOW__API__PORT"] = str(world.airflow_port)
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
        f"http://127.0.0.1:{world.nginx_port}/execution/"
    )
    t0 = time.monotonic()
    world.airflow("db", "migrate")
    log(f"airflow db migrate: {time.monotonic() - t0:.0f}s")
    migrate.migrate(world.dsn, flavor="airflow", airflow_schema="public")
    world.airflow("pools", "set", HOLD_POOL, "0", "bench: never queue")
    world.airflow("dags", "reserialize")
    run_ids = [f"manual__oom_{i:02d}" for i in range(runs)]
    for run_id in run_ids:
        world.airflow("dags", "trigger", PRODUCER, "--run-id", run_id)
    t0 = time.monotonic()
    for _ in range(10):
        world.airflow("scheduler", "--num-runs", "3", "--skip-serve-logs")
        counts = ti_counts(world, run_ids)
        if all(counts.get(r, 0) >= n for r in run_ids):
            break
    else:
        raise RuntimeError(f"the scheduler did not create the task instances: {counts}")
    log(f"{runs} runs x {n} task instances created in {time.monotonic() - t0:.0f}s")
    return world, run_ids


def ti_counts(world: World, run_ids: Sequence[str]) -> dict[str, int]:
    with psycopg.connect(world.dsn) as conn:
        rows = conn.execute(
            """SELECT run_id, count(*) FROM task_instance
                WHERE dag_id = %s AND run_id = ANY(%s) AND map_index >= 0 GROUP BY run_id""",
            (PRODUCER, list(run_ids)),
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def start_run(world: World, run_id: str) -> list[tuple[str, int]]:
    """Put the run's task instances in `running` with world.py's stand-in for Airflow's `/run`."""
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        rows = conn.execute(
            """UPDATE task_instance
                  SET state = 'running', hostname = 'bench-worker', unixname = 'airflow',
                      pid = 4242, start_date = now(), end_date = NULL,
                      last_heartbeat_at = now(), retry_delay_override = NULL,
                      retry_reason = NULL, updated_at = now()
                WHERE dag_id = %s AND run_id = %s AND map_index >= 0
                  AND state IN ('scheduled', 'queued', 'restarting')
                RETURNING id, map_index""",
            (PRODUCER, run_id),
        ).fetchall()
    return sorted(((str(r[0]), int(r[1])) for r in rows), key=lambda x: x[1])


def mint_tokens(world: World, ti_ids: Sequence[str]) -> dict[str, str]:
    """Execution tokens from Airflow's own JWTGenerator (one subprocess for all)."""
    done = subprocess.run(
        [sys.executable, "-c", MINT_SCRIPT, JWT_SECRET, AUDIENCE],
        input="\n".join(ti_ids),
        env=world.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    pairs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    return {ti: token for ti, token in pairs}


def payload(map_index: int) -> dict[str, Any]:
    """The Task SDK's TISuccessStatePayload for `emit`: task_outlets = the task's outlets (the
    asset and both aliases), 1 direct event with extras and 5 alias events on distinct extras."""
    from datetime import UTC, datetime

    events: list[dict[str, Any]] = [
        {
            "dest_asset_key": {"name": ASSET[0], "uri": ASSET[1]},
            "extra": {"rows": map_index, "source": "bench", "kind": "direct"},
        }
    ]
    for j in range(ALIAS_EVENTS):
        events.append(
            {
                "source_alias_name": ALIASES[j % 2],
                "dest_asset_key": {"name": f"oom_alias_asset_{j}", "uri": f"s3://oom-lake/a{j}"},
                "dest_asset_extra": {},
                "extra": {"rows": map_index, "part": j, "kind": "alias"},
            }
        )
    return {
        "state": "success",
        "end_date": datetime.now(UTC).isoformat(),
        "task_outlets": [
            {"type": "Asset", "name": ASSET[0], "uri": ASSET[1]},
            *({"type": "AssetAlias", "name": a} for a in ALIASES),
        ],
        "outlet_events": events,
        "rendered_map_index": None,
    }


# --- servers -------------------------------------------------------------------------------------


def start_airflow_api(world: World) -> None:
    world.spawn(
        "api-server",
        [
            sys.executable,
            "-m",
            "airflow",
            "api-server",
            "--port",
            str(world.airflow_port),
            "--apps",
            "execution",
        ],
        world.env,
    )
    world.wait_for(lambda: answers(world.airflow_port, "/execution/health"), "api-server", 180)


def start_tistate(world: World, pool_size: int, workers: int = 1) -> None:
    env = dict(world.env)
    env.update(
        {
            "TISTATE_PORT": str(world.tistate_port),
            "TISTATE_POOL_SIZE": str(pool_size),
            "TISTATE_WORKERS": str(workers),
            "TISTATE_AIRFLOW_API_URL": f"http://127.0.0.1:{world.airflow_port}",
            "TISTATE_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO / "wrapper"), os.environ.get("PYTHONPATH")) if p
            ),
        }
    )
    world.spawn("tistate", [sys.executable, "-m", "tistate", "serve"], env)
    prefix = world.root / "nginx"
    prefix.mkdir(exist_ok=True)
    site = (
        NGINX_CONF.read_text()
        .replace("127.0.0.1:8081", f"127.0.0.1:{world.tistate_port}")
        .replace("127.0.0.1:8080", f"127.0.0.1:{world.airflow_port}")
        .replace("listen 8090;", f"listen 127.0.0.1:{world.nginx_port} backlog=4096;")
        .replace("/var/log/nginx/tistate_split.log", str(prefix / "access.log"))
    )
    (prefix / "tistate.conf").write_text(site)
    main = prefix / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/tistate.conf;
}}
"""
    )
    nginx = shutil.which("nginx")
    if nginx is None:
        raise RuntimeError("nginx is not installed")
    world.spawn("nginx", [nginx, "-p", str(prefix), "-e", "stderr", "-c", str(main)], {})
    world.wait_for(lambda: answers(world.tistate_port, "/ready"), "tistate serve")
    world.wait_for(lambda: answers(world.nginx_port, "/"), "nginx")


# --- one measurement -----------------------------------------------------------------------------


def verify(world: World, run_id: str, done_map_indexes: set[int], started: float) -> dict[str, Any]:
    with psycopg.connect(world.dsn) as conn:
        last = conn.execute(
            """SELECT extract(epoch FROM max(updated_at)) FROM task_instance
                WHERE dag_id = %s AND run_id = %s AND map_index >= 0 AND state = 'success'""",
            (PRODUCER, run_id),
        ).fetchone()
        states: dict[str, int] = {
            str(k): int(v)
            for k, v in conn.execute(
                """SELECT coalesce(state, 'none'), count(*) FROM task_instance
                    WHERE dag_id = %s AND run_id = %s AND map_index >= 0 GROUP BY 1""",
                (PRODUCER, run_id),
            ).fetchall()
        }
        per_ti: dict[int, int] = {
            int(k): int(v)
            for k, v in conn.execute(
                """SELECT source_map_index, count(*) FROM asset_event
                    WHERE source_dag_id = %s AND source_run_id = %s GROUP BY 1""",
                (PRODUCER, run_id),
            ).fetchall()
        }
    success = int(states.get("success", 0))
    span = float(last[0]) - started if last and last[0] is not None else None
    rows = sum(int(v) for v in per_ti.values())
    lost = sum(max(0, EVENTS_PER_TI - int(per_ti.get(m, 0))) for m in done_map_indexes)
    dup = sum(max(0, int(v) - EVENTS_PER_TI) for v in per_ti.values())
    return {
        "ti_states": {str(k): int(v) for k, v in states.items()},
        # what the server committed, acknowledged or not: successes / (last commit - load start)
        "db_commit_span_s": round(span, 2) if span else None,
        "db_completions_per_s": round(success / span, 1) if span else None,
        "asset_event_rows": rows,
        "expected_events": EVENTS_PER_TI * len(done_map_indexes),
        "lost_events": lost,
        "duplicate_events": dup,
        # Airflow's own count: events of the run against 6 per TI Airflow says succeeded
        "airflow_lost_events": EVENTS_PER_TI * success - rows,
    }


def measure(
    world: World,
    system: str,
    run_id: str,
    concurrency: int,
    time_limit: float,
) -> dict[str, Any]:
    tis = start_run(world, run_id)
    tokens = mint_tokens(world, [ti for ti, _ in tis])
    jobs = [
        load.Job(
            rn=m,
            ti_id=ti,
            body=json.dumps(payload(m), separators=(",", ":")).encode(),
            token=tokens[ti],
        )
        for ti, m in tis
    ]
    port = world.airflow_port if system == "airflow" else world.nginx_port
    pids = {"airflow api-server": world.processes["api-server"].pid}
    if system == "tistate":
        pids["tistate serve"] = world.processes["tistate"].pid
        pids["nginx"] = world.processes["nginx"].pid
    cfg = load.LoadConfig(
        base_urls=[f"http://127.0.0.1:{port}"], concurrency=concurrency, time_limit_s=time_limit
    )

    async def db_state(ti_id: str) -> str | None:
        async with await psycopg.AsyncConnection.connect(world.dsn) as conn:
            cur = await conn.execute("SELECT state FROM task_instance WHERE id = %s", (ti_id,))
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    log(f"{system} C={concurrency}: {len(jobs)} task instances of {run_id}")
    started = time.time()
    with RssSampler(pids) as sampler:
        result = asyncio.run(load.run_load(cfg, jobs, db_state))
    rss = sampler.summary()
    summary = load.summarise(result, len(jobs))
    time.sleep(1.0)  # let in-flight transactions of abandoned attempts end
    checked = verify(world, run_id, set(result.done), started)
    out = {
        "system": system,
        "concurrency": concurrency,
        "run_id": run_id,
        **summary,
        **checked,
        "rss": rss,
        "server_alive": {n: p.poll() is None for n, p in world.processes.items()},
    }
    log(
        f"{system} C={concurrency}: {summary['completed']}/{len(jobs)} done, "
        f"{summary['completions_per_s']}/s, p99 {summary['latency_ms']['p99']} ms, "
        f"lost {checked['lost_events']} (Airflow's count {checked['airflow_lost_events']}), "
        f"RSS {json.dumps(rss)}"
    )
    return out


def run(
    concurrency: Sequence[int],
    *,
    n: int,
    reps: int,
    systems: Sequence[str],
    time_limit: float,
    pool_size: int,
    out: Path | None,
    keep: bool = False,
    fresh_servers: bool = True,
    airflow_workers: int = 1,
    tistate_workers: int = 1,
) -> list[dict[str, Any]]:
    """Build the world, then measure systems x concurrency x reps (systems alternate)."""
    root = Path(tempfile.mkdtemp(prefix="tistate_airflow_oom_"))
    plan = [(rep, c, s) for rep in range(reps) for c in concurrency for s in systems]
    out = out or RESULTS_DIR / time.strftime("airflow-oom-%Y%m%dT%H%M%SZ", time.gmtime()) / (
        "results.jsonl"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    world: World | None = None
    try:
        world, run_ids = build_world(root, n, len(plan), airflow_workers)
        start_airflow_api(world)
        meta = {
            "machine": machine(),
            "n": n,
            "events_per_ti": EVENTS_PER_TI,
            "airflow_workers": airflow_workers,
            "tistate_workers": tistate_workers,
        }
        for (rep, c, system), run_id in zip(plan, run_ids, strict=True):
            alive = all(p.poll() is None for p in world.processes.values())
            missing = "tistate" in systems and "tistate" not in world.processes
            if fresh_servers or not alive or missing:
                # every measurement starts from fresh servers: RSS growth is the run's own
                for name in ("nginx", "tistate", "api-server"):
                    world.stop(name)
                start_airflow_api(world)
                if "tistate" in systems:
                    start_tistate(world, pool_size, tistate_workers)
            result = measure(world, system, run_id, c, time_limit)
            result.update({"rep": rep, **meta})
            results.append(result)
            with out.open("a") as fh:
                fh.write(json.dumps(result, default=str) + "\n")
        log(f"results: {out}")
    finally:
        if world is not None:
            world.stop_all()
        if not keep:
            with psycopg.connect(admin_dsn(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"kept {root} and database {DB_NAME}")
    return results


def table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: medians over repetitions per (C, system)."""
    from statistics import median

    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["concurrency"], r["system"]), []).append(r)
    lines = [
        "| C | system | runs | done (client) | completions/s | committed/s (database) | "
        "p50 ms | p99 ms | lost events (Airflow's count) | "
        "state 5xx + timeouts + conn. errors | retries | "
        "RSS MiB before -> peak (growth), per server |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]

    def med(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> float:
        vals = [v for v in (get(r) for r in rows) if v is not None]
        return float(median(vals)) if vals else float("nan")

    def rss_of(name: str, key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda r: r["rss"][name][key]

    for (c, system), rows in sorted(groups.items()):
        errors = med(
            rows,
            lambda r: sum(
                v for k, v in r["state_status"].items() if not k.isdigit() or int(k) >= 500
            ),
        )
        rss = "; ".join(
            f"{name} {med(rows, rss_of(name, 'before_mib')):.0f} -> "
            f"{med(rows, rss_of(name, 'peak_mib')):.0f} "
            f"(+{med(rows, rss_of(name, 'growth_mib')):.0f})"
            for name in rows[0]["rss"]
        )
        lines.append(
            f"| {c} | {system} | {len(rows)} | "
            f"{sum(r['completed'] for r in rows)}/{sum(r['jobs'] for r in rows)} | "
            f"{med(rows, lambda r: r['completions_per_s']):.1f} | "
            f"{med(rows, lambda r: r['db_completions_per_s']):.1f} | "
            f"{med(rows, lambda r: r['latency_ms']['p50']):,.0f} | "
            f"{med(rows, lambda r: r['latency_ms']['p99']):,.0f} | "
            f"{sum(r['lost_events'] for r in rows)} ({sum(r['airflow_lost_events'] for r in rows)})"
            f" | {errors:.0f} | {med(rows, lambda r: r['retries']):.0f} | {rss} |"
        )
    return "\n".join(lines)
