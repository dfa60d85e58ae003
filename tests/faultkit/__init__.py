"""Fault-injection kit of the reliability tests (no tests here).

- `World`: a producer DAG whose task k declares its own asset `a{k}` and alias `alias{k}`, two
  consumer DAGs, one run of running task instances; `World.payload(k)` is an Airflow-shaped success
  payload with one direct event and one alias event (to `b{k}`, created on the fly).
- `check_invariant()`: every task answered success has its state and exactly its events, alias
  links, queue rows and audit row; every task answered with an error has none of them.
- `Hold`: a side transaction that makes chosen calls block *inside* the SQL function, either on
  the TI row lock or on the queue key (after the events were written), so a
  fault can be injected at a deterministic point.
- `LibraryLoad` / `HttpLoad`: concurrent completions from a thread pool, one outcome per task.
- `table_snapshot()`: a digest of every tistate table, to prove "nothing written".
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from tistate import Client, RetryableError, TistateError

END_DATE = "2025-06-01T12:01:00+00:00"
RUNNING = {
    "state": "running",
    "hostname": "fault-worker",
    "unixname": "airflow",
    "pid": 4711,
    "start_date": "2025-06-01T12:00:00+00:00",
}
LOAD_APP = "faultkit-load"


def with_params(dsn: str, **params: Any) -> str:
    """`dsn` with extra libpq parameters (application_name, options ...)."""
    values: dict[str, Any] = conninfo_to_dict(dsn)
    values.update(params)
    return make_conninfo(**values)


# ---------------------------------------------------------------------------------- the world
@dataclass
class World:
    """One producer run of `tasks` running task instances, each with its own asset and alias."""

    dsn: str
    prefix: str = "fk"
    tasks: int = 24
    ti_ids: list[UUID] = field(default_factory=list)
    # Whose define_dag / create_dag_run build the world: tistate's own, or the test setup of
    # tests/sql/test_world.sql, which also builds it on an Airflow database (both_flavors tests).
    setup_schema: str = "tistate"

    @property
    def dag_id(self) -> str:
        return f"{self.prefix}_producer"

    @property
    def run_id(self) -> str:
        return f"{self.prefix}_run"

    @property
    def consumer(self) -> str:
        return f"{self.prefix}_consumer"

    @property
    def alias_consumer(self) -> str:
        return f"{self.prefix}_alias_consumer"

    def asset(self, k: int) -> dict[str, str]:
        return {"name": f"{self.prefix}-a{k}", "uri": f"s3://{self.prefix}/a{k}"}

    def alias_asset(self, k: int) -> dict[str, str]:
        return {"name": f"{self.prefix}-b{k}", "uri": f"s3://{self.prefix}/b{k}"}

    def alias(self, k: int) -> str:
        return f"{self.prefix}-alias{k}"

    def create(self, *, running: bool = True) -> World:
        dags: list[dict[str, Any]] = [
            {
                "dag_id": self.dag_id,
                "owners": "faults",
                "tasks": [
                    {
                        "task_id": f"t{k:03d}",
                        "max_tries": 3,
                        "outlets": [
                            {"type": "Asset", **self.asset(k)},
                            {"type": "AssetAlias", "name": self.alias(k)},
                        ],
                    }
                    for k in range(self.tasks)
                ],
            },
            {
                "dag_id": self.consumer,
                "schedule": {"assets": [self.asset(k) for k in range(self.tasks)]},
            },
            {
                "dag_id": self.alias_consumer,
                "schedule": {"aliases": [self.alias(k) for k in range(self.tasks)]},
            },
        ]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for dag in dags:
                conn.execute(f"SELECT {self.setup_schema}.define_dag(p_dag => %s)", [Jsonb(dag)])
            rows = conn.execute(
                f"SELECT ti_id FROM {self.setup_schema}.create_dag_run("
                "p_dag_id => %s, p_run_id => %s) ORDER BY task_id",
                [self.dag_id, self.run_id],
            ).fetchall()
            self.ti_ids = [row[0] for row in rows]
            if running:
                for ti_id in self.ti_ids:
                    conn.execute(
                        "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)",
                        [ti_id, Jsonb(RUNNING)],
                    )
        assert len(self.ti_ids) == self.tasks
        return self

    def payload(self, k: int) -> dict[str, Any]:
        """Task k's success: a direct event on a{k} and an alias event via alias{k} on b{k}."""
        return {
            "state": "success",
            "end_date": END_DATE,
            "task_outlets": [
                {"type": "Asset", **self.asset(k)},
                {"type": "AssetAlias", "name": self.alias(k)},
            ],
            "outlet_events": [
                {"dest_asset_key": self.asset(k), "extra": {"k": k, "kind": "direct"}},
                {
                    "source_alias_name": self.alias(k),
                    "dest_asset_key": self.alias_asset(k),
                    "dest_asset_extra": {},
                    "extra": {"k": k, "kind": "alias", "quote": 'it\'s "fine"'},
                },
            ],
        }

    def index(self, ti_id: UUID) -> int:
        return self.ti_ids.index(ti_id)

    def expected_events(self, k: int) -> Counter[tuple[str, str, tuple[str, ...]]]:
        """(asset name, extra as canonical JSON, linked alias names) of task k's events."""
        events = self.payload(k)["outlet_events"]
        return Counter(
            {
                (self.asset(k)["name"], _canon(events[0]["extra"]), ()): 1,
                (self.alias_asset(k)["name"], _canon(events[1]["extra"]), (self.alias(k),)): 1,
            }
        )

    def expected_queue(self, k: int) -> set[tuple[str, str]]:
        return {
            (self.asset(k)["name"], self.consumer),
            (self.alias_asset(k)["name"], self.alias_consumer),
        }


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------- invariant
@dataclass
class Invariant:
    """What check_invariant() counted, and every violation it found."""

    succeeded: int = 0
    not_succeeded: int = 0
    events_expected: int = 0
    events_found: int = 0
    links_expected: int = 0
    links_found: int = 0
    queue_expected: int = 0
    queue_found: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "succeeded": self.succeeded,
            "not_succeeded": self.not_succeeded,
            "events_expected": self.events_expected,
            "events_found": self.events_found,
            "links_expected": self.links_expected,
            "links_found": self.links_found,
            "queue_expected": self.queue_expected,
            "queue_found": self.queue_found,
        }


