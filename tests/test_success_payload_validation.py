"""Every malformed success payload gives TS422 naming the offending field, and changes nothing.

One database for the module (the cases must not write, and each case compares a fingerprint of every
table and sequence of schema tistate before and after the call).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from conftest import create_database, drop_database, template_for

VALID: dict[str, Any] = {
    "state": "success",
    "end_date": "2025-01-01T00:01:30Z",
    "rendered_map_index": "eu",
    "task_outlets": [
        {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
        {"type": "AssetNameRef", "name": "orders"},
        {"type": "AssetUriRef", "uri": "s3://lake/orders"},
        {"type": "AssetAlias", "name": "daily-tables"},
    ],
    "outlet_events": [
        {
            "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"},
            "extra": {"rows": 1},
            "partition_key": None,
        },
        {
            "source_alias_name": "daily-tables",
            "dest_asset_key": {"name": "t1", "uri": "s3://tables/1"},
            "dest_asset_extra": {},
            "extra": {},
        },
    ],
}

pytestmark = pytest.mark.both_flavors


RUNNING = {
    "state": "running",
    "hostname": "h",
    "unixname": "u",
    "pid": 1,
    "start_date": "2025-01-01T00:00:00Z",
}


def with_change(path: list[str | int], value: Any, *, delete: bool = False) -> dict[str, Any]:
    """A deep copy of VALID with the value at `path` replaced (or removed)."""
    payload: Any = json.loads(json.dumps(VALID))
    node = payload
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload  # type: ignore[no-any-return]


# (payload, the field TS422's DETAIL must name)
CASES: list[tuple[str, Any, str]] = [
    ("not an object", ["success"], ""),
    ("a string", "success", ""),
    ("state missing", with_change(["state"], None, delete=True), "state"),
    ("state wrong type", with_change(["state"], True), "state"),
    ("state unknown", with_change(["state"], "finished"), "state"),
    ("end_date missing", with_change(["end_date"], None, delete=True), "end_date"),
    ("end_date null", with_change(["end_date"], None), "end_date"),
    ("end_date number", with_change(["end_date"], 1735689690), "end_date"),
    ("end_date naive", with_change(["end_date"], "2025-01-01T00:01:30"), "end_date"),
    ("end_date date only", with_change(["end_date"], "2025-01-01"), "end_date"),
    ("end_date invalid day", with_change(["end_date"], "2025-02-30T00:00:00Z"), "end_date"),
    ("end_date garbage", with_change(["end_date"], "now"), "end_date"),
    ("unknown top-level field", {**VALID, "hostname": "h"}, "hostname"),
    ("rendered_map_index number", with_change(["rendered_map_index"], 3), "rendered_map_index"),
    (
        "rendered_map_index too long",
        with_change(["rendered_map_index"], "r" * 251),
        "rendered_map_index",
    ),
    ("task_outlets object", with_change(["task_outlets"], {}), "task_outlets"),
    ("task_outlets string", with_change(["task_outlets"], "orders"), "task_outlets"),
    ("task_outlets item string", with_change(["task_outlets", 0], "orders"), "task_outlets[0]"),
    ("task_outlets item null", with_change(["task_outlets", 1], None), "task_outlets[1]"),
    (
        "outlet type missing",
        with_change(["task_outlets", 0, "type"], None, delete=True),
        "task_outlets[0].type",
    ),
    (
        "outlet type unknown",
        with_change(["task_outlets", 0, "type"], "Dataset"),
        "task_outlets[0].type",
    ),
    (
        "outlet unknown field",
        with_change(["task_outlets", 0, "extra"], {}),
        "task_outlets[0].extra",
    ),
    (
        "Asset outlet without uri",
        with_change(["task_outlets", 0, "uri"], None, delete=True),
        "task_outlets[0]",
    ),
    (
        "NameRef without name",
        with_change(["task_outlets", 1, "name"], None, delete=True),
        "task_outlets[1].name",
    ),
    ("UriRef without uri", with_change(["task_outlets", 2, "uri"], None), "task_outlets[2].uri"),
    (
        "outlet uri airflow://",
        with_change(["task_outlets", 0, "uri"], "airflow://x"),
        "task_outlets[0].uri",
    ),
    (
        "outlet uri non-ASCII",
        with_change(["task_outlets", 2, "uri"], "s3://lake/ørders"),
        "task_outlets[2].uri",
    ),
    (
        "alias outlet empty name",
        with_change(["task_outlets", 3, "name"], ""),
        "task_outlets[3].name",
    ),
    (
        "outlet name too long",
        with_change(["task_outlets", 3, "name"], "n" * 1501),
        "task_outlets[3].name",
    ),
    ("outlet_events object", with_change(["outlet_events"], {}), "outlet_events"),
    ("outlet_events item number", with_change(["outlet_events", 0], 1), "outlet_events[0]"),
    (
        "event without dest_asset_key",
        with_change(["outlet_events", 0, "dest_asset_key"], None, delete=True),
        "outlet_events[0].dest_asset_key",
    ),
    (
        "event key without uri",
        with_change(["outlet_events", 0, "dest_asset_key", "uri"], None, delete=True),
        "outlet_events[0].dest_asset_key.uri",
    ),
    (
        "event key name number",
        with_change(["outlet_events", 0, "dest_asset_key", "name"], 5),
        "outlet_events[0].dest_asset_key.name",
    ),
    (
        "event key unknown field",
        with_change(["outlet_events", 0, "dest_asset_key", "group"], "g"),
        "outlet_events[0].dest_asset_key.group",
    ),
    (
        "event uri airflow://",
        with_change(["outlet_events", 0, "dest_asset_key", "uri"], "Airflow://x"),
        "outlet_events[0].dest_asset_key.uri",
    ),
    (
        "event uri non-ASCII",
        with_change(["outlet_events", 1, "dest_asset_key", "uri"], "s3://tables/ü"),
        "outlet_events[1].dest_asset_key.uri",
    ),
    ("event extra list", with_change(["outlet_events", 0, "extra"], [1]), "outlet_events[0].extra"),
    ("event unknown field", with_change(["outlet_events", 0, "ts"], 1), "outlet_events[0].ts"),
    (
        "partition key empty",
        with_change(["outlet_events", 0, "partition_key"], ""),
        "outlet_events[0].partition_key",
    ),
    (
        "partition key whitespace",
        with_change(["outlet_events", 0, "partition_key"], " \t\n "),
        "outlet_events[0].partition_key",
    ),
    (
        "partition key vertical tab",
        with_change(["outlet_events", 0, "partition_key"], "\x0b\x1c "),
        "outlet_events[0].partition_key",
    ),
    (
        "partition key too long",
        with_change(["outlet_events", 0, "partition_key"], "k" * 251),
        "outlet_events[0].partition_key",
    ),
    (
        "partition key number",
        with_change(["outlet_events", 0, "partition_key"], 20250101),
        "outlet_events[0].partition_key",
    ),
    (
        "alias event with partition key",
        with_change(["outlet_events", 1, "partition_key"], "p"),
        "outlet_events[1].partition_key",
    ),
    (
        "alias name empty",
        with_change(["outlet_events", 1, "source_alias_name"], ""),
        "outlet_events[1].source_alias_name",
    ),
    (
        "alias name number",
        with_change(["outlet_events", 1, "source_alias_name"], 1),
        "outlet_events[1].source_alias_name",
    ),
    (
        "dest_asset_extra list",
        with_change(["outlet_events", 1, "dest_asset_extra"], []),
        "outlet_events[1].dest_asset_extra",
    ),
]


@pytest.fixture(scope="module")
def module_db(flavor: str) -> Iterator[str]:
    name = f"tistate_v_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name, template=template_for(flavor))
    yield dsn
    drop_database(name)


@pytest.fixture(scope="module")
def world(module_db: str) -> Iterator[tuple[psycopg.Connection[Any], uuid.UUID]]:
    """A running task instance whose outlets have consumers, and a connection to call it."""
    with psycopg.connect(module_db, autocommit=True) as conn:
        for dag in (
            {
                "dag_id": "c_asset",
                "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]},
            },
            {"dag_id": "c_alias", "schedule": {"aliases": ["daily-tables"]}},
            {
                "dag_id": "producer",
                "owners": "team",
                "tasks": [{"task_id": "load", "outlets": VALID["task_outlets"]}],
            },
        ):
            conn.execute("SELECT tistate_test.define_dag(p_dag => %s)", [Jsonb(dag)])
        row = conn.execute(
            "SELECT ti_id FROM tistate_test.create_dag_run("
            "p_dag_id => 'producer', p_run_id => 'r1')"
        ).fetchone()
        assert row is not None
        ti_id: uuid.UUID = row[0]
        conn.execute(
            "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)", [ti_id, Jsonb(RUNNING)]
        )
        yield conn, ti_id


def fingerprint(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Row count and md5 of every table, and the state of every sequence, in schema tistate."""
    result: dict[str, Any] = {}
    relations = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class AS c"
        " WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p', 'S')"
        " ORDER BY 1"
    ).fetchall()
    for name, kind in relations:
        if kind == "S":
            query = sql.SQL("SELECT last_value, is_called FROM tistate.{}").format(
                sql.Identifier(name)
            )
        else:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                " FROM tistate.{} AS t"
            ).format(sql.Identifier(name))
        result[name] = conn.execute(query).fetchone()
    return result


