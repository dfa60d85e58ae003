"""Bad input over HTTP: arbitrary JSON bodies never get a 5xx or a partial write, 422 names the
field, oversize bodies are 413, deep nesting and NUL characters are clean 422s; schemathesis runs
against the served OpenAPI document with its checks on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
)

from conftest import create_database, drop_database, template_for
from faultkit import RUNNING, World, table_snapshot
from http_support import Server, auth, running_server
from test_bad_input import JSON, VALID_STATE_PAYLOADS, paths, plant

MAX_BODY = 64 * 1024
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def http_dsn() -> Iterator[str]:
    name = f"tistate_badhttp_{uuid4().hex[:8]}"
    dsn = create_database(name, template=template_for("standalone"))
    yield dsn
    drop_database(name)


@pytest.fixture(scope="module")
def http_world(http_dsn: str) -> World:
    return World(http_dsn, prefix="bh", tasks=6).create()


@pytest.fixture(scope="module")
def server(http_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("badhttp") / "server.log"
    with running_server(
        http_dsn, log, pool_size=4, lock_timeout=0.5, max_body_bytes=MAX_BODY
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def conn(http_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(http_dsn, autocommit=True) as connection:
        yield connection


def reset(conn: psycopg.Connection[Any], ti_id: UUID, state: str = "running") -> None:
    """The task instance back in `state` under the same id (undoing an up_for_retry id swap)."""
    gone = conn.execute(
        "SELECT dag_id, task_id, run_id, map_index FROM task_instance_history"
        " WHERE task_instance_id = %s",
        [ti_id],
    ).fetchone()
    if gone is not None:
        conn.execute(
            "UPDATE task_instance SET id = %s WHERE (dag_id, task_id, run_id, map_index)"
            " = (%s, %s, %s, %s)",
            [ti_id, *gone],
        )
        conn.execute("DELETE FROM task_instance_history WHERE task_instance_id = %s", [ti_id])
    conn.execute(
        "SELECT * FROM tistate.ti_mark(p_ti_id => %s, p_state => %s, p_reason => 'reset')",
        [ti_id, state],
    )
    conn.execute(
        (
            "DELETE FROM asset_event WHERE id IN"
            " (SELECT event_id FROM tistate.asset_event_producer WHERE ti_id = %s)"
        ),
        [ti_id],
    )


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        detail = response.json()["detail"]
        if isinstance(detail, list):  # FastAPI's shape (pydantic): loc names the field
            assert detail and all(entry["loc"][0] == "body" for entry in detail), detail
        else:  # the SQL's (or the library's) TS422
            assert detail["reason"] == "invalid_payload" and isinstance(detail["field"], str)


ENDPOINTS = {
    "state": ("PATCH", "/state"),
    "run": ("PATCH", "/run"),
    "heartbeat": ("PUT", "/heartbeat"),
    "skip-downstream": ("PATCH", "/skip-downstream"),
}


@EXAMPLES
@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    document=JSON
    | st.builds(
        lambda doc, i, v: plant(doc, paths(doc)[i % len(paths(doc))], v),
        st.sampled_from(
            [
                *VALID_STATE_PAYLOADS,
                RUNNING,
                {"hostname": "h", "pid": 1},
                {"tasks": ["t001", ["t002", 0]]},
            ]
        ),
        st.integers(min_value=0, max_value=50),
        JSON,
    ),
)
def test_arbitrary_json_never_5xx_nor_partial_write(
    http: httpx.Client,
    conn: psycopg.Connection[Any],
    http_world: World,
    endpoint: str,
    document: Any,
) -> None:
    ti_id = http_world.ti_ids[0]
    reset(conn, ti_id, "queued" if endpoint == "run" else "running")
    method, path = ENDPOINTS[endpoint]
    before = table_snapshot(conn)
    response = http.request(
        method,
        f"/execution/task-instances/{ti_id}{path}",
        content=json.dumps(document),
        headers={**auth(ti_id), "content-type": "application/json"},
    )
    assert_clean(response)
    if response.status_code >= 400:
        assert table_snapshot(conn) == before, f"{response.status_code} left a partial write"


def test_body_not_utf8_is_422_not_500(http: httpx.Client, http_world: World) -> None:
    ti_id = http_world.ti_ids[1]
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state",
        content=b"\xff\xfe{not json\x14",
        headers={**auth(ti_id), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_oversize_body_is_413_before_anything_runs(
    http: httpx.Client, conn: psycopg.Connection[Any], http_world: World
) -> None:
    ti_id = http_world.ti_ids[1]
    reset(conn, ti_id)
    payload = http_world.payload(1)
    payload["outlet_events"][0]["extra"] = {"blob": "x" * (MAX_BODY + 1)}
    before = table_snapshot(conn)
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state", json=payload, headers=auth(ti_id)
    )
    assert response.status_code == 413
    assert response.json()["detail"] == {
        "reason": "body_too_large",
        "message": f"request body larger than {MAX_BODY} bytes",
        "limit": MAX_BODY,
    }
    # Also when the client lies about (or omits) the length: the stream is cut at the limit.
    chunks = (b"x" * 8192 for _ in range(MAX_BODY // 8192 + 2))
    streamed = http.patch(
        f"/execution/task-instances/{ti_id}/state",
        content=chunks,
        headers={**auth(ti_id), "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert table_snapshot(conn) == before


@pytest.mark.parametrize("depth", [64, 300, 5000])
def test_deeply_nested_extra_is_rejected_or_stored_never_5xx(
    http: httpx.Client, conn: psycopg.Connection[Any], http_world: World, depth: int
) -> None:
    ti_id = http_world.ti_ids[2]
    reset(conn, ti_id)
    payload = http_world.payload(2)
    payload["outlet_events"][0]["extra"] = {"deep": "PLACEHOLDER"}
    nested_text = '{"n":' * depth + '"leaf"' + "}" * depth  # json.dumps cannot nest this deep
    body = json.dumps(payload).replace('"PLACEHOLDER"', nested_text)
    assert len(body) < MAX_BODY
    before = table_snapshot(conn)
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state",
        content=body,
        headers={**auth(ti_id), "content-type": "application/json"},
    )
    assert_clean(response)
    if depth > 255:  # beyond pydantic-core's JSON recursion limit: a clean 422, nothing written
        assert response.status_code == 422, response.text
        assert table_snapshot(conn) == before
    else:
        assert response.status_code == 204, response.text
        stored = conn.execute(
            "SELECT e.extra FROM tistate_test.asset_event AS e JOIN asset AS a"
            " ON a.id = e.asset_id WHERE e.ti_id = %s AND a.name = %s",
            [ti_id, http_world.asset(2)["name"]],
        ).fetchone()
        assert (
            stored is not None
            and json.dumps(stored[0]) == '{"deep": ' + nested_text.replace(":", ": ") + "}"
        )


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/state", "extra", "outlet_events[0].extra.bad"),
        ("PATCH", "/state", "rendered_map_index", "rendered_map_index"),
        ("PUT", "/heartbeat", {"hostname": "h\u0000x", "pid": 1}, "hostname"),
        ("PATCH", "/skip-downstream", {"tasks": ["t\u0000"]}, "tasks[0]"),
    ],
)
def test_nul_characters_are_a_clean_422_with_the_field(
    http: httpx.Client,
    conn: psycopg.Connection[Any],
    http_world: World,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    ti_id = http_world.ti_ids[3]
    reset(conn, ti_id)
    if body == "extra":
        body = http_world.payload(3)
        body["outlet_events"][0]["extra"] = {"bad": "nul\u0000byte"}
    elif body == "rendered_map_index":
        body = {**http_world.payload(3), "rendered_map_index": "a\u0000b"}
    before = table_snapshot(conn)
    response = http.request(
        method, f"/execution/task-instances/{ti_id}{path}", json=body, headers=auth(ti_id)
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == field
    assert table_snapshot(conn) == before


def test_hostile_strings_round_trip_over_http(
    http: httpx.Client, conn: psycopg.Connection[Any], http_world: World
) -> None:
    ti_id = http_world.ti_ids[4]
    reset(conn, ti_id)
    value = '\'; DELETE FROM tistate_test.asset_event; -- "q" Ünïcødé 🚀 \\u0000-not-a-nul'
    payload = http_world.payload(4)
    payload["outlet_events"][0]["extra"] = {value: [value]}
    payload["rendered_map_index"] = value
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state", json=payload, headers=auth(ti_id)
    )
    assert response.status_code == 204, response.text
    row = conn.execute(
        "SELECT rendered_map_index FROM task_instance WHERE id = %s", [ti_id]
    ).fetchone()
    assert row == (value,)
    extras = [
        r[0]
        for r in conn.execute(
            "SELECT extra FROM tistate_test.asset_event WHERE ti_id = %s", [ti_id]
        )
    ]
    assert {value: [value]} in extras


# ------------------------------------------------------------------ schemathesis
# positive_data_acceptance is off: the served document is looser than what is stored, each case a
# clean 422 naming the field (reported to the HTTP/model owners, the first two tested below):
# UTC offsets beyond +-15:59 (PostgreSQL's limit), NUL characters (not storable, 422 by design),
# `pid` without int32 bounds, and `state` documented as optional on the state body although it is
# the union's discriminator. Every other check (server errors, status codes, content types,
# response schemas, headers, negative data rejected) stays on.
EXCLUDED = [positive_data_acceptance]
OFFSET_BEYOND_POSTGRES = re.compile(r'T[0-9:.]+[+-](1[6-9]|2[0-3]):[0-5][0-9]"')


def test_reschedule_end_date_decades_away_is_a_clean_422(
    http: httpx.Client, conn: psycopg.Connection[Any], http_world: World
) -> None:
    ti_id = http_world.ti_ids[5]
    reset(conn, ti_id)
    body = {
        "state": "up_for_reschedule",
        "reschedule_date": "2100-01-01T00:00:00Z",
        "end_date": "0226-03-21T23:54:48Z",
    }
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state", json=body, headers=auth(ti_id)
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == "end_date"


def test_422_shapes_are_documented(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    operation = document["paths"]["/execution/task-instances/{task_instance_id}/state"]["patch"]
    schema = json.dumps(operation["responses"]["422"])
    assert "HTTPValidationError" in schema or "anyOf" in schema or "oneOf" in schema


def test_utc_offset_beyond_postgres_range_is_a_clean_422(
    http: httpx.Client, conn: psycopg.Connection[Any], http_world: World
) -> None:
    ti_id = http_world.ti_ids[5]
    reset(conn, ti_id)
    body = {"state": "failed", "end_date": "2025-07-08T16:08:30+17:18"}
    response = http.patch(
        f"/execution/task-instances/{ti_id}/state", json=body, headers=auth(ti_id)
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "end_date"


def schemathesis_cases(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_against_served_openapi(
    server: Server, conn: psycopg.Connection[Any], http_world: World, mode: GenerationMode
) -> None:
    """Every operation of the served document, positive and negative data, all default checks."""
    schema = schemathesis_cases(server)
    ti_id = http_world.ti_ids[5]
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and "{task_instance_id}" not in operation.path:
            continue  # GET /health, /ready, /metrics take no input to corrupt
        params = (
            {"task_instance_id": str(ti_id)} if "{task_instance_id}" in operation.path else None
        )
        strategy = operation.as_strategy(mode, path_parameters=params)

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            reset(conn, ti_id)
            response = case.call_and_validate(
                base_url=server.url, headers=auth(ti_id), excluded_checks=EXCLUDED
            )
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            assert response.status_code < 500

        run()
    assert len(seen) == (7 if mode is GenerationMode.POSITIVE else 4), seen
    print(f"\n[schemathesis {mode.value}] statuses by operation: {seen}")


@pytest.fixture(autouse=True, scope="module")
def _server_log_has_no_tracebacks(server: Server) -> Iterator[None]:
    yield
    assert server.log().count('"status":500,"duration_ms"') == 0
