"""A real Airflow 3.3 metadata database driven by Airflow's own CLI, for end-to-end tests.

The helpers build a "world": a fresh PostgreSQL database migrated by `airflow db migrate`, the
DAGs of tests/airflow_e2e/dags serialized into it by `airflow dags reserialize`, a producer run
whose task instances Airflow's scheduler created, and then scheduler loops whose effect on the
consumer DAGs (asset-triggered runs, the events they consumed, the queue left) is read back.
Nothing imitates Airflow: every row Airflow owns is written by an `airflow` command or Airflow's
own code, except in three SQL stand-ins for components this harness does not run (documented
where they are; fast, no process):

- `queue_task_instance` plays the scheduler's hand-off to an executor (scheduled -> queued);
- `start_task_instance` plays the API server's `/run` for a worker (-> running);
- `emit_asset_event_as_api_server` plays the API server's success with an asset outlet (the
  control that `tistate.ti_update_state` replaces in the real test).

`execution_api` is the slow, exact alternative to the last two: Airflow's own Execution API
routes (`/run`, `/state`) called in a subprocess.

Nothing of the producer ever executes: every task of every DAG sits in the pool `HOLD_POOL`, which
`create_world` creates with 0 slots (`airflow pools set`). The scheduler still creates the task
instances and moves them to `scheduled`, but its "queue executable task instances" step finds 0
open slots and leaves them there, so the LocalExecutor never receives a workload and no task
state changes behind the test's back. The consumer runs the scheduler creates are held the same
way (queued -> running, their task `scheduled`), which keeps the assertions stable. Other choices
were rejected: a LocalExecutor that may run tasks would fail them (no API server to talk to) and
mark them failed; running the scheduler only once every producer TI is final would forbid testing
one event at a time. Two scheduler safety nets do not touch the TIs the test starts either: the
orphan reset and the missing-heartbeat check select only TIs with `queued_by_job_id` set (joined
to a job), and `start_task_instance` leaves it NULL as no scheduler queued them.

No pytest here: the fixtures are in conftest.py beside this file. Every Airflow command runs in a
subprocess with the environment of `World.env`; each command's duration is recorded in
`World.timings` (name -> list of seconds) and its output appended to `AIRFLOW_HOME/commands.log`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
HOLD_POOL = "tistate_hold"  # the pool every task of tests/airflow_e2e/dags uses (0 slots)
JWT_SECRET = "tistate-airflow-e2e-jwt-secret-not-for-production"

PRODUCER = "tistate_producer"
BURST_DAG = "tistate_burst"  # one mapped task `emit`, 100 task instances a run
CONSUMERS = ("consumer_any", "consumer_all", "consumer_alias")  # unpaused by create_world
PAUSED_CONSUMER = "consumer_paused"  # created paused (is_paused_upon_creation), never unpaused
ALL_CONSUMERS = (*CONSUMERS, PAUSED_CONSUMER)
ALIAS = "tistate_alias"
EMIT_TASKS = tuple(f"emit_{i}" for i in range(10))  # emit_i has outlet asset_i
ALIAS_TASK = "emit_alias"  # outlet: the alias tistate_alias
TEARDOWN_TASK = "cleanup"  # is_teardown in serialized_dag


def asset_name(i: int) -> str:
    return f"asset_{i}"


def asset_uri(i: int) -> str:
    return f"s3://bucket/asset/{i}"


class AirflowCommandError(RuntimeError):
    """An `airflow` command exited non-zero; the message holds the end of its output."""


@dataclass
class World:
    """One Airflow metadata database and the environment every `airflow` command runs with."""

    db_name: str
    dsn: str  # libpq conninfo for psycopg
    home: Path  # AIRFLOW_HOME
    env: dict[str, str]
    timings: dict[str, list[float]] = field(default_factory=dict)

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        """An autocommit connection to the metadata database, rows as dicts."""
        return psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row)

    def record(self, step: str, seconds: float) -> None:
        self.timings.setdefault(step, []).append(seconds)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.record(step, time.monotonic() - started)

    def timing_report(self) -> str:
        return ", ".join(
            f"{step} {'+'.join(f'{s:.1f}' for s in secs)}s" for step, secs in self.timings.items()
        )


@dataclass(frozen=True)
class TaskInstanceRow:
    id: uuid.UUID
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    pool: str
    dag_version_id: uuid.UUID | None


@dataclass(frozen=True)
class ProducerRun:
    """A manual run of tistate_producer whose TIs Airflow's scheduler created."""

    run_id: str
    tis: dict[str, TaskInstanceRow]  # by task_id, as read right after the scheduler loop