def check_invariant(world: World, succeeded: Iterable[int], failed: Iterable[int]) -> Invariant:
    """Compare the database with what the callers were answered.

    `succeeded`: task indexes answered success (applied or no-op); each must be in `success` with
    exactly its two events (extras and alias links), the alias->asset link, both queue rows and one
    audit row. `failed`: indexes answered only errors; each must still be `running` with no event,
    no alias link, no queue row and no audit row.
    """
    ok, bad = set(succeeded), set(failed)
    assert not ok & bad, f"answered both success and error: {ok & bad}"
    inv = Invariant(succeeded=len(ok), not_succeeded=len(bad))
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        states = dict(
            conn.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s",
                [world.dag_id, world.run_id],
            ).fetchall()
        )
        events: dict[str, Counter[tuple[str, str, tuple[str, ...]]]] = {}
        for task_id, asset_name, extra, aliases in conn.execute(
            """
            SELECT e.source_task_id, a.name, e.extra,
                   ARRAY(SELECT al.name FROM asset_alias_asset_event AS l
                         JOIN asset_alias AS al ON al.id = l.alias_id
                         WHERE l.event_id = e.id ORDER BY al.name)
            FROM asset_event AS e JOIN asset AS a ON a.id = e.asset_id
            WHERE e.source_dag_id = %s AND e.source_run_id = %s
            """,
            [world.dag_id, world.run_id],
        ):
            events.setdefault(task_id, Counter())[(asset_name, _canon(extra), tuple(aliases))] += 1
        alias_links = set(
            conn.execute(
                "SELECT al.name, a.name FROM asset_alias_asset AS aa"
                " JOIN asset_alias AS al ON al.id = aa.alias_id"
                " JOIN asset AS a ON a.id = aa.asset_id WHERE al.name LIKE %s",
                [f"{world.prefix}-alias%"],
            ).fetchall()
        )
        queue = set(
            conn.execute(
                "SELECT a.name, q.target_dag_id FROM asset_dag_run_queue AS q"
                " JOIN asset AS a ON a.id = q.asset_id"
                " WHERE q.target_dag_id = ANY(%s)",
                [[world.consumer, world.alias_consumer]],
            ).fetchall()
        )
        audit = Counter(
            dict(
                conn.execute(
                    "SELECT task_id, count(*) FROM log WHERE dag_id = %s AND run_id = %s"
                    " AND event = 'success' GROUP BY task_id",
                    [world.dag_id, world.run_id],
                ).fetchall()
            )
        )
    inv.events_found = sum(sum(c.values()) for c in events.values())
    inv.links_found = sum(len(key[2]) * n for c in events.values() for key, n in c.items())
    inv.queue_found = len(queue)
    for k in range(world.tasks):
        task_id = f"t{k:03d}"
        got = events.get(task_id, Counter())
        link = (world.alias(k), world.alias_asset(k)["name"])
        if k in ok:
            want = world.expected_events(k)
            inv.events_expected += sum(want.values())
            inv.links_expected += 1
            inv.queue_expected += len(world.expected_queue(k))
            if states.get(task_id) != "success":
                inv.problems.append(f"{task_id}: answered success, state {states.get(task_id)}")
            if got != want:
                inv.problems.append(f"{task_id}: events {dict(got)} != {dict(want)}")
            if link not in alias_links:
                inv.problems.append(f"{task_id}: alias link {link} missing")
            if not world.expected_queue(k) <= queue:
                inv.problems.append(
                    f"{task_id}: queue rows missing: {world.expected_queue(k) - queue}"
                )
            if audit.get(task_id, 0) != 1:
                inv.problems.append(f"{task_id}: {audit.get(task_id, 0)} success log rows")
        elif k in bad:
            if states.get(task_id) != "running":
                inv.problems.append(f"{task_id}: answered error, state {states.get(task_id)}")
            if got:
                inv.problems.append(f"{task_id}: answered error, has events {dict(got)}")
            if link in alias_links:
                inv.problems.append(f"{task_id}: answered error, has alias link")
            if world.expected_queue(k) & queue:
                inv.problems.append(f"{task_id}: answered error, has queue rows")
            if audit.get(task_id, 0):
                inv.problems.append(f"{task_id}: answered error, has a success log row")
    return inv