def assert_rejected(
    world: tuple[psycopg.Connection[Any], uuid.UUID], payload: Any, field: str
) -> None:
    conn, ti_id = world
    before = fingerprint(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "SELECT * FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)",
            [ti_id, Jsonb(payload)],
        )
    assert caught.value.diag.sqlstate == "TS422", caught.value
    detail = json.loads(caught.value.diag.message_detail or "{}")
    assert detail["reason"] == "invalid_payload"
    assert detail["field"] == field, detail
    assert fingerprint(conn) == before, "a rejected payload changed a table"


def test_valid_payload_is_accepted(conn: psycopg.Connection[Any]) -> None:
    """The base of every case is valid: in a database of its own it applies."""
    consumer = {
        "dag_id": "p",
        "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]},
    }
    conn.execute("SELECT tistate_test.define_dag(p_dag => %s)", [Jsonb(consumer)])
    conn.execute(
        "SELECT tistate_test.define_dag(p_dag => %s)",
        [Jsonb({"dag_id": "q", "tasks": [{"task_id": "t", "outlets": VALID["task_outlets"]}]})],
    )
    row = conn.execute(
        "SELECT ti_id FROM tistate_test.create_dag_run(p_dag_id => 'q', p_run_id => 'r')"
    ).fetchone()
    assert row is not None
    conn.execute("SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)", [row[0], Jsonb(RUNNING)])
    result = conn.execute(
        "SELECT applied, cardinality(asset_event_ids), queued_dag_ids"
        " FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)",
        [row[0], Jsonb(VALID)],
    ).fetchone()
    # orders once (Asset, NameRef and UriRef deduplicated) and t1 through the alias
    assert result == (True, 2, ["p"])