@dataclass(frozen=True)
class ConsumerRun:
    """An asset-triggered dag_run of a consumer and the asset events it consumed."""

    id: int
    run_id: str
    state: str
    run_after: datetime
    event_ids: tuple[int, ...]


@dataclass(frozen=True)
class QueuedAsset:
    """A row of asset_dag_run_queue (ADRQ)."""

    asset_id: int
    asset_name: str
    target_dag_id: str
    created_at: datetime


@dataclass(frozen=True)
class ConsumerReport:
    """What the scheduler did for the consumers: their asset-triggered runs and the queue left."""

    runs: dict[str, list[ConsumerRun]]  # every dag id of ALL_CONSUMERS, [] when none
    queue: list[QueuedAsset]

    def event_ids(self, dag_id: str) -> set[int]:
        return {event for run in self.runs[dag_id] for event in run.event_ids}

    def queued_for(self, dag_id: str) -> list[QueuedAsset]:
        return [row for row in self.queue if row.target_dag_id == dag_id]


# --- databases and the environment ---------------------------------------------------------------


def dsn_for(admin_dsn: str, db_name: str) -> str:
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = db_name
    return make_conninfo(**params)  # type: ignore[arg-type]


def sqlalchemy_url(admin_dsn: str, db_name: str) -> str:
    """Airflow's `[database] sql_alchemy_conn` for db_name on the server of admin_dsn."""
    params = conninfo_to_dict(admin_dsn)
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql+psycopg2://{user}{password}@{host}{port}/{db_name}"


def create_database(admin_dsn: str, db_name: str, template: str | None = None) -> str:
    """(Re)create db_name, empty or as a copy of template; returns its conninfo."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{db_name}"{clause}')
    return dsn_for(admin_dsn, db_name)


def drop_database(admin_dsn: str, db_name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def airflow_env(admin_dsn: str, db_name: str, home: Path) -> dict[str, str]:
    """The environment of every `airflow` command of a world (AIRFLOW__* overrides only)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONFIG", "_AIRFLOW"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(admin_dsn, db_name),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            # the scheduler sleeps this long when a loop found nothing to do (default 1 s)
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # lean processes on a shared 2-core machine
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__METRICS__STATSD_ON": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
    )
    return env


def airflow(world: World, *args: str, step: str | None = None, timeout: float = 300) -> str:
    """Run `airflow *args` (`python -m airflow`, this interpreter's Airflow) in the world's
    environment; returns stdout, raises AirflowCommandError on a non-zero exit."""
    name = step or " ".join(args[:2])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=world.env,
        cwd=world.home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    world.record(name, elapsed)
    with (world.home / "commands.log").open("a") as log:
        log.write(f"\n=== airflow {' '.join(args)} -> {done.returncode} in {elapsed:.1f}s\n")
        log.write(done.stdout)
        log.write(done.stderr)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise AirflowCommandError(f"airflow {' '.join(args)} exited {done.returncode}:\n{tail}")
    return done.stdout


# --- building a world ----------------------------------------------------------------------------


