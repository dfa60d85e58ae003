"""Bad input, straight into the SQL functions: arbitrary JSON never reaches an unexpected SQLSTATE.

Hypothesis feeds arbitrary JSON documents, and valid payloads with arbitrary values planted at
arbitrary places, to tistate.ti_update_state, ti_run and define_dag. Every answer is either a
success (then the document must be valid for Airflow's models too) or a TS4xx error; TS422 always
names the offending field; an error writes nothing (every row of every tistate table compared before
and after). Names and extras full of quotes, SQL, NUL bytes and non-ASCII are stored verbatim or
rejected cleanly.

The HTTP side of the same properties is in test_bad_input_http.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from conftest import create_database, drop_database, template_for
from faultkit import END_DATE, RUNNING, World, table_snapshot
from tistate import InvalidPayloadError, _db, models
from tistate.errors import from_psycopg

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON as PostgreSQL's jsonb can hold it: no NaN/Infinity, no NUL in strings (tested separately).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["success", "running", "queued", "up_for_retry", END_DATE, "Asset", ""])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            TEXT | st.sampled_from(["state", "end_date", "task_outlets", "outlet_events", "name"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=15,
)

VALID_STATE_PAYLOADS: list[dict[str, Any]] = [
    {"state": "failed", "end_date": END_DATE},
    {"state": "up_for_retry", "end_date": END_DATE, "retry_reason": "x"},
    {"state": "up_for_reschedule", "end_date": END_DATE, "reschedule_date": END_DATE},
    {"state": "deferred", "classpath": "a.B", "next_method": "go", "trigger_kwargs": {"a": 1}},
    {"state": "skipped", "end_date": END_DATE, "rendered_map_index": "x"},
]


@pytest.fixture(scope="module")
def bad_worlds() -> Iterator[dict[str, World]]:
    """One world per flavor for the whole module, made on first use (hypothesis runs many
    examples in it). Keyed by flavor rather than scoped by it: pytest would hand a module-cached
    value of one flavor to a test of the other."""
    made: dict[str, World] = {}
    yield made
    for world in made.values():
        drop_database(str(conninfo_to_dict(world.dsn)["dbname"]))


@pytest.fixture
def bad_world(flavor: str, bad_worlds: dict[str, World]) -> World:
    if flavor not in bad_worlds:
        name = f"tistate_bad_{flavor}_{uuid4().hex[:8]}"
        dsn = create_database(name, template=template_for(flavor))
        bad_worlds[flavor] = World(dsn, prefix="bad", tasks=6, setup_schema="tistate_test").create()
    return bad_worlds[flavor]


@pytest.fixture
def bad_conn(bad_world: World) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(bad_world.dsn, autocommit=True) as conn:
        yield conn


def valid_success(world: World) -> dict[str, Any]:
    return world.payload(0)


def plant(document: Any, path: list[Any], value: Any) -> Any:
    """A copy of `document` with `value` at `path` (the last key is added if missing)."""
    copy = json.loads(json.dumps(document))
    if not path:
        return value
    node = copy
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, list):
        node[path[-1] % len(node)] = value
    else:
        node[path[-1]] = value
    return copy


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[list[Any]]:
    """Every path into `document`, plus one unknown key per object."""
    out: list[list[Any]] = [list(prefix)]
    if isinstance(document, dict):
        out.append([*prefix, "unexpected_key"])
        for key, value in document.items():
            out += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            out += paths(value, (*prefix, i))
    return out


def call_sql(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> Any:
    """Run one public function call; on error assert the clean-rejection properties."""
    before = table_snapshot(conn)
    try:
        return conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    except psycopg.Error as exc:
        error = from_psycopg(exc)
        sqlstate = exc.diag.sqlstate or ""
        assert sqlstate.startswith("TS4"), f"unexpected SQLSTATE {sqlstate}: {exc}"
        if sqlstate == "TS422":
            assert isinstance(error, InvalidPayloadError)
            assert error.detail.get("reason") == "invalid_payload", error.detail
            assert isinstance(error.field, str), f"no field in {error.detail}"
        assert table_snapshot(conn) == before, "an error left a partial write"
        return error


STATE_CALL = "SELECT * FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)"
RUN_CALL = "SELECT tistate.ti_run(p_ti_id => %s, p_payload => %s)"
DEFINE_CALL = "SELECT tistate.define_dag(p_dag => %s)"


def fresh_running(conn: psycopg.Connection[Any], world: World, k: int) -> UUID:
    """Task k back to running on its current id, for the next example."""
    ti_id: UUID = conn.execute(
        "SELECT id FROM task_instance WHERE dag_id = %s AND task_id = %s",
        [world.dag_id, f"t{k:03d}"],
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "SELECT * FROM tistate.ti_mark(p_ti_id => %s, p_state => 'running', p_reason => 'reset')",
        [ti_id],
    )
    return ti_id


@st.composite
def planted(draw: st.DrawFn, documents: list[dict[str, Any]]) -> Any:
    document = draw(st.sampled_from(documents))
    path = draw(st.sampled_from(paths(document)))
    return plant(document, path, draw(JSON))


def strip_nulls(document: Any) -> Any:
    """The document with JSON null object members removed (the SQL reads null as "not given")."""
    if isinstance(document, dict):
        return {k: strip_nulls(v) for k, v in document.items() if v is not None}
    if isinstance(document, list):
        return [strip_nulls(v) for v in document]
    return document


def is_valid_state_update(document: Any) -> bool:
    """Whether the library's (Airflow-shaped) model accepts the document, nulls read as absent."""
    try:
        models.STATE_UPDATE_ADAPTER.validate_python(strip_nulls(document))
    except ValidationError:
        return False
    return True