@pytest.mark.parametrize(("payload", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_payload_is_rejected(
    world: tuple[psycopg.Connection[Any], uuid.UUID], payload: Any, field: str
) -> None:
    assert_rejected(world, payload, field)


def test_task_instance_untouched(world: tuple[psycopg.Connection[Any], uuid.UUID]) -> None:
    conn, ti_id = world
    row = conn.execute(
        "SELECT state, end_date FROM task_instance WHERE id = %s", [ti_id]
    ).fetchone()
    assert row == ("running", None)


# Hypothesis: a valid payload with one random corruption still names the corrupted field.
WRONG_TYPES = st.one_of(
    st.integers(), st.booleans(), st.lists(st.integers(), max_size=2), st.just({"x": 1})
)
BAD_PARTITION_KEYS = st.one_of(
    st.text(alphabet=" \t\n\r\f\v\x1c\x1d\x1e\x1f", max_size=5),
    st.text(alphabet="abc", min_size=251, max_size=300),
    st.integers(),
)
NO_NUL = st.characters(blacklist_characters="\x00")  # jsonb itself refuses \u0000
BAD_URIS = st.one_of(
    st.text(NO_NUL, min_size=1, max_size=20).map(lambda s: "airflow://" + s),
    st.text(NO_NUL, min_size=1, max_size=10).map(lambda s: "s3://ä/" + s),
    st.just(""),
)
STRING_FIELDS = st.sampled_from(
    [
        (["task_outlets", 1, "name"], "task_outlets[1].name"),
        (["outlet_events", 0, "dest_asset_key", "name"], "outlet_events[0].dest_asset_key.name"),
        (["outlet_events", 1, "source_alias_name"], "outlet_events[1].source_alias_name"),
    ]
)
URI_FIELDS = st.sampled_from(
    [
        (["task_outlets", 0, "uri"], "task_outlets[0].uri"),
        (["task_outlets", 2, "uri"], "task_outlets[2].uri"),
        (["outlet_events", 0, "dest_asset_key", "uri"], "outlet_events[0].dest_asset_key.uri"),
        (["outlet_events", 1, "dest_asset_key", "uri"], "outlet_events[1].dest_asset_key.uri"),
    ]
)
UNKNOWN_KEY_OBJECTS = st.sampled_from(
    [
        ([], ""),
        (["task_outlets", 0], "task_outlets[0]"),
        (["outlet_events", 0], "outlet_events[0]"),
        (["outlet_events", 1], "outlet_events[1]"),
        (["outlet_events", 0, "dest_asset_key"], "outlet_events[0].dest_asset_key"),
    ]
)
KNOWN_KEYS = {
    "state",
    "end_date",
    "task_outlets",
    "outlet_events",
    "rendered_map_index",
    "type",
    "name",
    "uri",
    "dest_asset_key",
    "extra",
    "partition_key",
    "source_alias_name",
    "dest_asset_extra",
}


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[Any, str]:
    kind = draw(st.sampled_from(["type", "partition", "uri", "unknown", "end_date"]))
    if kind == "type":
        path, field = draw(STRING_FIELDS)
        return with_change(path, draw(WRONG_TYPES)), field
    if kind == "partition":
        return with_change(
            ["outlet_events", 0, "partition_key"], draw(BAD_PARTITION_KEYS)
        ), "outlet_events[0].partition_key"
    if kind == "uri":
        path, field = draw(URI_FIELDS)
        return with_change(path, draw(BAD_URIS)), field
    if kind == "unknown":
        path, prefix = draw(UNKNOWN_KEY_OBJECTS)
        key = draw(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
                lambda k: k not in KNOWN_KEYS
            )
        )
        payload = with_change([*path, key], draw(WRONG_TYPES))
        return payload, f"{prefix}.{key}" if prefix else key
    naive = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 1, 1)))
    return with_change(["end_date"], naive.isoformat()), "end_date"


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=corrupted())
def test_property_corrupted_payload_is_rejected(
    world: tuple[psycopg.Connection[Any], uuid.UUID], case: tuple[Any, str]
) -> None:
    payload, field = case
    assert_rejected(world, payload, field)
