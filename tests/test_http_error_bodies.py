"""Error bodies for a client's mistakes, against a real server (issue 17, findings 6 and 8).

- `NaN`, `Infinity`, `-Infinity` and `1e309` (which overflows to infinity) in any typed field of
  any endpoint answer 422 with a body that is valid JSON (before: a 500, because the 422 body
  echoed the non-finite input and JSON encoding failed).
- Non-finite numbers in `extra`, `trigger_kwargs`, `next_kwargs` and `retry_delay_seconds`, a
  negative `retry_delay_seconds` and a `trigger_timeout` in the past are refused (422) by the
  models, before any SQL (before: some were stored, some were a 500 from PostgreSQL's jsonb).
- A database error that is not one of tistate's own codes answers without PostgreSQL's message
  or DETAIL (constraint and relation names, the failing row): 422 for a value the database
  refused (SQLSTATE class 22), else 500; the log keeps the details for the operator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from http_support import NOW, Dags, Server, auth, running_payload, running_server

END = NOW.isoformat()
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"]
ASSET = '{"name": "orders", "uri": "s3://lake/orders"}'

#: (endpoint, method, body template): {X} is replaced by a non-finite literal, in a typed field
TYPED_FIELDS = [
    ("heartbeat", "PUT", '{"hostname": "worker-1", "pid": {X}}'),
    ("heartbeat", "PUT", '{"hostname": {X}, "pid": 100}'),
    (
        "run",
        "PATCH",
        '{"state": "running", "hostname": "h", "unixname": "u", "pid": {X}, '
        f'"start_date": "{END}"}}',
    ),
    (
        "run",
        "PATCH",
        '{"state": "running", "hostname": "h", "unixname": "u", "pid": 1, "start_date": {X}}',
    ),
    ("state", "PATCH", '{"state": "failed", "end_date": {X}}'),
    (
        "state",
        "PATCH",
        f'{{"state": "up_for_retry", "end_date": "{END}", "retry_delay_seconds": {{X}}}}',
    ),
    (
        "state",
        "PATCH",
        f'{{"state": "up_for_reschedule", "end_date": "{END}", "reschedule_date": {{X}}}}',
    ),
    (
        "state",
        "PATCH",
        '{"state": "deferred", "classpath": "c", "next_method": "m", "trigger_timeout": {X}}',
    ),
    (
        "state",
        "PATCH",
        f'{{"state": "success", "end_date": "{END}", "outlet_events": '
        f'[{{"dest_asset_key": {ASSET}, "extra": {{"rows": {{X}}}}}}]}}',
    ),
    (
        "state",
        "PATCH",
        f'{{"state": "success", "end_date": "{END}", "outlet_events": '
        f'[{{"dest_asset_key": {ASSET}, "extra": {{"nested": [1, {{"x": {{X}}}}]}}}}]}}',
    ),
    (
        "state",
        "PATCH",
        f'{{"state": "success", "end_date": "{END}", "outlet_events": '
        f'[{{"source_alias_name": "a", "dest_asset_key": {ASSET}, "dest_asset_extra": '
        '{"v": {X}}}]}',
    ),
    (
        "state",
        "PATCH",
        '{"state": "deferred", "classpath": "c", "next_method": "m", "trigger_kwargs": {"t": {X}}}',
    ),
    (
        "state",
        "PATCH",
        '{"state": "deferred", "classpath": "c", "next_method": "m", "next_kwargs": {"t": [{X}]}}',
    ),
    ("state", "PATCH", f'{{"state": "success", "end_date": "{END}", "rendered_map_index": {{X}}}}'),
    ("skip-downstream", "PATCH", '{"tasks": [["t1", {X}]]}'),
    ("skip-downstream", "PATCH", '{"tasks": [{X}]}'),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from conftest import create_database, drop_database, template_for

    name = "tistate_errbodies"
    dsn = create_database(name, template=template_for("standalone"))
    log = tmp_path_factory.mktemp("errbodies") / "server.log"
    try:
        with running_server(dsn, log, pool_size=2) as srv:
            yield srv
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def dags(server: Server) -> Dags:
    return Dags(server.env["TISTATE_DATABASE_URL"])


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in a response body")

    return json.loads(text, parse_constant=refuse)


def _send(http: httpx.Client, ti: UUID, endpoint: str, method: str, body: str) -> httpx.Response:
    return http.request(
        method,
        f"/execution/task-instances/{ti}/{endpoint}",
        content=body.encode(),
        headers={**auth(ti), "content-type": "application/json"},
    )


@pytest.mark.parametrize("literal", NON_FINITE)
def test_non_finite_numbers_in_any_typed_field_are_a_422_that_encodes(
    http: httpx.Client, dags: Dags, literal: str
) -> None:
    ti = dags.running()
    for endpoint, method, template in TYPED_FIELDS:
        body = template.replace("{X}", literal)
        json.loads(body)  # the template is JSON (Python's parser reads the non-finite literals)
        response = _send(http, ti, endpoint, method, body)
        assert response.status_code == 422, (body, response.status_code, response.text)
        detail = _strict_json(response.text)["detail"]
        assert isinstance(detail, list) and detail[0]["loc"][0] == "body", detail
    assert dags.state(ti) == "running"  # nothing was written


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "up_for_retry", "end_date": END, "retry_delay_seconds": -1}, "retry_delay"),
        ({"state": "up_for_retry", "end_date": END, "retry_delay_seconds": -0.001}, "retry_delay"),
        (
            {"state": "deferred", "classpath": "c", "next_method": "m", "trigger_timeout": -60},
            "trigger_timeout",
        ),
        (
            {"state": "deferred", "classpath": "c", "next_method": "m", "trigger_timeout": "-PT1S"},
            "trigger_timeout",
        ),
    ],
)
def test_negative_retry_delay_and_a_trigger_timeout_in_the_past_are_422(
    http: httpx.Client, dags: Dags, body: dict[str, Any], field: str
) -> None:
    ti = dags.running()
    response = _send(http, ti, "state", "PATCH", json.dumps(body))
    assert response.status_code == 422, response.text
    locs = [".".join(map(str, error["loc"])) for error in response.json()["detail"]]
    assert any(field in loc for loc in locs), locs
    assert dags.state(ti) == "running"


def test_a_deferral_with_a_trigger_timeout_of_zero_or_more_is_accepted(
    http: httpx.Client, dags: Dags
) -> None:
    ti = dags.running()
    body = {"state": "deferred", "classpath": "c", "next_method": "m", "trigger_timeout": 0}
    assert _send(http, ti, "state", "PATCH", json.dumps(body)).status_code == 204


# ---------------------------------------------------------------------------------- internals

INTERNALS = ("leak_", "task_instance", "Failing row", "constraint", "character varying", "Key (")


def test_database_errors_answer_without_postgres_internals(
    http: httpx.Client, dags: Dags, server: Server
) -> None:
    """An operator's CHECK constraint (23514) and a narrowed column (22001) make the SQL fail
    with errors naming the constraint, the relation and the failing row."""
    dsn = server.env["TISTATE_DATABASE_URL"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE tistate.task_instance ADD CONSTRAINT leak_check "
            "CHECK (hostname IS DISTINCT FROM 'leak-host')"
        )
        conn.execute("ALTER TABLE tistate.task_instance ALTER COLUMN unixname TYPE varchar(8)")
    try:
        refused_row = _send(
            http, ti := dags.queued(), "run", "PATCH", json.dumps(running_payload("leak-host"))
        )
        long_value = {**running_payload(), "unixname": "u" * 20}
        refused_value = _send(http, dags.queued(), "run", "PATCH", json.dumps(long_value))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE tistate.task_instance DROP CONSTRAINT leak_check")
    assert refused_row.status_code == 500, refused_row.text
    assert refused_row.json()["detail"] == {
        "reason": "database_error",
        "message": "internal database error",
        "sqlstate": "23514",
    }
    assert refused_value.status_code == 422, refused_value.text
    assert refused_value.json()["detail"]["sqlstate"] == "22001"
    for response in (refused_row, refused_value):
        assert not any(word in response.text for word in INTERNALS), response.text
    assert "leak_check" in server.log()  # the operator still sees what happened
    assert dags.state(ti) == "queued"


def test_retryable_errors_carry_no_postgres_detail() -> None:
    """A deadlock's DETAIL names processes and transactions: the body has the reason only."""
    from tistate.errors import DeadlockError
    from tistate.http.problems import error_status_and_detail

    error = DeadlockError(
        "deadlock detected",
        sqlstate="40P01",
        detail={"text": "Process 12 waits for ShareLock on transaction 34; blocked by process 56."},
    )
    status, detail = error_status_and_detail(error)
    assert status == 503
    assert detail == {
        "reason": "deadlock",
        "message": "Deadlock detected (40P01).",
        "sqlstate": "40P01",
    }


def test_library_refuses_non_finite_extra_before_any_sql() -> None:
    from pydantic import ValidationError

    from tistate.models import STATE_UPDATE_ADAPTER

    payload = {
        "state": "success",
        "end_date": END,
        "outlet_events": [
            {"dest_asset_key": {"name": "a", "uri": "b"}, "extra": {"x": float("nan")}}
        ],
    }
    with pytest.raises(ValidationError, match="finite"):
        STATE_UPDATE_ADAPTER.validate_python(payload)


def test_a_huge_invalid_list_is_one_error_not_millions(http: httpx.Client, dags: Dags) -> None:
    """A 1 MiB skip-downstream body of invalid items: FailFast stops at the first one (before:
    one error per item, ~500 bytes and microseconds each, all echoed back)."""
    ti = dags.running()
    body = '{"tasks": [' + ",".join(["{}"] * 350_000) + "]}"
    response = _send(http, ti, "skip-downstream", "PATCH", body)
    assert response.status_code == 422
    assert len(response.json()["detail"]) <= 2
    assert len(response.content) < 2048
