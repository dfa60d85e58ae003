"""tistate serves a real Airflow 3.3.2 deployment's workers, end to end (Airflow mode, part 2).

One world for the module (the expensive part, once): a database made by `airflow db migrate`,
tistate installed into it (`migrate(flavor="airflow")`), the DAGs of dags_live/ serialized by
`airflow dags reserialize`, and four processes: `airflow api-server` (the Execution API),
`tistate serve` (configured by Airflow's own AIRFLOW__* variables plus its port), nginx in front
of both with deploy/nginx/tistate.conf as shipped (only the addresses replaced), and
`airflow scheduler` with the LocalExecutor, whose workers' `[core] execution_api_server_url`
points at nginx. Airflow's `[execution_api] jwt_expiration_time` is JWT_LIFETIME seconds.

Then the producer's tasks run for real (Airflow's task supervisor and Task SDK): `/run` goes to
Airflow, heartbeats and the final state (with the asset and alias events) to tistate; Airflow's
scheduler creates the consumer runs from tistate's events, their tasks run the same way, and every
run ends `success`. A task of `live_long` sleeps several token lifetimes, heartbeating only through
tistate, and finishes `success` with the token tistate refreshed. The proofs: nginx's access log
(which upstream answered each request), tistate's /metrics and the database rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from airflow_e2e import world as af
from airflow_e2e.conftest import ADMIN_URL
from tistate import migrate
from tistate.tokens import mint

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "tistate.conf"
DAGS_LIVE = Path(__file__).resolve().parent / "dags_live"
LIVE_DAGS = ("live_producer", "live_consumer_asset", "live_consumer_alias", "live_long")
#: Airflow's [execution_api] jwt_expiration_time in this world, seconds. At most 30 s, so
#: max(20%, 30 s) makes every request refresh; the rule itself is tested in test_http_tokens.py.
JWT_LIFETIME = 15
#: how long live_long's task sleeps (3 token lifetimes): without a refresh the token it got from
#: /run is refused after JWT_LIFETIME + 10 s (the leeway), and its final state with it
LONG_SLEEP = 45
TIMEOUT = 240  # seconds for every run to end
JWT_SECRET = "tistate-live-e2e-" + "k" * 64  # Airflow's [api_auth] jwt_secret (HS512: >= 64 bytes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    world: af.World
    tistate_port: int
    airflow_port: int
    nginx_port: int
    access_log: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)
    tistate_env: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.world.home / f"{name}.log").open("wb")
        self.logs.append(log)
        self.processes[name] = subprocess.Popen(
            args, env=env, cwd=self.world.home, stdout=log, stderr=subprocess.STDOUT
        )

    def log_of(self, name: str) -> str:
        return (self.world.home / f"{name}.log").read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.tistate_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())

    def split(self) -> list[tuple[str, str, int, str]]:
        """(method, path, status, upstream) of every request nginx answered."""
        pattern = re.compile(r'"(\w+) (\S+) HTTP/[\d.]+" (\d+) \d+ upstream=(\S+)')
        rows = []
        for line in self.access_log.read_text().splitlines():
            found = pattern.search(line)
            if found:
                rows.append((found[1], found[2], int(found[3]), found[4]))
        return rows


def wait_for(condition: Callable[[], bool], what: str, live: Live, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for name, process in live.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited {process.returncode}:\n{live.log_of(name)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def answers(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def nginx_config(live: Live, prefix: Path) -> Path:
    """The shipped config with only the three addresses (and the log path) replaced."""
    shipped = NGINX_CONF.read_text()
    site = (
        shipped.replace("127.0.0.1:8081", f"127.0.0.1:{live.tistate_port}")
        .replace("127.0.0.1:8080", f"127.0.0.1:{live.airflow_port}")
        .replace("listen 8090;", f"listen 127.0.0.1:{live.nginx_port};")
        .replace("/var/log/nginx/tistate_split.log", str(live.access_log))
    )
    assert site.count(str(live.tistate_port)) == 1 and site.count(str(live.airflow_port)) == 1
    (prefix / "tistate.conf").write_text(site)
    main = prefix / "nginx.conf"
    main.write_text(
        # as root, nginx's workers would be `nobody`, who cannot enter this private directory
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
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
    return main


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    try:
        import importlib.metadata

        if not importlib.metadata.version("apache-airflow-core").startswith("3.3."):
            pytest.skip("the live test targets Airflow 3.3")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("apache-airflow 3.3 is not installed")
    root = Path(tempfile.mkdtemp(prefix="tistate_live_"))
    db_name = f"tistate_af_{os.getpid()}_live"
    world = af.migrated_world(ADMIN_URL, db_name, root / "home")
    live = Live(
        world,
        tistate_port=free_port(),
        airflow_port=free_port(),
        nginx_port=free_port(),
        access_log=root / "nginx_access.log",
    )
    world.env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_LIVE),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                f"http://127.0.0.1:{live.nginx_port}/execution/"
            ),
            "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": str(JWT_LIFETIME),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__PORT": str(live.airflow_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(world.home / "logs"),
            "TISTATE_LIVE_SLEEP": str(LONG_SLEEP),
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # no `dags unpause` needed
        }
    )
    try:
        with world.timed("tistate migrate --airflow"):
            migrate.migrate(world.dsn, flavor="airflow", airflow_schema="public")
        airflow = [sys.executable, "-m", "airflow"]
        live.spawn(
            "api-server",
            [*airflow, "api-server", "--port", str(live.airflow_port), "--apps", "execution"],
            world.env,
        )
        af.airflow(world, "dags", "reserialize", step="dags reserialize")
        # tistate serve reads Airflow's own variables: only its port, pool and where Airflow's
        # API server is are TISTATE_ ones.
        tistate_env = {k: v for k, v in world.env.items() if not k.startswith("TISTATE_")}
        tistate_env.update(
            {
                "TISTATE_PORT": str(live.tistate_port),
                "TISTATE_POOL_SIZE": "4",
                "TISTATE_AIRFLOW_API_URL": f"http://127.0.0.1:{live.airflow_port}",
                "TISTATE_LOG_LEVEL": "warning",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO / "wrapper"), os.environ.get("PYTHONPATH")) if p
                ),
            }
        )
        live.tistate_env = tistate_env
        live.spawn("tistate", [sys.executable, "-m", "tistate", "serve"], tistate_env)
        prefix = root / "nginx"
        prefix.mkdir()
        config = nginx_config(live, prefix)
        nginx = shutil.which("nginx")
        assert nginx is not None
        live.spawn("nginx", [nginx, "-p", str(prefix), "-e", "stderr", "-c", str(config)], {})
        with world.timed("services up"):
            wait_for(lambda: answers(live.tistate_port, "/ready"), "tistate serve", live)
            wait_for(lambda: answers(live.nginx_port, "/"), "nginx", live)
            wait_for(
                lambda: answers(live.airflow_port, "/execution/health"), "api-server", live, 120
            )
        yield live
    finally:
        live.stop()
        print(f"\nlive world timings: {world.timing_report()}")
        af.drop_database(ADMIN_URL, db_name)
        shutil.rmtree(root, ignore_errors=True)


def run_states(world: af.World) -> dict[str, list[str]]:
    with world.connect() as conn:
        rows = conn.execute(
            "SELECT dag_id, state FROM dag_run WHERE dag_id = ANY(%s) ORDER BY id",
            (list(LIVE_DAGS),),
        ).fetchall()
    states: dict[str, list[str]] = {dag_id: [] for dag_id in LIVE_DAGS}
    for row in rows:
        states[row["dag_id"]].append(row["state"])
    return states


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        wanted = sample == name or sample.startswith((name + "{", name + "_total"))
        if wanted and all(f'{key}="{val}"' in sample for key, val in labels.items()):
            total += float(value)
    return total


def test_airflow_workers_run_through_tistate(live: Live) -> None:
    world = live.world
    started = time.monotonic()
    live.spawn(
        "scheduler", [sys.executable, "-m", "airflow", "scheduler", "--skip-serve-logs"], world.env
    )
    with ThreadPoolExecutor(2) as triggers:  # two `airflow dags trigger` at once
        list(triggers.map(lambda dag_id: af.trigger(world, dag_id), ["live_long", "live_producer"]))

    def finished() -> bool:
        states = run_states(world)
        if any(state == "failed" for runs in states.values() for state in runs):
            raise AssertionError(f"a run failed: {states}\n{live.log_of('scheduler')}")
        return all(runs and all(s == "success" for s in runs) for runs in states.values())

    wait_for(finished, "every live run to succeed", live, TIMEOUT)
    elapsed = time.monotonic() - started
    states = run_states(world)
    assert states == {dag_id: ["success"] for dag_id in LIVE_DAGS}, states

    with world.connect() as conn:
        tis = conn.execute(
            """SELECT id, dag_id, task_id, state, start_date, end_date FROM task_instance
                WHERE dag_id = ANY(%s)""",
            (list(LIVE_DAGS),),
        ).fetchall()
        # The events: written by tistate (its producer side table names each one's TI)...
        events = conn.execute(
            """SELECT e.id, a.name, e.extra::jsonb AS extra, e.source_task_id, p.ti_id
                 FROM asset_event e JOIN asset a ON a.id = e.asset_id
                 LEFT JOIN tistate.asset_event_producer p ON p.event_id = e.id
                ORDER BY e.id"""
        ).fetchall()
        alias_links = conn.execute(
            """SELECT aa.name, x.event_id FROM asset_alias_asset_event x
                 JOIN asset_alias aa ON aa.id = x.alias_id"""
        ).fetchall()
        # ... and consumed by the consumer runs Airflow's scheduler created.
        consumed = conn.execute(
            """SELECT dr.dag_id, dr.run_type, array_agg(dae.event_id ORDER BY dae.event_id) AS ids
                 FROM dag_run dr JOIN dagrun_asset_event dae ON dae.dag_run_id = dr.id
                GROUP BY dr.id"""
        ).fetchall()
        audit = conn.execute(
            "SELECT event, count(*) AS n FROM log WHERE dag_id = ANY(%s) GROUP BY event",
            (list(LIVE_DAGS),),
        ).fetchall()
    assert {ti["state"] for ti in tis} == {"success"} and len(tis) == 5
    by_task = {ti["task_id"]: ti for ti in tis if ti["dag_id"] == "live_producer"}
    assert sorted((e["name"], e["source_task_id"]) for e in events) == [
        ("live_a", "emit_asset"),
        ("live_b", "emit_alias"),
    ], events
    assert {e["name"]: e["extra"] for e in events} == {
        "live_a": {"rows": 42, "from": "emit_asset"},
        "live_b": {"via": "live_alias"},
    }
    ids = {e["name"]: e["id"] for e in events}
    assert {e["name"]: e["ti_id"] for e in events} == {
        "live_a": by_task["emit_asset"]["id"],
        "live_b": by_task["emit_alias"]["id"],
    }, "every event was written by tistate (its producer table names the TI)"
    assert [(link["name"], link["event_id"]) for link in alias_links] == [
        ("live_alias", ids["live_b"])
    ]
    assert sorted((c["dag_id"], c["run_type"], c["ids"]) for c in consumed) == [
        ("live_consumer_alias", "asset_triggered", [ids["live_b"]]),
        ("live_consumer_asset", "asset_triggered", [ids["live_a"]]),
    ]

    # The split: heartbeats and states went to tistate, /run (and the rest) to Airflow.
    split = live.split()
    tistate_at = f"127.0.0.1:{live.tistate_port}"
    airflow_at = f"127.0.0.1:{live.airflow_port}"
    kinds: Counter[tuple[str, str, int]] = Counter()
    for method, path, status, upstream in split:
        route = path.rsplit("/", 1)[-1] if "/task-instances/" in path else path.split("?")[0]
        where = {tistate_at: "tistate", airflow_at: "airflow"}.get(upstream, "?")
        kinds[(f"{method} {route}", where, status)] += 1
    print(f"\nrequests through nginx (route, upstream, status): {dict(sorted(kinds.items()))}")
    assert kinds[("PATCH run", "airflow", 200)] == 5
    assert kinds[("PATCH state", "tistate", 204)] == 5, "every final state through tistate"
    assert kinds[("PUT heartbeat", "tistate", 204)] >= LONG_SLEEP // 10
    assert not [k for k in kinds if k[0] in ("PATCH state", "PUT heartbeat") and k[1] != "tistate"]
    assert not [k for k in kinds if k[1] == "tistate" and k[2] >= 400], "tistate refused nothing"

    # The long task outlived several token lifetimes, and tistate refreshed its token.
    long_ti = next(ti for ti in tis if ti["dag_id"] == "live_long")
    ran = (long_ti["end_date"] - long_ti["start_date"]).total_seconds()
    assert ran > 2 * JWT_LIFETIME + 10, f"ran {ran:.0f} s"
    text = live.metrics()
    refreshed = metric(text, "tistate_tokens_refreshed")
    assert refreshed >= 2
    assert metric(text, "tistate_transitions", state="success", applied="true") == 5
    assert metric(text, "tistate_asset_events_written") == 2
    print(
        f"all {len(LIVE_DAGS)} DAGs' runs success in {elapsed:.0f} s after the trigger"
        f" (module setup {time.monotonic() - live.started - elapsed:.0f} s); long task ran"
        f" {ran:.0f} s on {JWT_LIFETIME} s tokens, tistate refreshed {refreshed:.0f} tokens;"
        f" audit log rows {sorted((r['event'], r['n']) for r in audit)}"
    )


def request(method: str, url: str, token: str, body: dict[str, Any]) -> tuple[int, str]:
    data = json.dumps(body).encode()
    call = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_awaiting_input_is_forwarded_to_airflow(live: Live) -> None:
    """Human in the loop: a PATCH .../state with awaiting_input reaches tistate (nginx routes by
    path only), which forwards it to Airflow's API server: Airflow parks the TI (204), no 422."""
    world = live.world
    scheduler = live.processes.get("scheduler")
    if scheduler is not None and scheduler.poll() is None:
        scheduler.terminate()  # nothing else may touch the TI the test puts back to running
        try:
            scheduler.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a graceful shutdown can outlast a loaded machine
            scheduler.kill()
            scheduler.wait(timeout=30)
    with world.connect() as conn:
        row = conn.execute(
            """UPDATE task_instance SET state = 'running', end_date = NULL
                WHERE dag_id = 'live_long' RETURNING id"""
        ).fetchone()
    assert row is not None
    ti_id = row["id"]
    token = mint(ti_id, secret=JWT_SECRET, algorithm="HS512")
    body = {"state": "awaiting_input", "next_method": "execute_complete", "next_kwargs": {"k": 1}}
    url = f"http://127.0.0.1:{live.nginx_port}/execution/task-instances/{ti_id}/state"
    status, text = request("PATCH", url, token, body)
    assert status == 204, text
    with world.connect() as conn:
        ti = conn.execute(
            "SELECT state, next_method, next_kwargs FROM task_instance WHERE id = %s", (ti_id,)
        ).fetchone()
    assert ti is not None and (ti["state"], ti["next_method"]) == (
        "awaiting_input",
        "execute_complete",
    )
    last = live.split()[-1]
    assert last[:3] == ("PATCH", f"/execution/task-instances/{ti_id}/state", 204)
    assert last[3] == f"127.0.0.1:{live.tistate_port}", "nginx sent it to tistate"
    assert metric(live.metrics(), "tistate_forwarded_requests", status="204") == 1


