"""Least privilege and authentication.

- Tokens: for another task instance (403), expired, wrong signature, wrong audience, `alg: none`,
  unsigned/garbled (401) on every execution endpoint; none of them writes anything.
- A login that is only a member of tistate_executor runs a task's whole life through the library
  and cannot SELECT, INSERT, UPDATE or DELETE any table.
- SECURITY DEFINER functions cannot be hijacked through the caller's search_path: shadowing
  functions, an operator and a table in a schema first on the path are never used.
- The JWT secret and the database password never appear in logs or error bodies.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import jwt
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import ADMIN_URL
from faultkit import END_DATE, RUNNING, World, table_snapshot
from http_support import SECRET, Server, mint, running_server, start_server
from tistate import Client, tokens

ENDPOINTS = [
    ("PATCH", "/state", {"state": "failed", "end_date": END_DATE}),
    ("PATCH", "/run", RUNNING),
    ("PUT", "/heartbeat", {"hostname": "fault-worker", "pid": 4711}),
    ("PATCH", "/skip-downstream", {"tasks": ["t001"]}),
]


def unsigned(sub: UUID) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": str(sub), "aud": "urn:airflow.apache.org:task", "exp": now + 600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS: dict[str, Any] = {
    "expired": lambda ti: mint(ti, expires_in=-30),
    "wrong signature": lambda ti: mint(ti, secret="another-secret-" + "x" * 40),
    "wrong audience": lambda ti: mint(ti, audience="urn:someone-else"),
    "no audience": lambda ti: mint(ti, audience=None),
    "alg none": unsigned,
    "garbage": lambda ti: "not.a.jwt",
}


@pytest.fixture
def world(db_dsn: str) -> World:
    return World(db_dsn, prefix="sec", tasks=3).create()


@pytest.fixture
def server(db_dsn: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(db_dsn, tmp_path / "server.log", pool_size=2) as srv:
        yield srv


def test_bad_tokens_are_rejected_on_every_endpoint(world: World, server: Server) -> None:
    target, other = world.ti_ids[0], world.ti_ids[1]
    statuses: dict[str, set[int]] = {}
    with psycopg.connect(world.dsn, autocommit=True) as conn, server.client() as http:
        before = table_snapshot(conn)
        for method, path, body in ENDPOINTS:
            url = f"/execution/task-instances/{target}{path}"
            response = http.request(
                method, url, json=body, headers={"Authorization": f"Bearer {mint(other)}"}
            )
            assert response.status_code == 403, (path, response.text)
            statuses.setdefault("other task instance", set()).add(response.status_code)
            for name, make in BAD_TOKENS.items():
                response = http.request(
                    method, url, json=body, headers={"Authorization": f"Bearer {make(target)}"}
                )
                assert response.status_code == 401, (name, path, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
                statuses.setdefault(name, set()).add(response.status_code)
            response = http.request(method, url, json=body)
            assert response.status_code == 401
        assert table_snapshot(conn) == before
    print(f"\n[security] token answers: {statuses}")


# ------------------------------------------------------------------ worker and operator logins
def login_in(role_group: str, db_name: str, db_dsn: str) -> Iterator[str]:
    """A LOGIN role that is only a member of `role_group`; its connection string."""
    role = f"{role_group}_{uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER IN ROLE {role_group}')  # type: ignore[arg-type]
    params = conninfo_to_dict(db_dsn)
    params["user"] = role
    try:
        yield make_conninfo(**params)  # type: ignore[arg-type]
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


@pytest.fixture
def executor_login(db_name: str, db_dsn: str) -> Iterator[str]:
    """A worker login: only a member of tistate_executor."""
    yield from login_in("tistate_executor", db_name, db_dsn)


@pytest.fixture
def operator_login(db_name: str, db_dsn: str) -> Iterator[str]:
    """An operator login: only a member of tistate_operator."""
    yield from login_in("tistate_operator", db_name, db_dsn)


def test_a_worker_login_runs_a_whole_task_life_and_touches_no_table(
    executor_login: str, operator_login: str, db_dsn: str
) -> None:
    world = World(operator_login, prefix="ex", tasks=3)
    world.create(running=False)  # define_dag and create_dag_run: an operator's job
    t0, t1, t2 = world.ti_ids
    with Client(executor_login) as worker, Client(operator_login) as operator:
        worker.ti_run(t0, RUNNING)
        worker.ti_heartbeat(t0, RUNNING["hostname"], RUNNING["pid"])
        deferred = worker.ti_update_state(
            t0, {"state": "deferred", "classpath": "a.Trigger", "next_method": "resume"}
        )
        assert deferred.new_state == "deferred"
        assert operator.ti_queue(t0).new_state == "queued"  # the scheduler's step
        worker.ti_run(t0, RUNNING)
        retry = worker.ti_update_state(t0, {"state": "up_for_retry", "end_date": END_DATE})
        assert retry.new_ti_id is not None
        t0 = retry.new_ti_id
        operator.ti_queue(t0)
        worker.ti_run(t0, RUNNING)
        resched = worker.ti_update_state(
            t0,
            {"state": "up_for_reschedule", "end_date": END_DATE, "reschedule_date": END_DATE},
        )
        assert resched.new_state == "up_for_reschedule"
        operator.ti_queue(t0)
        worker.ti_run(t0, RUNNING)
        done = worker.ti_update_state(t0, world.payload(0))
        assert done.applied and len(done.asset_event_ids) == 2
        worker.ti_run(t1, RUNNING)
        assert worker.ti_skip_downstream(t1, ["t002"]) == 1
        assert worker.ti_update_state(t1, {"state": "failed", "end_date": END_DATE}).applied
        assert operator.ti_mark(t2, "success", reason="operator").new_state == "success"
        assert operator.emit_asset_event("ex-a0", "s3://ex/a0", extra={"manual": True}).asset_id
        assert operator.ti_get(t0).model_dump()  # the read functions are an operator's
        assert operator.asset_events(name="ex-a0")
    with psycopg.connect(db_dsn, autocommit=True) as admin:
        tables = [
            row[0]
            for row in admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'tistate' ORDER BY 1"
            )
        ]
    assert len(tables) >= 19
    denied = 0
    with psycopg.connect(executor_login, autocommit=True) as conn:
        for table in tables:
            for statement in (
                f"SELECT 1 FROM tistate.{table} LIMIT 1",
                f"UPDATE tistate.{table} SET {first_column(db_dsn, table)} = NULL WHERE false",
                f"DELETE FROM tistate.{table} WHERE false",
                f"INSERT INTO tistate.{table} DEFAULT VALUES",
                f"TRUNCATE tistate.{table}",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)  # type: ignore[arg-type]
                denied += 1
        # ... and no private helper either.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT tistate._uuid7(now())")
    print(f"\n[security] worker login: whole life ok, {denied} table statements denied")


@pytest.mark.parametrize(
    "call",
    [
        "SELECT tistate.ti_mark(%(ti)s, 'success', 'a worker marks')",
        'SELECT tistate.define_dag(\'{"dag_id": "squat", "is_paused": true}\')',
        "SELECT tistate.emit_asset_event('ex-a0', 's3://ex/a0', '{}')",
        "SELECT tistate.ti_queue(%(ti)s)",
        "SELECT tistate.ti_get(%(ti)s)",
    ],
    ids=["mark", "define_dag", "emit", "queue", "read"],
)
def test_a_worker_login_cannot_do_an_operators_work(
    executor_login: str, db_dsn: str, call: str
) -> None:
    world = World(db_dsn, prefix="wk", tasks=1).create()
    with (
        psycopg.connect(executor_login, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(call, {"ti": world.ti_ids[0]})  # type: ignore[arg-type]


def test_a_worker_login_cannot_move_time(
    executor_login: str, operator_login: str, db_dsn: str
) -> None:
    """A heartbeat at 'infinity' would never go stale: a worker's p_now must be the database's
    clock (within 5 minutes); an operator may state any time."""
    world = World(db_dsn, prefix="tm", tasks=2).create()
    heartbeat = (
        "SELECT tistate.ti_heartbeat(p_ti_id => %s, p_hostname => %s, p_pid => %s, p_now => %s)"
    )
    with psycopg.connect(executor_login, autocommit=True) as conn:
        for when in ("infinity", "2000-01-01T00:00:00Z"):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(
                    heartbeat, [world.ti_ids[0], RUNNING["hostname"], RUNNING["pid"], when]
                )
            assert caught.value.sqlstate == "TS403"
        conn.execute(heartbeat, [world.ti_ids[0], RUNNING["hostname"], RUNNING["pid"], "now"])
    with psycopg.connect(operator_login, autocommit=True) as conn:
        conn.execute(
            heartbeat, [world.ti_ids[1], RUNNING["hostname"], RUNNING["pid"], "2000-01-01Z"]
        )


def first_column(dsn: str, table: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1",
            [f"tistate.{table}"],
        ).fetchone()
    assert row is not None
    return str(row[0])


# ------------------------------------------------------------------ search_path hijacking
HIJACK = """
CREATE SCHEMA evil;
CREATE TABLE evil.task_instance (id uuid, state text);
CREATE TABLE evil.asset_event (id int);
CREATE FUNCTION evil.boom() RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'HIJACKED'; END $$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS $$ SELECT evil.boom() $$;
CREATE FUNCTION evil.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT evil.boom()::jsonb $$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT evil.boom()::timestamptz $$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql AS $$ SELECT evil.boom() $$;
CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE sql
  AS $$ SELECT evil.boom() $$;