# ---------------------------------------------------------------------------------- holds
class Hold:
    """A side transaction that makes the calls for chosen tasks block inside the SQL function.

    mode "row": `SELECT ... FOR UPDATE` on the task instance rows: the call waits on the row lock
    (for success, after its events were inserted: the SQL registers them before it locks the row;
    for other states, before any write). mode "queue": an uncommitted insert of the task's
    asset_dag_run_queue key: the call has written its events and alias links, then waits on the
    queue insert, so a fault there hits a transaction with uncommitted writes.
    """

    def __init__(self, world: World, ks: Sequence[int], mode: str = "row") -> None:
        self.world, self.ks, self.mode = world, list(ks), mode
        self.conn = psycopg.connect(world.dsn)
        self.conn.execute("SET application_name = 'faultkit-hold'")
        self.pid: int = self.conn.info.backend_pid
        if mode == "row":
            self.conn.execute(
                "SELECT 1 FROM task_instance WHERE id = ANY(%s) FOR UPDATE",
                [[world.ti_ids[k] for k in ks]],
            )
        elif mode == "queue":
            names = [world.asset(k)["name"] for k in ks]
            cur = self.conn.execute(
                "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at)"
                " SELECT id, %s, now() FROM asset WHERE name = ANY(%s)",
                [world.consumer, names],
            )
            assert cur.rowcount == len(ks)
        else:
            raise ValueError(mode)

    def release(self) -> None:
        if not self.conn.closed:
            with suppress(psycopg.OperationalError):  # the server may have gone away
                self.conn.rollback()
            self.conn.close()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def blocked_backends(
    dsn: str, count: int, holds: Sequence[Hold], *, timeout: float = 20.0
) -> list[int]:
    """Pids of the `count` backends blocked by the `holds` (bounded polling of pg_locks).

    Only waits caused by a hold count: concurrent completions may wait on each other briefly.
    """
    holders = [hold.pid for hold in holds]
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            pids = [
                row[0]
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pg_blocking_pids(pid) && %s::int[]",
                    [holders],
                )
            ]
            if len(pids) >= count:
                assert len(pids) == count, f"more blocked backends than expected: {pids}"
                return sorted(pids)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(pids)} of {count} calls blocked by the holds")
            time.sleep(0.01)  # polling the catalog for a state, not waiting for an outcome


