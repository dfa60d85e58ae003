"""The single registry of tistate's errors: SQLSTATE -> exception class, HTTP status, CLI exit code.

Every database error reaching Python goes through `translate_errors()` (or `from_psycopg()`), which
keys on `exc.diag.sqlstate` only, never on message text. The SQL raises its own codes with a JSON
DETAIL (`tistate._raise`); the exception carries it parsed in `detail`, with `sqlstate`, `message`
and `hint`. The HTTP service answers `http_status` with `{"detail": exc.http_detail()}`, and the CLI
exits with `exit_code`.

| SQLSTATE                                | exception                 | HTTP | exit |
|-----------------------------------------|---------------------------|------|------|
| TS404                                   | NotFoundError             | 404  | 4    |
| TS409                                   | InvalidStateError         | 409  | 5    |
| TS410                                   | GoneError                 | 410  | 6    |
| TS422                                   | InvalidPayloadError       | 422  | 3    |
| TS403                                   | ForbiddenError            | 403  | 7    |
| TS501                                   | UnsupportedError          | 501  | 9    |
| 40001                                   | SerializationFailureError | 503  | 75   |
| 40P01                                   | DeadlockError             | 503  | 75   |
| 55P03                                   | LockTimeoutError          | 503  | 75   |
| 57014                                   | StatementTimeoutError     | 503  | 75   |
| class 08, 57P01-57P03 (lost connection) | ConnectionLostError       | 503  | 75   |
| (pool wait timed out or queue full)     | PoolExhaustedError        | 503  | 75   |
| 42883, 42P01, 3F000 (and version check) | SchemaOutdatedError       | 503  | 8    |
| 3D000, 28000, 28P01 (connect refused)   | ConfigurationError        | 500  | 78   |
| (a command used wrongly)                | UsageError                | 400  | 2    |
| anything else                           | DatabaseError             | 500  | 1    |

All retryable errors derive from RetryableError (exit 75 is sysexits' EX_TEMPFAIL: try again).
ConfigurationError is not retryable: a missing database, an unknown role or a failed password stays
so until someone fixes the URL or the server (exit 78 is sysexits' EX_CONFIG). libpq reports a
refused connection without a SQLSTATE, so `from_psycopg()` recognises these three from the server's
FATAL message (the one place that reads message text; see `_CONNECT_REFUSALS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
import psycopg_pool

__all__ = [
    "REGISTRY",
    "RESERVED_CODES",
    "SQLSTATE_CLASS_REGISTRY",
    "ConfigurationError",
    "ConnectionLostError",
    "DatabaseError",
    "DeadlockError",
    "ForbiddenError",
    "GoneError",
    "InvalidPayloadError",
    "InvalidStateError",
    "LockTimeoutError",
    "NotFoundError",
    "PoolExhaustedError",
    "RetryableError",
    "SchemaOutdatedError",
    "SerializationFailureError",
    "StatementTimeoutError",
    "TistateError",
    "UsageError",
    "error_class_for",
    "from_psycopg",
    "translate_errors",
]


class TistateError(Exception):
    """A tistate operation failed."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False
    #: the SQLSTATE an instance gets when none is given (the class's own code, if it has one)
    default_sqlstate: ClassVar[str | None] = None
    #: the reason reported in an HTTP body when the SQL DETAIL has none
    default_reason: ClassVar[str] = "database_error"
    default_hint: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        sqlstate: str | None = None,
        detail: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> None:
        self.message: str = message or (self.__doc__ or type(self).__name__).strip()
        self.sqlstate: str | None = sqlstate or self.default_sqlstate
        self.detail: dict[str, Any] = dict(detail or {})
        self.hint: str | None = hint or self.default_hint
        super().__init__(self.message)

    def __str__(self) -> str:
        """The message, then the hint (a traceback then says what to do, not only what failed)."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    @property
    def code(self) -> str:
        """The SQLSTATE, or the class name for errors that did not come from the database."""
        return self.sqlstate or type(self).__name__

    def http_detail(self) -> dict[str, Any]:
        """The `detail` object of an HTTP error body in Airflow's shape ({reason, message, ...})."""
        body: dict[str, Any] = {"reason": self.default_reason, "message": self.message}
        body.update(self.detail)
        return body

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable form (CLI --json errors, logs)."""
        return {
            "error": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "detail": self.detail,
            "hint": self.hint,
        }


class NotFoundError(TistateError):
    """Task instance, asset or DAG not found."""

    http_status = 404
    exit_code = 4
    default_sqlstate = "TS404"
    default_reason = "not_found"


class InvalidStateError(TistateError):
    """The task instance is not in a state that allows this transition."""

    http_status = 409
    exit_code = 5
    default_sqlstate = "TS409"
    default_reason = "invalid_state"

    @property
    def previous_state(self) -> str | None:
        value = self.detail.get("previous_state")
        return value if isinstance(value, str) else None


class GoneError(TistateError):
    """The task instance id was archived by a retry."""

    http_status = 410
    exit_code = 6
    default_sqlstate = "TS410"
    default_reason = "gone"


class InvalidPayloadError(TistateError):
    """The payload is invalid."""

    http_status = 422
    exit_code = 3
    default_sqlstate = "TS422"
    default_reason = "invalid_payload"

    @classmethod
    def at(cls, field: str, message: str) -> InvalidPayloadError:
        """TS422 for `field` (SQL style, `a[0].b`; empty for the whole document), as the SQL
        reports it: `detail` {reason, field, message}."""
        return cls(
            f"invalid payload: {field or '(root)'}: {message}",
            sqlstate="TS422",
            detail={"reason": "invalid_payload", "field": field, "message": message},
        )

    @property
    def field(self) -> str | None:
        value = self.detail.get("field")
        return value if isinstance(value, str) else None


class ForbiddenError(TistateError):
    """The operation is not allowed."""

    http_status = 403
    exit_code = 7
    default_sqlstate = "TS403"
    default_reason = "forbidden"


class UnsupportedError(TistateError):
    """Not supported here: a standalone-only function on an Airflow database (define_dag,
    create_dag_run, ti_queue: Airflow's DAG processor and scheduler do that), an Airflow setup
    tistate does not support (compressed serialized DAGs, multi-team), or an install refused."""

    http_status = 501
    exit_code = 9
    default_sqlstate = "TS501"
    default_reason = "unsupported"


class RetryableError(TistateError):
    """A transient failure: the call changed nothing and may be retried."""

    http_status = 503
    exit_code = 75  # sysexits EX_TEMPFAIL
    retryable = True
    default_reason = "retryable"
    default_hint = "nothing was changed; retry the call"
    #: seconds a client should wait before retrying (HTTP Retry-After)
    retry_after: ClassVar[int] = 1


class SerializationFailureError(RetryableError):
    """Serialization failure (40001)."""

    default_sqlstate = "40001"
    default_reason = "serialization_failure"


class DeadlockError(RetryableError):
    """Deadlock detected (40P01)."""

    default_sqlstate = "40P01"
    default_reason = "deadlock"


class LockTimeoutError(RetryableError):
    """The row lock was not obtained within lock_timeout (55P03)."""

    default_sqlstate = "55P03"
    default_reason = "lock_timeout"
    default_hint = "another transition holds the task instance's lock; retry the call"


class StatementTimeoutError(RetryableError):
    """The statement was cancelled or timed out (57014)."""

    default_sqlstate = "57014"
    default_reason = "statement_timeout"


class ConnectionLostError(RetryableError):
    """The database connection failed (SQLSTATE class 08)."""

    default_reason = "connection_failure"
    default_hint = "check that PostgreSQL is reachable (TISTATE_DATABASE_URL), then retry"


class PoolExhaustedError(RetryableError):
    """No database connection became free in time (connection pool exhausted)."""

    default_reason = "pool_exhausted"
    default_hint = "the service is saturated; retry later or raise the pool's max size"


class SchemaOutdatedError(TistateError):
    """The database schema does not match this version of tistate."""

    http_status = 503
    exit_code = 8
    default_reason = "schema_outdated"
    default_hint = "run `tistate db migrate`"


class ConfigurationError(TistateError):
    """The database refused the connection: it does not exist, or the role or password is wrong."""

    http_status = 500
    exit_code = 78  # sysexits EX_CONFIG
    default_reason = "configuration_error"
    default_hint = "check the database URL (--database-url or TISTATE_DATABASE_URL)"


class UsageError(TistateError):
    """The command or call was used wrongly (a missing file, an empty option, a bad choice)."""

    http_status = 400
    exit_code = 2  # what typer/click use for usage errors
    default_reason = "usage_error"


class DatabaseError(TistateError):
    """Unexpected database error."""

    http_status = 500
    exit_code = 1


#: Exact SQLSTATE -> exception class. The single source of truth (tests/test_errors_registry.py
#: checks it against every code the SQL raises).
REGISTRY: Mapping[str, type[TistateError]] = {
    "TS403": ForbiddenError,
    "TS404": NotFoundError,
    "TS409": InvalidStateError,
    "TS410": GoneError,
    "TS422": InvalidPayloadError,
    "TS501": UnsupportedError,
    "40001": SerializationFailureError,
    "40P01": DeadlockError,
    "55P03": LockTimeoutError,
    "57014": StatementTimeoutError,
    # The backend was terminated (pg_terminate_backend, fast shutdown, crash) or the server is
    # starting or stopping: the call's transaction rolled back, so it is safe to retry.
    "57P01": ConnectionLostError,  # admin_shutdown
    "57P02": ConnectionLostError,  # crash_shutdown
    "57P03": ConnectionLostError,  # cannot_connect_now
    "42883": SchemaOutdatedError,  # undefined_function
    "42P01": SchemaOutdatedError,  # undefined_table
    "3F000": SchemaOutdatedError,  # invalid_schema_name
    "3D000": ConfigurationError,  # invalid_catalog_name: the database does not exist
    "28000": ConfigurationError,  # invalid_authorization_specification: unknown role, pg_hba
    "28P01": ConfigurationError,  # invalid_password
}

#: Registered TS codes no SQL function raises yet, with the reason they exist.
RESERVED_CODES: Mapping[str, str] = {}

#: Two-character SQLSTATE class -> exception class, for codes not in REGISTRY.
SQLSTATE_CLASS_REGISTRY: Mapping[str, type[TistateError]] = {
    "08": ConnectionLostError,
}


def error_class_for(sqlstate: str | None) -> type[TistateError]:
    """The exception class registered for a SQLSTATE (DatabaseError when none is)."""
    if not sqlstate:
        return DatabaseError
    return REGISTRY.get(sqlstate) or SQLSTATE_CLASS_REGISTRY.get(sqlstate[:2]) or DatabaseError


def _parse_detail(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"text": text}


#: libpq gives no SQLSTATE for a connection the server refused, only the server's FATAL message:
#: (pattern, the SQLSTATE the server sent, hint). English server messages (lc_messages=C/en).
_CONNECT_REFUSALS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r'database "(?P<name>[^"]*)" does not exist'),
        "3D000",
        "create it (createdb {name}, or CREATE DATABASE {name}), then run `tistate db migrate`; "
        "or fix the database name in --database-url / TISTATE_DATABASE_URL",
    ),
    (
        re.compile(r'role "(?P<name>[^"]*)" does not exist'),
        "28000",
        "fix the user in --database-url / TISTATE_DATABASE_URL, or create the role "
        "(CREATE ROLE {name} LOGIN; docs/dba.md)",
    ),
    (
        re.compile(
            r"password authentication failed|no password supplied|no pg_hba\.conf entry|"
            r"authentication failed for user"
        ),
        "28P01",
        "fix the credentials in --database-url / TISTATE_DATABASE_URL (or ~/.pgpass), "
        "or the server's pg_hba.conf",
    ),
)


def _connect_refusal(exc: psycopg.Error) -> TistateError | None:
    """A ConfigurationError for a connection the server refused (see _CONNECT_REFUSALS)."""
    text = str(exc)
    for pattern, sqlstate, hint in _CONNECT_REFUSALS:
        match = pattern.search(text)
        if match:
            fatal = text.split("FATAL:", 1)[-1].strip().splitlines()[0].strip()
            name = match.groupdict().get("name") or ""
            return ConfigurationError(
                f"the database refused the connection: {fatal}",
                sqlstate=sqlstate,
                hint=hint.format(name=name),
            )
    return None


def from_psycopg(exc: psycopg.Error) -> TistateError:
    """The registry's exception for a psycopg error (the caller raises it `from exc`)."""
    diag = exc.diag
    sqlstate = diag.sqlstate
    if sqlstate is None and isinstance(exc, psycopg.OperationalError):
        refused = _connect_refusal(exc)
        if refused is not None:
            return refused
        # No server answer at all: refused, reset or closed connection.
        cls: type[TistateError] = ConnectionLostError
    else:
        cls = error_class_for(sqlstate)
    message = diag.message_primary or str(exc).strip() or None
    detail = _parse_detail(diag.message_detail)
    hint = diag.message_hint
    if cls is SchemaOutdatedError:
        ours = "the tistate schema or one of its functions is missing: run `tistate db migrate`"
        hint = f"{ours} ({hint})" if hint else ours
    return cls(message, sqlstate=sqlstate, detail=detail, hint=hint)


def _from_pool(exc: psycopg_pool.PoolTimeout | psycopg_pool.TooManyRequests) -> TistateError:
    return PoolExhaustedError(f"connection pool exhausted: {exc}")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise psycopg and pool errors as the registry's exceptions (`raise ... from exc`)."""
    try:
        yield
    except (psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests) as exc:
        raise _from_pool(exc) from exc
    except psycopg.Error as exc:
        raise from_psycopg(exc) from exc