CREATE FUNCTION evil.eq(uuid, uuid) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.boom() = '' $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.eq);
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.boom() = '' $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
"""


def test_security_definer_functions_ignore_the_callers_search_path(
    executor_login: str, db_dsn: str
) -> None:
    role = conninfo_to_dict(executor_login)["user"]
    with psycopg.connect(db_dsn, autocommit=True) as admin:
        admin.execute(
            f'GRANT CREATE ON DATABASE "{conninfo_to_dict(db_dsn)["dbname"]}" TO "{role}"'
        )  # type: ignore[arg-type]
    world = World(db_dsn, prefix="hj", tasks=2).create()
    with psycopg.connect(executor_login, autocommit=True) as conn:
        conn.execute(HIJACK)  # type: ignore[arg-type]
        # The attacker's schema first, even before pg_catalog.
        conn.execute("SET search_path = evil, pg_catalog, public")
        with pytest.raises(psycopg.errors.RaiseException, match="HIJACKED"):
            conn.execute("SELECT jsonb_typeof('{}'::jsonb)")  # the shadow is live for the caller
        # Every name in these statements is qualified: only the functions' insides are on trial.
        row = conn.execute(
            "SELECT applied, asset_event_ids FROM tistate.ti_update_state("
            "p_ti_id => %s, p_payload => %s::jsonb)",
            [world.ti_ids[0], json.dumps(world.payload(0))],
        ).fetchone()
        assert row is not None and row[0] is True and len(row[1]) == 2
        conn.execute(
            "SELECT tistate.ti_heartbeat(p_ti_id => %s, p_hostname => 'fault-worker',"
            " p_pid => 4711)",
            [world.ti_ids[1]],
        )
        failed = conn.execute(
            "SELECT new_state FROM tistate.ti_update_state(p_ti_id => %s,"
            ' p_payload => \'{"state": "failed", "end_date": "2025-01-01T00:01:00Z"}\')',
            [world.ti_ids[1]],
        ).fetchone()
        assert failed == ("failed",)
        assert conn.execute("SELECT count(*) FROM evil.task_instance").fetchone() == (0,)
    inv_ok = World(db_dsn, prefix="hj", tasks=2)
    inv_ok.ti_ids = world.ti_ids
    from faultkit import check_invariant

    inv = check_invariant(inv_ok, {0}, set())
    assert inv.problems == [], inv.problems


# ------------------------------------------------------------------ secrets
def test_secrets_never_appear_in_logs_or_error_bodies(
    db_dsn: str, tmp_path: Path, world: World
) -> None:
    password = f"pw-{uuid4().hex}"
    params = conninfo_to_dict(db_dsn)
    url_with_password = (
        f"postgresql://{params['user']}:{password}@{params['host']}:{params['port']}/"
        f"{params['dbname']}"
    )
    bodies: list[str] = []
    with running_server(url_with_password, tmp_path / "server.log", pool_size=2) as srv:
        with srv.client() as http:
            ti = world.ti_ids[0]
            for name, make in BAD_TOKENS.items():
                r = http.patch(
                    f"/execution/task-instances/{ti}/state",
                    json={"state": "failed", "end_date": END_DATE},
                    headers={"Authorization": f"Bearer {make(ti)}"},
                )
                bodies.append(r.text)
                assert r.status_code == 401, name
            for body in ({"state": "nope"}, {"state": "success"}, "not json"):
                r = http.patch(
                    f"/execution/task-instances/{ti}/state",
                    content=json.dumps(body) if not isinstance(body, str) else body,
                    headers={
                        "Authorization": f"Bearer {mint(ti)}",
                        "content-type": "application/json",
                    },
                )
                bodies.append(r.text)
            for path in ("/ready", "/metrics", "/openapi.json", "/health"):
                bodies.append(http.get(path).text)
        log = srv.log()
    # A server whose database is unreachable (with the password in its URL) explains why, safely.
    down_url = f"postgresql://postgres:{password}@127.0.0.1:1/nowhere"
    down = start_server(
        down_url, tmp_path / "down.log", wait_ready=False, pool_size=1, pool_timeout=0.5
    )
    try:
        with down.client() as http:
            ready = http.get("/ready")
            assert ready.status_code == 503
            bodies.append(ready.text)
    finally:
        down.stop()
    down_log = down.log()
    assert "Connection refused" in down_log  # the operator is told why, without the password
    for secret in (SECRET, password):
        assert secret not in log and secret not in down_log
        for body in bodies:
            assert secret not in body
    token = mint(world.ti_ids[0])
    assert token.split(".")[2] not in log


# ------------------------------------------------------------------ token time claims
@pytest.mark.parametrize(
    ("moment", "leeway", "reason"),
    [
        (999.999, 0, "invalid_token"),  # before iat/nbf
        (1000, 0, None),
        (1599.999, 0, None),
        (1600, 0, "token_expired"),  # exp is the first moment refused
        (1629.999, 30, None),  # the leeway on both sides
        (970, 30, None),
        (1630, 30, "token_expired"),
    ],
)
def test_token_time_claims_are_checked_at_the_moment_given(
    moment: float, leeway: float, reason: str | None
) -> None:
    """`now` is an injected clock: no test waits for a token to expire."""
    ti = uuid4()
    issued = datetime.fromtimestamp(1000, UTC)
    token = tokens.mint(ti, secret=SECRET, ttl=timedelta(seconds=600), now=issued)
    check = tokens.Verifier(secret=SECRET, leeway=leeway)
    if reason is None:
        assert check.verify(token, ti, now=moment)["sub"] == str(ti)
        return
    with pytest.raises(tokens.TokenError) as caught:
        check.verify(token, ti, now=moment)
    assert caught.value.reason == reason


def test_a_time_claim_that_is_not_a_number_is_refused() -> None:
    ti = uuid4()
    token = jwt.encode(
        {"sub": str(ti), "aud": tokens.DEFAULT_AUDIENCE, "exp": "soon"}, SECRET, "HS256"
    )
    with pytest.raises(tokens.TokenError) as caught:
        tokens.verify(token, secret=SECRET, now=0)
    assert caught.value.reason == "invalid_token"
