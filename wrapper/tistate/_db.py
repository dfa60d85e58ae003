"""Query constants and call specifications shared by Client and AsyncClient.

Each public SQL function has one LiteralString constant calling it with named parameters, and one
builder returning a `Call`: the query, its parameters and the parser of its rows. The sync and async
clients only execute calls, so the two stay mechanically identical. `p_now` is passed as
`coalesce(%(now)s, pg_catalog.clock_timestamp())`, so omitting `now` keeps the SQL default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, LiteralString, TypeVar, get_args
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from . import models
from .errors import InvalidPayloadError, UsageError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Row = dict[str, Any]

DATABASE_URL_ENV = "TISTATE_DATABASE_URL"

# ---------------------------------------------------------------------------------- queries
# An omitted `now` keeps the function's own default (qualified: the caller's search_path is theirs).
_NOW: LiteralString = "p_now => coalesce(%(now)s, pg_catalog.clock_timestamp())"

SCHEMA_VERSION: LiteralString = "SELECT tistate.schema_version() AS version"

DEFINE_DAG: LiteralString = "SELECT tistate.define_dag(p_dag => %(dag)s) AS result"

CREATE_DAG_RUN: LiteralString = (
    "SELECT task_id, map_index, ti_id FROM tistate.create_dag_run("
    "p_dag_id => %(dag_id)s, p_run_id => %(run_id)s, p_logical_date => %(logical_date)s, "
    "p_conf => coalesce(%(conf)s, '{}'::jsonb), " + _NOW + ", "
    "p_partition_key => %(partition_key)s)"
)

TI_RUN: LiteralString = (
    "SELECT tistate.ti_run(p_ti_id => %(ti_id)s, p_payload => %(payload)s, "
    + _NOW
    + ", p_lock_timeout => %(lock_timeout)s) AS result"
)

TI_UPDATE_STATE: LiteralString = (
    "SELECT * FROM tistate.ti_update_state(p_ti_id => %(ti_id)s, p_payload => %(payload)s, "
    + _NOW
    + ", p_lock_timeout => %(lock_timeout)s)"
)

TI_HEARTBEAT: LiteralString = (
    "SELECT tistate.ti_heartbeat(p_ti_id => %(ti_id)s, p_hostname => %(hostname)s, "
    "p_pid => %(pid)s, " + _NOW + ", "
    "p_lock_timeout => %(lock_timeout)s)"
)

TI_QUEUE: LiteralString = (
    "SELECT * FROM tistate.ti_queue(p_ti_id => %(ti_id)s, "
    + _NOW
    + ", p_lock_timeout => %(lock_timeout)s)"
)

TI_HEARTBEAT_BATCH: LiteralString = (
    "SELECT tistate.ti_heartbeat_batch(p_ti_ids => %(ti_ids)s::uuid[], "
    "p_hostnames => %(hostnames)s::text[], p_pids => %(pids)s::integer[], " + _NOW + ") AS recorded"
)

TI_SKIP_DOWNSTREAM: LiteralString = (
    "SELECT tistate.ti_skip_downstream(p_ti_id => %(ti_id)s, p_tasks => %(tasks)s, "
    + _NOW
    + ") AS skipped"
)

TI_MARK: LiteralString = (
    "SELECT * FROM tistate.ti_mark(p_ti_id => %(ti_id)s, p_state => %(state)s, "
    "p_reason => %(reason)s, " + _NOW + ", "
    "p_lock_timeout => %(lock_timeout)s)"
)

EMIT_ASSET_EVENT: LiteralString = (
    "SELECT * FROM tistate.emit_asset_event(p_name => %(name)s, p_uri => %(uri)s, "
    "p_extra => coalesce(%(extra)s, '{}'::jsonb), p_partition_key => %(partition_key)s, "
    + _NOW
    + ")"
)

TI_GET: LiteralString = (
    "SELECT tistate.ti_get(p_ti_id => %(ti_id)s, p_log_limit => %(log_limit)s) AS result"
)

TI_LIST: LiteralString = (
    "SELECT * FROM tistate.ti_list(p_dag_id => %(dag_id)s, p_run_id => %(run_id)s, "
    "p_state => %(state)s, p_limit => %(limit)s)"
)

DAG_LIST: LiteralString = "SELECT * FROM tistate.dag_list()"

ASSET_LIST: LiteralString = "SELECT * FROM tistate.asset_list()"

ASSET_EVENTS: LiteralString = (
    "SELECT * FROM tistate.asset_events(p_name => %(name)s, p_uri => %(uri)s, "
    "p_ti_id => %(ti_id)s, p_limit => %(limit)s)"
)

RELAY_NOTIFICATIONS: LiteralString = (
    "SELECT tistate.relay_notifications(p_limit => %(limit)s) AS sent"
)

NOTIFICATION_BACKLOG: LiteralString = "SELECT * FROM tistate.notification_backlog()"


# ---------------------------------------------------------------------------------- calls
@dataclass(frozen=True)
class Call(Generic[T]):
    """One SQL function call: what to execute and how to turn its rows into a result."""

    query: LiteralString
    params: Mapping[str, Any]
    parse: Callable[[list[Row]], T]

    def __post_init__(self) -> None:
        # The jsonb parameters were checked as they were serialized (`_jsonb`); a text one with a
        # NUL would be 22P05 or a driver error (a 500 class): TS422 naming it, as for jsonb.
        for name, value in self.params.items():
            if type(value) is str and models.unstorable_text(value) is not None:
                models.refuse_unstorable(value, name)  # the error, naming the field


def _as_is(text: Any) -> Any:
    return text


def _jsonb(value: models.JsonValue, name: str) -> Jsonb:
    """The jsonb parameter `name`: the text of `models.json_text`, which psycopg sends as it is."""
    return Jsonb(models.json_text(value, name), dumps=_as_is)


def database_url(explicit: str | None = None) -> str:
    """The connection string: the argument, else TISTATE_DATABASE_URL, else libpq's PG* env.

    An explicitly empty argument (`--database-url ""`) is refused: it would silently mean libpq's
    defaults, which is rarely what someone typing an option meant.
    """
    if explicit is not None and not explicit.strip():
        raise UsageError(
            "the database URL is empty",
            hint="give a URL (--database-url postgresql://USER@HOST/DB), or leave the option out",
        )
    return explicit or os.environ.get(DATABASE_URL_ENV) or ""


def _model_at(model: Any, loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model expected at `loc` under `model` (through lists and optionals)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
        if isinstance(part, str):
            current = _unwrap(current)
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """`X` from `X | None`, `list[X]`, `Sequence[X]`."""
    for _ in range(3):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    return annotation


def _shape_hint(model: Any, loc: list[Any], kind: str) -> str | None:
    """For an unknown key or a non-object: the keys accepted there."""
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
    elif kind in {"model_type", "dict_type", "model_attributes_type"}:
        parent = _model_at(model, loc)
    else:
        return None
    if parent is None:
        return None
    keys = ", ".join(parent.model_fields)
    where = ".".join(str(p) for p in (loc[:-1] if kind == "extra_forbidden" else loc))
    return f"{where or 'the document'} takes an object with the keys: {keys}"


def _validation_error(
    exc: ValidationError, tag: object = None, model: Any = None
) -> InvalidPayloadError:
    first = exc.errors()[0]
    loc = list(first["loc"])
    if tag is not None and loc and loc[0] == tag:
        loc = loc[1:]  # the discriminated union's tag, not a field
    field = ".".join(str(part) for part in loc)
    message = first["msg"]
    hint = _shape_hint(model, loc, first["type"]) if model is not None else None
    if hint is not None:
        message = {"extra_forbidden": "unknown key"}.get(first["type"], "must be an object")
        message = f"{message}; {hint}"
    return InvalidPayloadError.at(field, message)


def validate(model: type[M], value: M | Mapping[str, Any]) -> M:
    """A model from a model or a mapping; a shape error becomes InvalidPayloadError (TS422)."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _validation_error(exc, model=model) from exc