def test_ready_and_start_up_refuse_an_incompatible_database(live: Live) -> None:
    """A grant tistate's functions need is lost (as when Airflow recreates a table): /ready
    answers 503 with the problem and `tistate serve` refuses to start; granted again, ready."""
    world = live.world
    ready = f"http://127.0.0.1:{live.tistate_port}/ready"
    with world.connect() as conn:
        conn.execute("REVOKE INSERT ON public.log FROM tistate_owner")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(ready, timeout=10)
        assert refused.value.code == 503
        detail = json.loads(refused.value.read())["detail"]
        assert detail["reason"] == "incompatible"
        assert any("INSERT" in p and "log" in p for p in detail["problems"]), detail
        # while the problem lasts, the execution routes write nothing: 503 before any SQL
        ti_id = uuid.uuid4()
        url = f"http://127.0.0.1:{live.nginx_port}/execution/task-instances/{ti_id}/heartbeat"
        token = mint(ti_id, secret=JWT_SECRET, algorithm="HS512")
        status, text = request("PUT", url, token, {"hostname": "w", "pid": 1})
        assert status == 503 and json.loads(text)["detail"]["reason"] == "incompatible", text
        env = {**live.tistate_env, "TISTATE_PORT": str(free_port())}
        started = subprocess.run(
            [sys.executable, "-m", "tistate", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert started.returncode == 8, started.stderr
        assert "cannot run safely" in started.stderr and "log" in started.stderr
    finally:
        with world.connect() as conn:
            conn.execute("GRANT INSERT ON public.log TO tistate_owner")
    with urllib.request.urlopen(ready, timeout=10) as answer:
        assert answer.status == 200
    status, text = request("PUT", url, token, {"hostname": "w", "pid": 1})
    assert status == 404, text  # served again (no such task instance)
