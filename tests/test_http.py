"""The HTTP service over real HTTP: a `python -m tistate.http` process on a loopback port, against
a migrated database of this module's own. Every endpoint and status code, auth, operations routes,
the committed OpenAPI document, access logs and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import psycopg
import pytest

from conftest import create_database, drop_database, template_for
from http_support import (
    AUDIENCE,
    CLI_SERVE,
    NOW,
    SECRET,
    Dags,
    Server,
    auth,
    mint,
    running_payload,
    running_server,
    start_server,
    success_payload,
    wait_for_lock_waiters,
)
from tistate import migrate
from tistate.http import Settings, create_app
from tistate.http.openapi import render_openapi

REPO = Path(__file__).resolve().parents[1]
TI_PATH = "/execution/task-instances/{}"


@pytest.fixture(scope="module")
def module_dsn() -> Iterator[str]:
    name = f"tistate_http_{uuid4().hex[:8]}"
    dsn = create_database(name, template=template_for("standalone"))
    yield dsn
    drop_database(name)


@pytest.fixture(scope="module")
def server(module_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("http") / "server.log"
    with running_server(module_dsn, log, lock_timeout=0.5, pool_size=4) as srv:
        yield srv


@pytest.fixture(scope="module")
def dags(module_dsn: str) -> Dags:
    return Dags(module_dsn)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def patch(http: httpx.Client, ti: UUID, action: str, body: Any, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", None) or auth(ti)
    return http.patch(TI_PATH.format(ti) + f"/{action}", json=body, headers=headers, **kw)


def put_heartbeat(http: httpx.Client, ti: UUID, hostname: str, pid: int) -> httpx.Response:
    body = {"hostname": hostname, "pid": pid}
    return http.put(TI_PATH.format(ti) + "/heartbeat", json=body, headers=auth(ti))


def detail(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "application/json"
    return response.json()["detail"]


# ---------------------------------------------------------------------------------- /run
def test_run_returns_the_run_context(http: httpx.Client, dags: Dags) -> None:
    ti = dags.queued()
    response = patch(
        http,
        ti,
        "run",
        running_payload(),
        headers={**auth(ti), "Airflow-API-Version": "2025-09-23"},
    )
    assert response.status_code == 200
    context = response.json()
    assert context["dag_run"]["dag_id"] == "producer"
    assert context["max_tries"] == 1
    assert context["should_retry"] is True
    assert response.headers["airflow-api-version"]
    assert dags.state(ti) == "running"
    # The same worker starting again is a duplicate start: 200, still running.
    assert patch(http, ti, "run", running_payload()).status_code == 200


def test_run_conflict_not_found_gone_and_invalid(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running()
    other = patch(http, ti, "run", running_payload(hostname="elsewhere"))
    assert other.status_code == 409
    assert detail(other)["reason"] == "invalid_state"
    assert detail(other)["previous_state"] == "running"

    missing = uuid4()
    assert detail(patch(http, missing, "run", running_payload()))["reason"] == "not_found"
    assert patch(http, missing, "run", running_payload()).status_code == 404

    retried = patch(http, ti, "state", {"state": "up_for_retry", "end_date": NOW.isoformat()})
    assert retried.status_code == 204
    gone = patch(http, ti, "run", running_payload())
    assert gone.status_code == 410
    assert detail(gone)["reason"] == "gone"

    fresh = dags.queued()
    invalid = patch(http, fresh, "run", {"state": "running", "hostname": "h"})
    assert invalid.status_code == 422
    fields = {tuple(e["loc"]) for e in detail(invalid)}
    assert ("body", "unixname") in fields
    assert ("body", "pid") in fields
    assert dags.state(fresh) == "queued"


# ---------------------------------------------------------------------------------- /state
def test_success_writes_events_and_repeats_as_a_200_no_op(
    http: httpx.Client, dags: Dags, module_dsn: str
) -> None:
    ti = dags.running()
    body = success_payload(
        outlet_events=[
            {"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"n": 1}},
            {
                "source_alias_name": "daily-tables",
                "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"},
                "dest_asset_extra": {},
                "extra": {"via": "alias"},
            },
        ]
    )
    response = patch(http, ti, "state", body)
    assert response.status_code == 204
    assert response.content == b""
    assert dags.state(ti) == "success"
    with psycopg.connect(module_dsn) as conn:
        events = conn.execute(
            "SELECT count(*) FROM tistate_test.asset_event WHERE ti_id = %s", (ti,)
        ).fetchone()
    assert events is not None and events[0] >= 1

    again = patch(http, ti, "state", body)
    assert again.status_code == 200
    result = again.json()
    assert result["applied"] is False
    assert result["previous_state"] == "success"
    assert result["new_state"] == "success"


def test_state_conflict_not_found_and_gone(http: httpx.Client, dags: Dags) -> None:
    queued = dags.queued()
    conflict = patch(http, queued, "state", success_payload())
    assert conflict.status_code == 409
    assert detail(conflict) == {
        "reason": "invalid_state",
        "message": "TI was not in the running state so it cannot be updated",
        "previous_state": "queued",
    }
    missing = patch(http, uuid4(), "state", success_payload())
    assert missing.status_code == 404
    assert detail(missing)["reason"] == "not_found"

    ti = dags.running()
    assert (
        patch(http, ti, "state", {"state": "up_for_retry", "end_date": NOW.isoformat()}).status_code
        == 204
    )
    gone = patch(http, ti, "state", success_payload())
    assert gone.status_code == 410


def test_state_422_from_pydantic_has_fastapi_shape(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running()
    not_allowed = patch(http, ti, "state", {"state": "running"})
    assert not_allowed.status_code == 422
    errors = detail(not_allowed)
    assert isinstance(errors, list)
    assert errors[0]["loc"][0] == "body"
    assert {"type", "loc", "msg"} <= set(errors[0])

    unknown_field = patch(http, ti, "state", success_payload(colour="blue"))
    assert unknown_field.status_code == 422
    assert any(
        e["loc"] == ["body", "success", "colour"] or e["loc"][-1] == "colour"
        for e in detail(unknown_field)
    )

    not_json = http.patch(TI_PATH.format(ti) + "/state", content=b"{not json", headers=auth(ti))
    assert not_json.status_code == 422
    empty = http.patch(TI_PATH.format(ti) + "/state", content=b"", headers=auth(ti))
    assert empty.status_code == 422
    assert detail(empty)[0]["loc"] == ["body"]
    assert dags.state(ti) == "running"


def test_state_422_from_sql_names_the_field(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running()
    body = success_payload(task_outlets=[{"type": "Asset", "name": "x", "uri": "airflow://x"}])
    response = patch(http, ti, "state", body)
    assert response.status_code == 422
    found = detail(response)
    assert found["reason"] == "invalid_payload"
    assert found["field"].startswith("task_outlets")
    assert dags.state(ti) == "running"


def test_body_too_large_is_413(server: Server, dags: Dags) -> None:
    ti = dags.running()
    big = (
        b'{"state":"success","end_date":"2025-06-01T12:00:00Z","rendered_map_index":"'
        + (b"x" * (5 * 1024 * 1024))
        + b'"}'
    )
    with server.client() as http:
        response = http.patch(TI_PATH.format(ti) + "/state", content=big, headers=auth(ti))
    assert response.status_code == 413
    assert detail(response)["reason"] == "body_too_large"


# ---------------------------------------------------------------------------------- /heartbeat
def test_heartbeat_statuses(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running(hostname="worker-1", pid=100)
    assert put_heartbeat(http, ti, "worker-1", 100).status_code == 204

    elsewhere = put_heartbeat(http, ti, "worker-2", 100)
    assert elsewhere.status_code == 409
    assert detail(elsewhere)["reason"] == "running_elsewhere"
    assert detail(elsewhere)["current_hostname"] == "worker-1"

    assert put_heartbeat(http, uuid4(), "worker-1", 100).status_code == 404

    assert patch(http, ti, "state", success_payload()).status_code == 204
    finished = put_heartbeat(http, ti, "worker-1", 100)
    assert finished.status_code == 409
    assert detail(finished)["reason"] == "not_running"
    assert detail(finished)["current_state"] == "success"

    retried = dags.running()
    assert (
        patch(
            http, retried, "state", {"state": "up_for_retry", "end_date": NOW.isoformat()}
        ).status_code
        == 204
    )
    assert put_heartbeat(http, retried, "worker-1", 100).status_code == 410

    invalid = http.put(TI_PATH.format(ti) + "/heartbeat", json={"hostname": "h"}, headers=auth(ti))
    assert invalid.status_code == 422
    assert detail(invalid)[0]["loc"] == ["body", "pid"]


def test_a_burst_of_heartbeats_is_batched_and_each_answered(
    server: Server, http: httpx.Client, dags: Dags
) -> None:
    running = [dags.running(hostname="worker-1", pid=100) for _ in range(12)]
    elsewhere = dags.running(hostname="worker-1", pid=100)
    before = http.get("/metrics").text

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [(ti, 100) for ti in running] + [(elsewhere, 7)]
            return await asyncio.gather(
                *(
                    client.put(
                        TI_PATH.format(ti) + "/heartbeat",
                        json={"hostname": "worker-1", "pid": pid},
                        headers=auth(ti),
                    )
                    for ti, pid in calls
                )
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [204] * 12 + [409]
    assert detail(responses[-1])["reason"] == "running_elsewhere"
    after = http.get("/metrics").text
    recorded = 'tistate_heartbeats_batched_total{recorded="true"}'
    refused = 'tistate_heartbeats_batched_total{recorded="false"}'
    assert _sample(after, recorded) - _sample_or_zero(before, recorded) == 12
    assert _sample(after, refused) - _sample_or_zero(before, refused) == 1


def test_lock_timeout_answers_retryable_503(
    http: httpx.Client, dags: Dags, module_dsn: str, server: Server
) -> None:
    ti = dags.running()
    with psycopg.connect(module_dsn) as holder:
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (ti,))
        response = put_heartbeat(http, ti, "worker-1", 100)
        state = patch(http, ti, "state", success_payload())
        holder.rollback()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert detail(response)["reason"] == "lock_timeout"
    assert state.status_code == 503
    assert detail(state)["reason"] == "lock_timeout"
    assert dags.state(ti) == "running"
    # Released: the same calls now succeed.
    assert put_heartbeat(http, ti, "worker-1", 100).status_code == 204
    metrics = http.get("/metrics").text
    assert _sample(metrics, "tistate_lock_timeouts_total") >= 2
    assert _sample(metrics, 'tistate_retryable_errors_total{reason="lock_timeout"}') >= 2


# ---------------------------------------------------------------------------------- skip-downstream
def test_skip_downstream(http: httpx.Client, dags: Dags) -> None:
    tis = dags.run()
    caller = tis[0]
    response = patch(http, caller, "skip-downstream", {"tasks": ["t1", ["t2", -1]]})
    assert response.status_code == 204
    assert dags.state(tis[1]) == "skipped"
    assert dags.state(tis[2]) == "skipped"
    assert dags.state(tis[3]) == "queued"
    missing = patch(http, uuid4(), "skip-downstream", {"tasks": ["t1"]})
    assert missing.status_code == 404
    invalid = patch(http, caller, "skip-downstream", {"tasks": [["t1", "x"]]})
    assert invalid.status_code == 422


# ---------------------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        (lambda ti: None, "missing_token"),
        (lambda ti: "Token abc", "invalid_authorization_header"),
        (lambda ti: "Bearer not-a-jwt", "invalid_token"),
        (lambda ti: "Bearer " + mint(ti, expires_in=-60), "token_expired"),
        (lambda ti: "Bearer " + mint(ti, secret="another-secret-" + "x" * 64), "invalid_signature"),
        (lambda ti: "Bearer " + mint(ti, audience="urn:someone:else"), "invalid_audience"),
        (
            lambda ti: (
                "Bearer "
                + jwt.encode(
                    {"sub": str(ti), "aud": AUDIENCE, "exp": 4102444800}, None, algorithm="none"
                )
            ),
            "invalid_algorithm",
        ),
        (lambda ti: "Bearer " + mint(ti, algorithm="HS384"), "invalid_algorithm"),
    ],
    ids=[
        "missing",
        "not-bearer",
        "malformed",
        "expired",
        "bad-signature",
        "wrong-audience",
        "alg-none",
        "alg-not-configured",
    ],
)
def test_bad_tokens_are_401(http: httpx.Client, dags: Dags, make_header: Any, reason: str) -> None:
    ti = dags.running()
    header = make_header(ti)
    headers = {"Authorization": header} if header else {}
    response = http.put(
        TI_PATH.format(ti) + "/heartbeat",
        json={"hostname": "worker-1", "pid": 100},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert detail(response)["reason"] == reason
    assert "message" in detail(response)


def test_other_task_instances_token_is_403(http: httpx.Client, dags: Dags) -> None:
    ti, other = dags.running(), dags.running()
    for action, body in (("state", success_payload()), ("run", running_payload())):
        response = patch(http, ti, action, body, headers=auth(other))
        assert response.status_code == 403
        assert detail(response)["reason"] == "forbidden"
    assert dags.state(ti) == "running"


def test_hs512_token_is_accepted(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running()
    headers = auth(ti, algorithm="HS512")
    response = http.put(
        TI_PATH.format(ti) + "/heartbeat",
        json={"hostname": "worker-1", "pid": 100},
        headers=headers,
    )
    assert response.status_code == 204


def test_auth_runs_before_body_validation(http: httpx.Client, dags: Dags) -> None:
    ti = dags.running()
    response = http.patch(TI_PATH.format(ti) + "/state", json={"state": "nonsense"})
    assert response.status_code == 401


def test_issuer_is_checked_when_configured(module_dsn: str, dags: Dags, tmp_path: Path) -> None:
    ti = dags.running()
    with (
        running_server(module_dsn, tmp_path / "s.log", jwt_issuer="tistate-tests") as srv,
        srv.client() as http,
    ):
        url = TI_PATH.format(ti) + "/heartbeat"
        body = {"hostname": "worker-1", "pid": 100}
        wrong = http.put(url, json=body, headers=auth(ti, issuer="someone-else"))
        assert wrong.status_code == 401
        assert detail(wrong)["reason"] == "invalid_issuer"
        assert http.put(url, json=body, headers=auth(ti, issuer="tistate-tests")).status_code == 204


def test_insecure_no_auth_needs_no_token_and_warns(
    module_dsn: str, dags: Dags, tmp_path: Path
) -> None:
    ti = dags.running()
    with (
        running_server(module_dsn, tmp_path / "s.log", insecure_no_auth="1", jwt_secret="") as srv,
        srv.client() as http,
    ):
        response = http.put(
            TI_PATH.format(ti) + "/heartbeat", json={"hostname": "worker-1", "pid": 100}
        )
        assert response.status_code == 204
        log = srv.log()
    warnings = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and "AUTHENTICATION IS DISABLED" in line
    ]
    assert warnings and warnings[0]["level"] == "warning"


def test_no_secret_and_no_insecure_flag_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="TISTATE_JWT_SECRET"):
        Settings(database_url="postgresql://x")


# ---------------------------------------------------------------------------------- operations
def test_health_ready_and_metrics(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["schema_version"] == migrate.latest_version()
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "tistate_http_requests_total",
        "tistate_http_request_duration_seconds_bucket",
        "tistate_db_pool_in_use",
        "tistate_db_pool_waiting",
        "tistate_transitions_total",
        "tistate_asset_events_written_total",
        "tistate_lock_timeouts_total",
        "tistate_retryable_errors_total",
    ):
        assert name in text, name
    assert _sample(text, "tistate_db_pool_size") == 4
    # Routes are labelled by template, never by id.
    assert 'route="/execution/task-instances/{task_instance_id}/state"' in text


def test_ready_is_503_when_schema_is_outdated(empty_db_dsn: str, tmp_path: Path) -> None:
    server = start_server(empty_db_dsn, tmp_path / "s.log", wait_ready=False)
    try:
        with server.client() as http:
            assert http.get("/health").status_code == 200
            ready = http.get("/ready")
        assert ready.status_code == 503
        assert detail(ready)["reason"] == "schema_outdated"
        assert ready.headers["retry-after"]
    finally:
        server.stop()


def test_ready_is_503_when_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"
    server = start_server(url, tmp_path / "s.log", wait_ready=False, pool_timeout=0.5)
    try:
        with server.client() as http:
            ready = http.get("/ready")
        assert ready.status_code == 503
        assert detail(ready)["reason"] in {"pool_exhausted", "connection_failure"}
    finally:
        server.stop()


def test_request_id_in_and_out_and_json_access_log(
    http: httpx.Client, dags: Dags, server: Server
) -> None:
    ti = dags.running()
    token = mint(ti)
    response = http.put(
        TI_PATH.format(ti) + "/heartbeat",
        json={"hostname": "worker-1", "pid": 100},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"},
    )
    assert response.status_code == 204
    assert response.headers["x-request-id"] == "req-42"
    generated = http.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    # The access log line is written after the response is sent: wait for it by polling the file.
    entries = _wait_for_log(server, lambda e: e.get("request_id") == "req-42")
    assert entries["status"] == 204
    assert entries["route"] == "/execution/task-instances/{task_instance_id}/heartbeat"
    assert entries["method"] == "PUT"
    log = server.log()
    assert token not in log
    assert SECRET not in log


def test_unknown_route_and_method(http: httpx.Client) -> None:
    assert http.get("/nope").status_code == 404
    assert http.get(TI_PATH.format(uuid4()) + "/state").status_code == 405


# ---------------------------------------------------------------------------------- OpenAPI
def test_committed_openapi_equals_served(http: httpx.Client) -> None:
    served = http.get("/openapi.json").json()
    committed = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert served == committed, "docs/openapi.json is stale: run `python -m tistate.http openapi`"


def test_openapi_request_bodies_come_from_the_models(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    state = paths["/execution/task-instances/{task_instance_id}/state"]["patch"]
    ref = state["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/TIStateUpdate"
    schemas = document["components"]["schemas"]
    assert "discriminator" in schemas["TIStateUpdate"]
    assert schemas["TIEnterRunningPayload"]["additionalProperties"] is False
    assert set(state["responses"]) >= {
        "200",
        "204",
        "401",
        "403",
        "404",
        "409",
        "410",
        "422",
        "503",
    }
    hb = paths["/execution/task-instances/{task_instance_id}/heartbeat"]["put"]
    assert any(p["name"] == "Airflow-API-Version" for p in hb["parameters"])


def test_openapi_render_is_deterministic() -> None:
    settings = Settings(database_url="postgresql://unused", insecure_no_auth=True)
    assert render_openapi(create_app(settings)) == render_openapi(create_app(settings))


# ---------------------------------------------------------------------------------- shutdown
def test_graceful_shutdown_finishes_in_flight_requests(
    module_dsn: str, dags: Dags, tmp_path: Path
) -> None:
    ti = dags.running()
    server = start_server(module_dsn, tmp_path / "s.log", lock_timeout=30)
    result: dict[str, Any] = {}

    def call() -> None:
        with server.client() as http:
            result["response"] = patch(http, ti, "state", success_payload())

    with psycopg.connect(module_dsn) as holder:
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (ti,))
        worker = threading.Thread(target=call)
        worker.start()
        wait_for_lock_waiters(module_dsn, 1)
        server.process.send_signal(15)  # SIGTERM while the request is in flight
        _wait_for_log(server, lambda e: "Shutting down" in str(e.get("msg")))
        holder.rollback()  # releases the row: the in-flight request completes
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert result["response"].status_code == 204
    assert server.process.wait(timeout=30) == 0
    _wait_for_log(server, lambda e: e.get("msg") == "tistate http service stopped")
    assert dags.state(ti) == "success"


# ---------------------------------------------------------------------------------- helpers
def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name) and "{" in name):
            return float(line.rsplit(" ", 1)[1])
        if line.startswith(name + "{") and "{" not in name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def _sample_or_zero(text: str, name: str) -> float:
    try:
        return _sample(text, name)
    except AssertionError:
        return 0.0


def _wait_for_log(server: Server, match: Any, timeout: float = 10.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        for line in server.log().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if match(entry):
                    return dict(entry)
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching log line:\n{server.log()}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------- tistate serve
def test_cli_serve_with_a_database_url(module_dsn: str, dags: Dags, tmp_path: Path) -> None:
    ti = dags.running()
    command = [*CLI_SERVE, "--database-url", module_dsn, "--pool-size", "3"]
    server = start_server(None, tmp_path / "s.log", command=command)
    try:
        with server.client() as http:
            assert put_heartbeat(http, ti, "worker-1", 100).status_code == 204
            metrics = http.get("/metrics").text
        assert _sample(metrics, "tistate_db_pool_size") == 3
    finally:
        assert server.stop() == 0


def test_cli_serve_without_a_database_url_uses_the_embedded_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    server = start_server(
        None, tmp_path / "s.log", command=CLI_SERVE, startup_timeout=120, data_dir=str(data_dir)
    )
    try:
        with server.client() as http:
            ready = http.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["schema_version"] == migrate.latest_version()
        assert (data_dir / "postmaster.pid").exists()
    finally:
        assert server.stop() == 0
    # The embedded server is stopped when `serve` returns after SIGTERM.
    assert not (data_dir / "postmaster.pid").exists()


# ---------------------------------------------------------------------------------- settings
def test_settings_from_env_and_overrides() -> None:
    env = {
        "TISTATE_DATABASE_URL": "postgresql://db/x",
        "TISTATE_POOL_SIZE": "3",
        "TISTATE_POOL_MAX_WAITING": "5",
        "TISTATE_JWT_SECRET": "s" * 64,
        "TISTATE_JWT_ALGORITHMS": "hs512",
        "TISTATE_PREPARED_STATEMENTS": "0",
        "TISTATE_LOCK_TIMEOUT": "",
        "TISTATE_HEARTBEAT_BATCH": "25",
    }
    settings = Settings.from_env(env, pool_size=7, port=None)
    assert settings.heartbeat_batch == 25
    assert Settings.from_env({}, insecure_no_auth=True).heartbeat_batch == 100
    assert settings.pool_size == 7  # the override wins
    assert settings.port == 8080  # None overrides nothing
    assert settings.admission_limit == 12
    assert settings.jwt_algorithms == ("HS512",)
    assert settings.prepared_statements is False
    assert settings.lock_timeout is None
    assert "s" * 64 not in repr(settings)
    with pytest.raises(ValueError, match="algorithm"):
        Settings.from_env({**env, "TISTATE_JWT_ALGORITHMS": "none"})
    with pytest.raises(ValueError, match="pool_max_waiting"):
        Settings.from_env({**env, "TISTATE_POOL_MAX_WAITING": "0"})
    for bad in ("0", "1001"):
        with pytest.raises(ValueError, match="heartbeat_batch"):
            Settings.from_env({**env, "TISTATE_HEARTBEAT_BATCH": bad})


def test_pool_conninfo_names_the_sessions_and_sets_timeouts() -> None:
    from psycopg.conninfo import conninfo_to_dict

    from tistate.http.app import pool_conninfo

    settings = Settings(
        database_url="postgresql://u@h/db?options=-c%20work_mem%3D8MB",
        statement_timeout=1.5,
        insecure_no_auth=True,
    )
    params = conninfo_to_dict(pool_conninfo(settings))
    assert params["application_name"] == "tistate-http"
    assert params["options"] == (
        "-c work_mem=8MB -c tistate.notify_events=relay -c statement_timeout=1500"
    )
    assert params["dbname"] == "db"
    off = conninfo_to_dict(pool_conninfo(replace(settings, notify_events="off")))
    assert "-c tistate.notify_events=off" in off["options"]


def test_statement_timeout_answers_retryable_503(
    module_dsn: str, dags: Dags, tmp_path: Path
) -> None:
    ti = dags.running()
    with (
        running_server(
            module_dsn, tmp_path / "s.log", lock_timeout=10, statement_timeout=0.3
        ) as srv,
        srv.client() as http,
        psycopg.connect(module_dsn) as holder,
    ):
        holder.execute("SELECT 1 FROM task_instance WHERE id = %s FOR UPDATE", (ti,))
        response = put_heartbeat(http, ti, "worker-1", 100)
        holder.rollback()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert detail(response)["reason"] == "statement_timeout"