def validate_state_update(value: models.TIStateUpdate | Mapping[str, Any]) -> models.TIStateUpdate:
    if isinstance(value, BaseModel):
        return value
    try:
        return models.STATE_UPDATE_ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise _validation_error(exc, tag=value.get("state")) from exc


def _uuid(value: UUID | str, field: str = "ti_id") -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidPayloadError.at(field, f"not a UUID: {value!r}") from None


def _interval(value: timedelta | float | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def _one(model: type[M]) -> Callable[[list[Row]], M]:
    def parse(rows: list[Row]) -> M:
        return model.model_validate(rows[0])

    return parse


def _json_result(model: type[M]) -> Callable[[list[Row]], M]:
    def parse(rows: list[Row]) -> M:
        return model.model_validate(rows[0]["result"])

    return parse


def _many(model: type[M]) -> Callable[[list[Row]], list[M]]:
    def parse(rows: list[Row]) -> list[M]:
        return [model.model_validate(row) for row in rows]

    return parse


def _version(rows: list[Row]) -> int:
    return int(rows[0]["version"])


def _nothing(rows: list[Row]) -> None:
    return None


def _skipped(rows: list[Row]) -> int:
    return int(rows[0]["skipped"])


def schema_version() -> Call[int]:
    return Call(SCHEMA_VERSION, {}, _version)


COMPATIBILITY_PROBLEMS: LiteralString = (
    "SELECT p AS problem FROM tistate.compatibility_problems() AS p"
)


def _problems(rows: list[Row]) -> list[str]:
    return [str(row["problem"]) for row in rows]


def compatibility_problems() -> Call[list[str]]:
    return Call(COMPATIBILITY_PROBLEMS, {}, _problems)


def define_dag(dag: models.DagDefinition | Mapping[str, Any]) -> Call[models.DefineDagResult]:
    document = _jsonb(validate(models.DagDefinition, dag), "dag")
    return Call(DEFINE_DAG, {"dag": document}, _json_result(models.DefineDagResult))


def create_dag_run(
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    conf: Mapping[str, Any] | None,
    now: datetime | None,
    partition_key: str | None,
) -> Call[list[models.DagRunTask]]:
    params = {
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": logical_date,
        "conf": _jsonb(dict(conf), "conf") if conf is not None else None,
        "now": now,
        "partition_key": partition_key,
    }
    return Call(CREATE_DAG_RUN, params, _many(models.DagRunTask))


def ti_run(
    ti_id: UUID | str,
    payload: models.TIEnterRunningPayload | Mapping[str, Any],
    now: datetime | None,
    lock_timeout: timedelta | float | None,
) -> Call[models.RunContext]:
    params = {
        "ti_id": _uuid(ti_id),
        "payload": _jsonb(validate(models.TIEnterRunningPayload, payload), "payload"),
        "now": now,
        "lock_timeout": _interval(lock_timeout),
    }
    return Call(TI_RUN, params, _json_result(models.RunContext))


def ti_update_state(
    ti_id: UUID | str,
    payload: models.TIStateUpdate | Mapping[str, Any],
    now: datetime | None,
    lock_timeout: timedelta | float | None,
) -> Call[models.StateUpdateResult]:
    params = {
        "ti_id": _uuid(ti_id),
        "payload": _jsonb(validate_state_update(payload), "payload"),
        "now": now,
        "lock_timeout": _interval(lock_timeout),
    }
    return Call(TI_UPDATE_STATE, params, _one(models.StateUpdateResult))


def ti_heartbeat(
    ti_id: UUID | str,
    hostname: str,
    pid: int,
    now: datetime | None,
    lock_timeout: timedelta | float | None,
) -> Call[None]:
    info = validate(models.TIHeartbeatInfo, {"hostname": hostname, "pid": pid})
    if not -(2**31) <= info.pid < 2**31:  # else no ti_heartbeat(..., bigint) exists: 42883
        raise InvalidPayloadError.at("pid", "must be a 32-bit integer")
    params = {
        "ti_id": _uuid(ti_id),
        "hostname": info.hostname,
        "pid": info.pid,
        "now": now,
        "lock_timeout": _interval(lock_timeout),
    }
    return Call(TI_HEARTBEAT, params, _nothing)


def ti_heartbeat_batch(
    items: Sequence[tuple[UUID | str, str, int]], now: datetime | None
) -> Call[list[bool]]:
    """Heartbeats (ti_id, hostname, pid) in one call: whether each was recorded. An item that
    ti_heartbeat would refuse as input (not a UUID, an empty or unstorable host, a pid beyond 32
    bits) goes as NULLs, which the function never records: its caller sends it alone, and
    ti_heartbeat gives it its error."""
    ti_ids: list[UUID | None] = []
    hostnames: list[str | None] = []
    pids: list[int | None] = []
    for ti_id, hostname, pid in items:
        try:
            checked = _heartbeat_item(ti_id, hostname, pid)
        except InvalidPayloadError:
            ti_ids.append(None)
            hostnames.append(None)
            pids.append(None)
            continue
        ti_ids.append(checked[0])
        hostnames.append(checked[1])
        pids.append(checked[2])
    params = {"ti_ids": ti_ids, "hostnames": hostnames, "pids": pids, "now": now}
    count = len(ti_ids)

    def parse(rows: list[Row]) -> list[bool]:
        recorded = [False] * count
        for position in rows[0]["recorded"]:
            recorded[position - 1] = True
        return recorded

    return Call(TI_HEARTBEAT_BATCH, params, parse)


def _heartbeat_item(ti_id: UUID | str, hostname: str, pid: int) -> tuple[UUID, str, int]:
    """One heartbeat's values as ti_heartbeat checks them (InvalidPayloadError otherwise)."""
    call = ti_heartbeat(ti_id, hostname, pid, None, None)
    return call.params["ti_id"], call.params["hostname"], call.params["pid"]


def ti_queue(
    ti_id: UUID | str, now: datetime | None, lock_timeout: timedelta | float | None
) -> Call[models.StateUpdateResult]:
    params = {"ti_id": _uuid(ti_id), "now": now, "lock_timeout": _interval(lock_timeout)}
    return Call(TI_QUEUE, params, _one(models.StateUpdateResult))


def ti_skip_downstream(
    ti_id: UUID | str,
    tasks: models.TISkippedDownstreamTasksStatePayload | Sequence[str | tuple[str, int]],
    now: datetime | None,
) -> Call[int]:
    if not isinstance(tasks, models.TISkippedDownstreamTasksStatePayload):
        tasks = validate(models.TISkippedDownstreamTasksStatePayload, {"tasks": list(tasks)})
    body = tasks.model_dump(mode="json")["tasks"]
    params = {"ti_id": _uuid(ti_id), "tasks": _jsonb(body, "tasks"), "now": now}
    return Call(TI_SKIP_DOWNSTREAM, params, _skipped)


def ti_mark(
    ti_id: UUID | str,
    state: str,
    reason: str | None,
    now: datetime | None,
    lock_timeout: timedelta | float | None,
) -> Call[models.StateUpdateResult]:
    params = {
        "ti_id": _uuid(ti_id),
        "state": state,
        "reason": reason,
        "now": now,
        "lock_timeout": _interval(lock_timeout),
    }
    return Call(TI_MARK, params, _one(models.StateUpdateResult))


def emit_asset_event(
    name: str | None,
    uri: str | None,
    extra: Mapping[str, Any] | None,
    partition_key: str | None,
    now: datetime | None,
) -> Call[models.AssetEventResult]:
    params = {
        "name": name,
        "uri": uri,
        "extra": _jsonb(dict(extra), "extra") if extra is not None else None,
        "partition_key": partition_key,
        "now": now,
    }
    return Call(EMIT_ASSET_EVENT, params, _one(models.AssetEventResult))


def ti_get(ti_id: UUID | str, log_limit: int) -> Call[models.TaskInstanceDetail]:
    params = {"ti_id": _uuid(ti_id), "log_limit": log_limit}
    return Call(TI_GET, params, _json_result(models.TaskInstanceDetail))


def ti_list(
    dag_id: str | None, run_id: str | None, state: str | None, limit: int
) -> Call[list[models.TaskInstanceSummary]]:
    params = {"dag_id": dag_id, "run_id": run_id, "state": state, "limit": limit}
    return Call(TI_LIST, params, _many(models.TaskInstanceSummary))


def dag_list() -> Call[list[models.DagInfo]]:
    return Call(DAG_LIST, {}, _many(models.DagInfo))


def asset_list() -> Call[list[models.AssetInfo]]:
    return Call(ASSET_LIST, {}, _many(models.AssetInfo))


def asset_events(
    name: str | None, uri: str | None, ti_id: UUID | str | None, limit: int
) -> Call[list[models.AssetEventInfo]]:
    params = {
        "name": name,
        "uri": uri,
        "ti_id": _uuid(ti_id) if ti_id is not None else None,
        "limit": limit,
    }
    return Call(ASSET_EVENTS, params, _many(models.AssetEventInfo))


def _sent(rows: list[Row]) -> int:
    return int(rows[0]["sent"])


def relay_notifications(limit: int) -> Call[int]:
    return Call(RELAY_NOTIFICATIONS, {"limit": limit}, _sent)


def notification_backlog() -> Call[models.NotificationBacklog]:
    return Call(NOTIFICATION_BACKLOG, {}, _one(models.NotificationBacklog))