def migrated_world(admin_dsn: str, db_name: str, home: Path, template: str | None = None) -> World:
    """A fresh database db_name migrated by `airflow db migrate` (or copied from a template
    database that was), with AIRFLOW_HOME at home (created, emptied)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    world = World(
        db_name=db_name,
        dsn=create_database(admin_dsn, db_name, template),
        home=home,
        env=airflow_env(admin_dsn, db_name, home),
    )
    if template is None:
        airflow(world, "db", "migrate", step="db migrate")
    return world


def create_hold_pool(world: World) -> None:
    """The 0-slot pool that keeps every task of the harness DAGs from being queued."""
    airflow(world, "pools", "set", HOLD_POOL, "0", "tistate e2e: never queue", step="pools set")


def reserialize(world: World) -> None:
    """Parse the DAG folder and write dag, serialized_dag, dag_version and the asset reference
    tables (what the DAG processor does; no dag-processor process is needed afterwards: the
    scheduler of Airflow 3 reads serialized DAGs only)."""
    airflow(world, "dags", "reserialize", step="dags reserialize")
    with world.connect() as conn:
        errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
        dags = {row["dag_id"] for row in conn.execute("SELECT dag_id FROM dag").fetchall()}
    if errors or not {PRODUCER, *ALL_CONSUMERS} <= dags:
        raise AirflowCommandError(f"reserialize: import errors {errors}, dags {sorted(dags)}")


def unpause(world: World, dag_ids: Sequence[str]) -> None:
    """`airflow dags unpause` for dag_ids, in one command (an anchored regex)."""
    pattern = "^(" + "|".join(dag_ids) + ")$"
    airflow(world, "dags", "unpause", "--treat-dag-id-as-regex", "-y", pattern, step="dags unpause")


def trigger(world: World, dag_id: str = PRODUCER, run_id: str | None = None) -> str:
    """`airflow dags trigger`: a manual dag_run (state queued); returns its run_id."""
    run_id = run_id or f"manual__tistate_e2e_{uuid.uuid4().hex[:8]}"
    airflow(world, "dags", "trigger", dag_id, "--run-id", run_id, step="dags trigger")
    return run_id


def run_scheduler(world: World, num_runs: int = 1) -> None:
    """`airflow scheduler --num-runs N`: N scheduling loops, then exit. One loop creates the
    asset-triggered runs due, starts queued runs, creates and schedules their task instances."""
    airflow(
        world,
        "scheduler",
        "--num-runs",
        str(num_runs),
        "--skip-serve-logs",
        step="scheduler",
        timeout=600,
    )


def create_world(admin_dsn: str, db_name: str, home: Path, template: str | None = None) -> World:
    """migrate (or copy template), 0-slot pool, reserialize, unpause producer and consumers
    (not consumer_paused). No run yet: see `start_producer_run`."""
    world = migrated_world(admin_dsn, db_name, home, template)
    create_hold_pool(world)
    reserialize(world)
    unpause(world, [PRODUCER, BURST_DAG, *CONSUMERS])
    return world


def start_producer_run(world: World, num_runs: int = 1) -> ProducerRun:
    """Trigger the producer and run the scheduler until its task instances exist (one loop is
    enough): the run is `running`, its TIs `scheduled` (held by the 0-slot pool), the teardown
    `cleanup` without state (waiting for its upstream tasks)."""
    run_id = trigger(world)
    run_scheduler(world, num_runs)
    tis = task_instances(world, PRODUCER, run_id)
    if len(tis) != len(EMIT_TASKS) + 2:
        raise AssertionError(f"producer run {run_id} has TIs {sorted(tis)}")
    return ProducerRun(run_id, tis)


# --- reading and writing rows --------------------------------------------------------------------


def task_instances(world: World, dag_id: str, run_id: str) -> dict[str, TaskInstanceRow]:
    """The run's task instances by task_id (unmapped tasks: map_index -1)."""
    with world.connect() as conn:
        rows = conn.execute(
            """SELECT id, task_id, map_index, state, try_number, pool, dag_version_id
                 FROM task_instance WHERE dag_id = %s AND run_id = %s ORDER BY task_id""",
            (dag_id, run_id),
        ).fetchall()
    return {row["task_id"]: TaskInstanceRow(**row) for row in rows}


def dag_run_state(world: World, dag_id: str, run_id: str) -> str:
    with world.connect() as conn:
        row = conn.execute(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        ).fetchone()
    if row is None:
        raise LookupError(f"no dag_run {dag_id}/{run_id}")
    return str(row["state"])