def wait_until_blocked(
    observer: psycopg.Connection[Any],
    pid: int,
    running: Callable[[], bool],
    *,
    by: int | None = None,
    timeout: float = 10.0,
) -> str:
    """The lock type backend `pid` waits on, once PostgreSQL reports it waiting (on a lock `by`
    holds, when given). Fails when the caller stops `running` first, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = observer.execute(
            # pg_locks, not pg_stat_activity: that one is a snapshot per observer transaction
            "SELECT locktype FROM pg_locks WHERE pid = %(pid)s AND NOT granted"
            " AND (%(by)s::int IS NULL OR %(by)s::int = ANY (pg_blocking_pids(pid)))",
            {"pid": pid, "by": by},
        ).fetchone()
        if row is not None:
            return str(row[0])
        assert running(), f"backend {pid} finished without waiting for the lock"
        time.sleep(0.005)  # polling the catalog for a state, not waiting for an outcome
    raise AssertionError(f"backend {pid} never waited on a lock")


def holds_uncommitted_event_writes(dsn: str, pids: Sequence[int]) -> bool:
    """Whether every backend in `pids` has inserted into asset_event (uncommitted) already."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE pid = ANY(%s) AND granted"
            " AND relation = 'asset_event'::regclass AND mode = 'RowExclusiveLock'",
            [list(pids)],
        ).fetchone()
    return row is not None and row[0] == len(pids)