@EXAMPLES
@given(document=JSON | planted([*VALID_STATE_PAYLOADS, {"state": "success", "end_date": END_DATE}]))
@pytest.mark.both_flavors
def test_ti_update_state_arbitrary_json(
    bad_conn: psycopg.Connection[Any], bad_world: World, document: Any
) -> None:
    ti_id = fresh_running(bad_conn, bad_world, 1)
    result = call_sql(bad_conn, STATE_CALL, [ti_id, Jsonb(document)])
    if not isinstance(result, Exception):
        # Accepted: then Airflow's model accepts it too (the SQL is not laxer than the API).
        assert is_valid_state_update(document), f"SQL accepted an invalid payload: {document}"


@EXAMPLES
@given(data=st.data())
@pytest.mark.both_flavors
def test_ti_update_state_success_payload_with_planted_values(
    bad_conn: psycopg.Connection[Any], bad_world: World, data: st.DataObject
) -> None:
    document = data.draw(planted([valid_success(bad_world)]))
    ti_id = fresh_running(bad_conn, bad_world, 0)
    result = call_sql(bad_conn, STATE_CALL, [ti_id, Jsonb(document)])
    if not isinstance(result, Exception):
        assert is_valid_state_update(document), f"SQL accepted an invalid payload: {document}"
        # Undo the events so the next example starts from the same world.
        bad_conn.execute(
            (
                "DELETE FROM asset_event WHERE id IN"
                " (SELECT event_id FROM tistate.asset_event_producer WHERE ti_id = %s)"
            ),
            [ti_id],
        )
        bad_conn.execute("DELETE FROM asset_dag_run_queue")


@EXAMPLES
@given(data=st.data())
@pytest.mark.both_flavors
def test_ti_run_arbitrary_json(
    bad_conn: psycopg.Connection[Any], bad_world: World, data: st.DataObject
) -> None:
    document = data.draw(JSON | planted([RUNNING]))
    ti_id = fresh_running(bad_conn, bad_world, 2)
    bad_conn.execute(
        "SELECT * FROM tistate.ti_mark(p_ti_id => %s, p_state => 'queued', p_reason => 'reset')",
        [ti_id],
    )
    result = call_sql(bad_conn, RUN_CALL, [ti_id, Jsonb(document)])
    if not isinstance(result, Exception):
        models.TIEnterRunningPayload.model_validate(strip_nulls(document))