def queue_task_instance(world: World, ti_id: uuid.UUID) -> None:
    """Bring a `scheduled` TI to `queued`, the scheduler's hand-off to its executor, which the
    0-slot pool prevents (SchedulerJobRunner._executable_task_instances_to_queued: state queued,
    queued_dttm; queued_by_job_id is left NULL, so no scheduler treats it as its own: neither the
    orphan reset nor the stuck-in-queued check touches it). Airflow's `/run` accepts only queued or
    restarting TIs, so `execution_api` needs this first."""
    with world.connect() as conn:
        row = conn.execute(
            """UPDATE task_instance SET state = 'queued', queued_dttm = now(), updated_at = now()
                WHERE id = %s AND state = 'scheduled' RETURNING id""",
            (ti_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"task instance {ti_id} missing or not scheduled")


def start_task_instance(
    world: World, ti_id: uuid.UUID, hostname: str = "tistate-e2e-worker", pid: int = 4242
) -> None:
    """Bring a TI to `running` with the writes of Airflow's API server when a worker calls
    `PATCH /execution/task-instances/{id}/run` (routes/task_instances.py ti_run): state running,
    hostname, unixname, pid, start_date (kept when resuming from deferral: next_kwargs set),
    end_date NULL, last_heartbeat_at now, retry_delay_override and retry_reason NULL; try_number
    stays the one the scheduler set. Not written: the audit `log` row (event 'running').

    A direct UPDATE, playing the worker's `/run` (the harness runs no task supervisor and no API
    server), fast (no process). It also accepts `scheduled`, so it stands for the scheduler's
    queueing too; `execution_api` is the slower path through Airflow's own route. The TI keeps
    queued_by_job_id NULL (no scheduler queued it), so the scheduler neither resets it as an orphan
    (adopt_or_reset_orphaned_tasks joins the TI's job) nor fails it for a missing heartbeat (that
    check selects queued_by_job_id = its own job).
    """
    with world.connect() as conn:
        row = conn.execute(
            """UPDATE task_instance
                  SET state = 'running', hostname = %s, unixname = 'airflow', pid = %s,
                      start_date = CASE WHEN next_kwargs IS NULL OR next_kwargs = 'null'::jsonb
                                        THEN now() ELSE start_date END,
                      end_date = NULL, last_heartbeat_at = now(), retry_delay_override = NULL,
                      retry_reason = NULL, updated_at = now()
                WHERE id = %s AND state IN ('scheduled', 'queued', 'restarting')
                RETURNING id""",
            (hostname, pid, ti_id),
        ).fetchone()
    if row is None:
        raise LookupError(f"task instance {ti_id} missing or not in a state /run accepts")


def success_payload(
    assets: Sequence[int] = (),
    alias_assets: Sequence[int] = (),
    extra: dict[str, Any] | None = None,
    end_date: datetime | None = None,
) -> dict[str, Any]:
    """The body a worker's task runner sends to `PATCH .../state` on success
    (TISuccessStatePayload, task_runner._build_asset_profiles / _serialize_outlet_events): outlets
    `asset_i` for i in assets, plus, when alias_assets is not empty, the alias `tistate_alias`
    as an outlet with one alias event per `asset_i` in alias_assets. JSON-ready: pass it to
    `tistate.ti_update_state` (json.dumps) or as the rest of an `execution_api` "succeed" step."""
    extra = extra or {}
    outlets: list[dict[str, Any]] = [
        {"name": asset_name(i), "uri": asset_uri(i), "type": "Asset"} for i in assets
    ]
    events: list[dict[str, Any]] = []
    if alias_assets:
        outlets.append({"name": ALIAS, "type": "AssetAlias"})
        events = [
            {
                "source_alias_name": ALIAS,
                "dest_asset_key": {"name": asset_name(i), "uri": asset_uri(i)},
                "dest_asset_extra": {},
                "extra": extra,
            }
            for i in alias_assets
        ]
    when = end_date or datetime.now(UTC)
    return {
        "state": "success",
        "end_date": when.isoformat(),
        "task_outlets": outlets,
        "outlet_events": events,
        "rendered_map_index": None,
    }


def execution_api(world: World, steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call Airflow's own Execution API routes, in one subprocess (execution_api_call.py):
    steps like {"op": "run", "ti": id} (PATCH .../run; the TI must be queued or restarting, see
    `queue_task_instance`) and {"op": "succeed", "ti": id, **success_payload([0])} (PATCH
    .../state, success: Airflow writes asset_event, ADRQ, alias links; the step's task_outlets
    and outlet_events are used, end_date is the call's time). The control of the harness: rows
    written exactly as Airflow's API server writes them. About 5 s a call (imports)."""
    script = Path(__file__).resolve().parent / "execution_api_call.py"
    payload = json.dumps(list(steps), default=str)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), payload],
        env=world.env,
        cwd=world.home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    world.record("execution api", time.monotonic() - started)
    with (world.home / "commands.log").open("a") as log:
        log.write(f"\n=== execution_api {payload} -> {done.returncode}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise AirflowCommandError(f"execution api {payload}:\n{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def asset_ids(world: World) -> dict[str, int]:
    """Active assets by name (the scheduler's orphanage pass keeps asset_active)."""
    with world.connect() as conn:
        rows = conn.execute(
            """SELECT a.name, a.id FROM asset a
                 JOIN asset_active aa ON aa.name = a.name AND aa.uri = a.uri"""
        ).fetchall()
    return {row["name"]: row["id"] for row in rows}


def emit_asset_event_as_api_server(
    world: World,
    ti: TaskInstanceRow,
    asset: str,
    run_id: str,
    dag_id: str = PRODUCER,
    *,
    timestamp: datetime | None = None,
    finish: bool = True,
) -> int:
    """What Airflow's API server writes for a successful TI with a concrete outlet asset
    (TaskInstance.register_asset_changes_in_db -> AssetManager.register_asset_change): one
    asset_event and one asset_dag_run_queue row per unpaused consumer scheduled on the asset
    (direct, by name or by uri reference), ON CONFLICT DO NOTHING, all at one `now()`. Returns
    the event id. The control for the harness's own test; tistate.ti_update_state replaces it.
    `timestamp` backdates the event only (the ADRQ rows keep now()), to probe the time window;
    `finish=False` leaves the TI as it is (else: success, end_date, duration).
    """
    with world.connect() as conn, conn.transaction():
        asset_id = conn.execute(
            """SELECT a.id FROM asset a JOIN asset_active aa ON aa.name = a.name AND aa.uri = a.uri
                WHERE a.name = %s""",
            (asset,),
        ).fetchone()
        if asset_id is None:
            raise LookupError(f"no active asset {asset}")
        event = conn.execute(
            """INSERT INTO asset_event (asset_id, extra, source_task_id, source_dag_id,
                                        source_run_id, source_map_index, timestamp)
               VALUES (%s, '{}'::json, %s, %s, %s, %s, coalesce(%s, now())) RETURNING id""",
            (asset_id["id"], ti.task_id, dag_id, run_id, ti.map_index, timestamp),
        ).fetchone()
        assert event is not None
        conn.execute(
            """INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at)
               SELECT %(asset)s, d.dag_id, now() FROM dag d
                WHERE NOT d.is_paused AND d.dag_id IN (
                      SELECT dag_id FROM dag_schedule_asset_reference WHERE asset_id = %(asset)s
                      UNION SELECT r.dag_id FROM dag_schedule_asset_name_reference r
                             JOIN asset a ON a.name = r.name WHERE a.id = %(asset)s
                      UNION SELECT r.dag_id FROM dag_schedule_asset_uri_reference r
                             JOIN asset a ON a.uri = r.uri WHERE a.id = %(asset)s)
               ORDER BY d.dag_id
               ON CONFLICT DO NOTHING""",
            {"asset": asset_id["id"]},
        )
        if not finish:
            return int(event["id"])
        conn.execute(
            """UPDATE task_instance SET state = 'success', end_date = now(), updated_at = now(),
                      duration = extract(epoch FROM now() - start_date)
                WHERE id = %s""",
            (ti.id,),
        )
    return int(event["id"])


def consumer_report(world: World) -> ConsumerReport:
    """Every consumer's asset_triggered runs with their dagrun_asset_event ids, and the ADRQ."""
    with world.connect() as conn:
        runs = conn.execute(
            """SELECT dr.dag_id, dr.id, dr.run_id, dr.state, dr.run_after,
                      coalesce(array_agg(dae.event_id ORDER BY dae.event_id)
                               FILTER (WHERE dae.event_id IS NOT NULL), '{}') AS event_ids
                 FROM dag_run dr LEFT JOIN dagrun_asset_event dae ON dae.dag_run_id = dr.id
                WHERE dr.run_type = 'asset_triggered' AND dr.dag_id = ANY(%s)
                GROUP BY dr.dag_id, dr.id ORDER BY dr.dag_id, dr.id""",
            (list(ALL_CONSUMERS),),
        ).fetchall()
        queue = conn.execute(
            """SELECT q.asset_id, a.name AS asset_name, q.target_dag_id, q.created_at
                 FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id
                ORDER BY q.target_dag_id, a.name"""
        ).fetchall()
    by_dag: dict[str, list[ConsumerRun]] = {dag_id: [] for dag_id in ALL_CONSUMERS}
    for row in runs:
        by_dag[row["dag_id"]].append(
            ConsumerRun(
                id=row["id"],
                run_id=row["run_id"],
                state=row["state"],
                run_after=row["run_after"],
                event_ids=tuple(row["event_ids"]),
            )
        )
    return ConsumerReport(runs=by_dag, queue=[QueuedAsset(**row) for row in queue])


def schedule_consumers(world: World, num_runs: int = 1) -> ConsumerReport:
    """Run `airflow scheduler --num-runs N`, then report what it did for the consumers."""
    run_scheduler(world, num_runs)
    return consumer_report(world)