def terminate(dsn: str, pids: Iterable[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for pid in pids:
            row = conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()
            assert row is not None and row[0], f"backend {pid} not terminated"


# ---------------------------------------------------------------------------------- loads
@dataclass
class Outcome:
    """One call's answer: "applied", "noop", an HTTP status, or an error class name."""

    k: int
    answer: str
    seconds: float
    retryable: bool = False
    detail: Any = None

    @property
    def success(self) -> bool:
        return self.answer in {"applied", "noop", "204", "200"}


class LibraryLoad:
    """Concurrent completions through tistate.Client from a thread pool."""

    def __init__(
        self,
        world: World,
        *,
        workers: int = 8,
        lock_timeout: float | None = None,
        statement_timeout_ms: int | None = None,
        pool_timeout: float = 10.0,
        max_waiting: int = 0,
        pool_size: int | None = None,
    ) -> None:
        self.world = world
        self.lock_timeout = lock_timeout
        params: dict[str, Any] = {"application_name": LOAD_APP}
        if statement_timeout_ms is not None:
            params["options"] = f"-c statement_timeout={statement_timeout_ms}"
        size = pool_size or workers
        self.client = Client(
            with_params(world.dsn, **params),
            min_size=size,
            max_size=size,
            timeout=pool_timeout,
            max_waiting=max_waiting,
        )
        self.client.open()
        self.executor = ThreadPoolExecutor(max_workers=workers)

    def call(self, k: int) -> Outcome:
        started = time.monotonic()
        try:
            result = self.client.ti_update_state(
                self.world.ti_ids[k], self.world.payload(k), lock_timeout=self.lock_timeout
            )
        except TistateError as exc:
            return Outcome(
                k,
                type(exc).__name__,
                time.monotonic() - started,
                retryable=isinstance(exc, RetryableError),
                detail=exc.sqlstate,
            )
        answer = "applied" if result.applied else "noop"
        return Outcome(k, answer, time.monotonic() - started)

    def submit(self, ks: Iterable[int]) -> list[Future[Outcome]]:
        return [self.executor.submit(self.call, k) for k in ks]

    def run(self, ks: Iterable[int]) -> list[Outcome]:
        return [f.result(timeout=60) for f in self.submit(ks)]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> LibraryLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpLoad:
    """Concurrent completions over HTTP (PATCH .../state) from a thread pool."""

    def __init__(
        self,
        world: World,
        base_urls: Sequence[str],
        token: Callable[[UUID], str],
        *,
        workers: int = 8,
        timeout: float = 30.0,
    ) -> None:
        self.world = world
        self.base_urls = list(base_urls)
        self.token = token
        self.local = threading.local()
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=workers)
        self.clients: list[httpx.Client] = []
        self.lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self.timeout)
            self.local.client = client
            with self.lock:
                self.clients.append(client)
        return client

    def call(self, k: int, body: dict[str, Any] | None = None) -> Outcome:
        ti_id = self.world.ti_ids[k]
        base = self.base_urls[k % len(self.base_urls)]
        started = time.monotonic()
        try:
            response = self._client().patch(
                f"{base}/execution/task-instances/{ti_id}/state",
                json=self.world.payload(k) if body is None else body,
                headers={"Authorization": f"Bearer {self.token(ti_id)}"},
            )
        except httpx.TransportError as exc:
            return Outcome(k, type(exc).__name__, time.monotonic() - started, retryable=True)
        detail: Any = None
        if response.status_code >= 400:
            detail = {
                "body": response.json() if response.content else None,
                "retry_after": response.headers.get("retry-after"),
            }
        return Outcome(
            k,
            str(response.status_code),
            time.monotonic() - started,
            retryable=response.status_code == 503,
            detail=detail,
        )

    def submit(self, ks: Iterable[int]) -> list[Future[Outcome]]:
        return [self.executor.submit(self.call, k) for k in ks]

    def run(self, ks: Iterable[int]) -> list[Outcome]:
        return [f.result(timeout=90) for f in self.submit(ks)]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for client in self.clients:
            client.close()

    def __enter__(self) -> HttpLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tally(outcomes: Iterable[Outcome]) -> dict[str, int]:
    return dict(sorted(Counter(o.answer for o in outcomes).items()))


def split(outcomes: Iterable[Outcome]) -> tuple[set[int], set[int]]:
    """(indexes answered success, indexes answered only errors)."""
    ok: set[int] = set()
    seen: set[int] = set()
    for outcome in outcomes:
        seen.add(outcome.k)
        if outcome.success:
            ok.add(outcome.k)
    return ok, seen - ok


# ---------------------------------------------------------------------------------- tables
#: The fingerprint function, shared with the pgTAP files (pg_temp: made on each connection used).
DIGEST_SQL = (Path(__file__).resolve().parents[2] / "db_tests" / "_digest.sql").read_text()

#: Drained in the background by the service's notification relay, so its rows come and go between
#: two snapshots; an outbox row is only ever written with asset events in the same transaction,
#: which the asset_event rows of the snapshot already cover.
SNAPSHOT_SKIPS = frozenset({"tistate.asset_event_outbox"})


def table_snapshot(conn: psycopg.Connection[Any], *, sequences: bool = False) -> dict[str, str]:
    """Row count and md5 of the rows of every table tistate writes (db_tests/_digest.sql), the
    relay's outbox excepted; with `sequences`, also where each of their sequences stands. The one
    "nothing was written" fingerprint of the tests, Python and pgTAP."""
    conn.execute(DIGEST_SQL)
    rows = conn.execute("SELECT name, digest FROM pg_temp.table_digests(%s)", [sequences])
    return {name: digest for name, digest in rows if name not in SNAPSHOT_SKIPS}


@contextmanager
def unchanged_tables(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Asserts that the body of the `with` changes no row of any tistate table."""
    before = table_snapshot(conn)
    yield
    after = table_snapshot(conn)
    changed = {t for t in before if before[t] != after[t]}
    assert not changed, f"tables changed: {sorted(changed)}"