DAG = {
    "dag_id": "bad_dag",
    "owners": "o",
    "is_paused": False,
    "fail_fast": False,
    "schedule": {
        "assets": [{"name": "bad-x", "uri": "s3://bad/x"}],
        "aliases": ["bad-al"],
        "name_refs": ["bad-x"],
        "uri_refs": ["s3://bad/x"],
    },
    "tasks": [
        {
            "task_id": "t",
            "max_tries": 2,
            "pool": "p",
            "outlets": [
                {"type": "Asset", "name": "bad-x", "uri": "s3://bad/x"},
                {"type": "AssetAlias", "name": "bad-al"},
            ],
        }
    ],
}


@EXAMPLES
@given(data=st.data())
def test_define_dag_arbitrary_json(bad_conn: psycopg.Connection[Any], data: st.DataObject) -> None:
    document = data.draw(JSON | planted([DAG]))
    result = call_sql(bad_conn, DEFINE_CALL, [Jsonb(document)])
    if not isinstance(result, Exception):
        # The SQL is deliberately lax about JSON null for optional lists and values (null = not
        # given); anything it accepts is an object with a string dag_id.
        assert isinstance(document, dict) and isinstance(document.get("dag_id"), str)


# ------------------------------------------------------------------ hostile strings
HOSTILE = [
    'O\'Brien "quoted" `tick`',
    "'; DROP TABLE task_instance; --",
    "$$ SELECT 1 $$",
    "\\x00 \\u0000 backslashes \\\\",
    "Ünïcødé ✓ 漢字 🚀 \u200b RTL \u202e",
    "%s %(x)s {0} ${HOME}",
    "a" * 1400,
]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_names_and_extras_are_stored_verbatim(
    bad_conn: psycopg.Connection[Any], bad_world: World, index: int
) -> None:
    value = HOSTILE[index]
    uri = f"s3://hostile/{index}"
    ti_id = fresh_running(bad_conn, bad_world, 3)
    asset_name = f"bad-a3{value}"[:1500]
    bad_conn.execute(
        "SELECT tistate.define_dag(p_dag => %s)",
        [
            Jsonb(
                {
                    "dag_id": bad_world.dag_id,
                    "tasks": [
                        {
                            "task_id": "t003",
                            "outlets": [{"type": "Asset", "name": asset_name, "uri": uri}],
                        }
                    ],
                }
            )
        ],
    )
    extra = {value: value, "nested": [value, {"k": value}]}
    payload = {
        "state": "success",
        "end_date": END_DATE,
        "rendered_map_index": value[:250],
        "task_outlets": [{"type": "Asset", "name": asset_name, "uri": uri}],
        "outlet_events": [{"dest_asset_key": {"name": asset_name, "uri": uri}, "extra": extra}],
    }
    result = call_sql(bad_conn, STATE_CALL, [ti_id, Jsonb(payload)])
    assert not isinstance(result, Exception), result
    row = bad_conn.execute(
        "SELECT a.name, e.extra FROM tistate_test.asset_event AS e"
        " JOIN asset AS a ON a.id = e.asset_id WHERE e.ti_id = %s",
        [ti_id],
    ).fetchall()
    assert row == [(asset_name, extra)]
    bad_conn.execute(
        (
            "DELETE FROM asset_event WHERE id IN"
            " (SELECT event_id FROM tistate.asset_event_producer WHERE ti_id = %s)"
        ),
        [ti_id],
    )
    # The tables are all still there (the SQL-looking value was data, not code).
    assert bad_conn.execute("SELECT count(*) FROM task_instance").fetchone() != (0,)


