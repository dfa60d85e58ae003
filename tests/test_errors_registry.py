"""The error registry is the single map SQLSTATE -> exception; these tests keep it complete.

Every TSxxx code the migrations raise must be registered, and every registered TS code must be
raised somewhere (or be listed in RESERVED_CODES with its reason). Each registered SQLSTATE is then
raised for real in PostgreSQL and must come back as its class, with DETAIL parsed and HINT kept.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tistate import errors, migrate

TS_LITERAL = re.compile(r"'(TS\d{3})'")


def _raised_codes() -> set[str]:
    codes: set[str] = set()
    for path in migrate.discover():
        codes |= set(TS_LITERAL.findall(path.read()))
    return codes


def test_every_code_raised_in_sql_is_registered() -> None:
    raised = _raised_codes()
    assert raised, "the migrations raise no TS code at all: the pattern is broken"
    assert raised <= set(errors.REGISTRY), raised - set(errors.REGISTRY)


def test_every_registered_ts_code_is_raised_or_reserved() -> None:
    registered = {code for code in errors.REGISTRY if code.startswith("TS")}
    raised = _raised_codes()
    unused = registered - raised - set(errors.RESERVED_CODES)
    assert not unused, f"registered but never raised: {sorted(unused)}"
    # A reserved code that the SQL starts raising should leave the reserved list.
    assert not (set(errors.RESERVED_CODES) & raised)


def test_classes_carry_http_status_and_exit_code() -> None:
    expected = {
        "TS404": (errors.NotFoundError, 404),
        "TS409": (errors.InvalidStateError, 409),
        "TS410": (errors.GoneError, 410),
        "TS422": (errors.InvalidPayloadError, 422),
        "TS403": (errors.ForbiddenError, 403),
        "40001": (errors.SerializationFailureError, 503),
        "40P01": (errors.DeadlockError, 503),
        "55P03": (errors.LockTimeoutError, 503),
        "57014": (errors.StatementTimeoutError, 503),
        "42883": (errors.SchemaOutdatedError, 503),
        "42P01": (errors.SchemaOutdatedError, 503),
        "3F000": (errors.SchemaOutdatedError, 503),
    }
    for code, (cls, status) in expected.items():
        assert errors.REGISTRY[code] is cls
        assert cls.http_status == status
    assert errors.error_class_for("08006") is errors.ConnectionLostError
    assert errors.error_class_for("22012") is errors.DatabaseError
    assert errors.error_class_for(None) is errors.DatabaseError
    retryable = [c for c in set(errors.REGISTRY.values()) if c.retryable]
    assert all(issubclass(c, errors.RetryableError) and c.exit_code == 75 for c in retryable)
    exit_codes = {
        c.exit_code
        for c in set(errors.REGISTRY.values())
        if not issubclass(c, errors.RetryableError)
    }
    # Distinct exit codes for the distinct non-retryable classes, none of them 0 or 2 (usage).
    assert len(exit_codes) == len(
        {c for c in errors.REGISTRY.values() if not issubclass(c, errors.RetryableError)}
    )
    assert not exit_codes & {0, 2}


@pytest.mark.parametrize(
    "sqlstate", [*errors.REGISTRY, "08006", "22012"], ids=lambda code: str(code)
)
def test_raised_sqlstate_translates_to_its_class(
    conn: psycopg.Connection[Any], sqlstate: str
) -> None:
    raise_it = (
        f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', MESSAGE = 'boom {sqlstate}',"
        ' DETAIL = \'{"reason": "r", "n": 1}\', HINT = \'do this\'; END $$'
    )
    with pytest.raises(errors.TistateError) as caught, errors.translate_errors():
        conn.execute(raise_it)  # type: ignore[call-overload]
    exc = caught.value
    assert type(exc) is errors.error_class_for(sqlstate)
    assert exc.sqlstate == sqlstate
    assert exc.message == f"boom {sqlstate}"
    assert exc.detail == {"reason": "r", "n": 1}
    assert exc.hint is not None
    assert "do this" in exc.hint
    assert isinstance(exc.__cause__, psycopg.Error)
    assert exc.http_detail()["reason"] == "r"


def test_non_json_detail_is_kept_as_text(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.DatabaseError) as caught, errors.translate_errors():
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'plain' USING DETAIL = 'not json'; END $$")
    assert caught.value.detail == {"text": "not json"}
    assert caught.value.sqlstate == "P0001"
    assert caught.value.http_status == 500


def test_unreachable_server_is_a_retryable_connection_error() -> None:
    with pytest.raises(errors.ConnectionLostError) as caught, errors.translate_errors():
        psycopg.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
    assert caught.value.retryable
    assert caught.value.exit_code == 75


async def _async_raise(dsn: str) -> None:
    # The one translate_errors serves async code too: it sees what the awaits inside it raise.
    with errors.translate_errors():
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            await aconn.execute("SELECT tistate.no_such_function()")


def test_async_translate_errors(db_dsn: str) -> None:
    import asyncio

    with pytest.raises(errors.SchemaOutdatedError) as caught:
        asyncio.run(_async_raise(db_dsn))
    assert caught.value.sqlstate == "42883"
    assert "tistate db migrate" in (caught.value.hint or "")