def test_nul_escape_is_rejected_cleanly_by_sql(
    bad_conn: psycopg.Connection[Any], bad_world: World
) -> None:
    """jsonb cannot store \\u0000: PostgreSQL refuses the document before the function runs."""
    ti_id = fresh_running(bad_conn, bad_world, 4)
    payload = dict(bad_world.payload(4))
    payload["outlet_events"][0]["extra"] = {"bad": "nul\u0000byte"}
    before = table_snapshot(bad_conn)
    with pytest.raises(psycopg.Error) as caught:
        bad_conn.execute(STATE_CALL, [ti_id, Jsonb(payload)])
    assert caught.value.diag.sqlstate == "22P05"  # untranslatable_character, not a crash
    assert table_snapshot(bad_conn) == before


def test_library_rejects_nul_with_the_field(bad_world: World) -> None:
    """Through the library the same payload is TS422 naming the field, never a 500 class."""
    from tistate import Client

    payload = bad_world.payload(4)
    payload["outlet_events"][0]["extra"] = {"bad": "nul\u0000byte"}
    with Client(bad_world.dsn) as client, pytest.raises(InvalidPayloadError) as caught:
        client.ti_update_state(fresh_running_id(bad_world, 4), payload)
    assert caught.value.http_status == 422
    assert caught.value.field == "outlet_events[0].extra.bad"


def fresh_running_id(world: World, k: int) -> UUID:
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        return fresh_running(conn, world, k)


# ------------------------------------------------------------------ what PostgreSQL cannot store
# One rule for every parameter the library sends (models.json_text / refuse_unstorable): checked
# here on the calls as built, before any connection is taken.
def _refused(build: Any) -> tuple[str | None, str]:
    with pytest.raises(InvalidPayloadError) as caught:
        build()
    assert caught.value.sqlstate == "TS422"
    return caught.value.field, caught.value.detail["message"]


UNSTORABLE = [
    ("a\u0000b", "NUL characters (\\u0000) cannot be stored"),
    ("a\ud800b", "not valid Unicode (a lone surrogate) and cannot be stored"),
]


@pytest.mark.parametrize(("bad", "message"), UNSTORABLE)
def test_every_parameter_refuses_what_postgres_cannot_store(bad: str, message: str) -> None:
    ti = uuid4()
    success = {"state": "success", "end_date": END_DATE}
    event = {"dest_asset_key": {"name": "n", "uri": "u"}, "extra": {"k": [1, bad]}}
    cases = [
        (
            lambda: _db.ti_update_state(ti, {**success, "rendered_map_index": bad}, None, None),
            "rendered_map_index",
        ),
        (
            lambda: _db.ti_update_state(ti, {**success, "outlet_events": [event]}, None, None),
            "outlet_events[0].extra.k[1]",
        ),
        (lambda: _db.ti_run(ti, {**RUNNING, "hostname": bad}, None, None), "hostname"),
        (lambda: _db.ti_heartbeat(ti, bad, 1, None, None), "hostname"),
        (lambda: _db.ti_skip_downstream(ti, ["t", bad], None), "tasks[1]"),
        (lambda: _db.define_dag({"dag_id": "d", "tasks": [{"task_id": bad}]}), "tasks[0].task_id"),
        (lambda: _db.create_dag_run(bad, "r", None, None, None, None), "dag_id"),
        (lambda: _db.create_dag_run("d", "r", None, {bad: 1}, None, None), f"{bad}"),
        (lambda: _db.emit_asset_event("n", "u", {"x": {"y": bad}}, None, None), "x.y"),
        (lambda: _db.ti_mark(ti, "failed", bad, None, None), "reason"),
    ]
    for build, field in cases:
        assert _refused(build) == (field, message)


def test_the_text_sent_is_ascii_and_holds_what_only_looks_like_a_nul() -> None:
    looks_like = "\\u0000 is not a NUL, Ünïcødé 🚀 is text"
    call = _db.ti_update_state(
        uuid4(),
        {"state": "success", "end_date": END_DATE, "rendered_map_index": looks_like},
        None,
        None,
    )
    text = call.params["payload"].obj
    assert isinstance(text, str) and text.isascii()  # right in any client encoding
    sent = json.loads(text)
    assert (sent["state"], sent["rendered_map_index"]) == ("success", looks_like)
