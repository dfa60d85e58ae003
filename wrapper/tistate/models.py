"""Pydantic v2 models of every payload tistate accepts and every result it returns.

Payload models use Airflow's field names (Execution API datamodels) and are strict with
`extra="forbid"`: a wrong type or an unknown field fails here with the field's path. Datetimes must
carry a timezone, as the SQL requires. These checks are for shape only: the SQL validates every
payload again and decides everything about state.

Result models mirror the SQL's composite types and documented jsonb keys (`extra="forbid"`, so a new
SQL column fails the tests until the model learns it).

Payloads are sent as `json_text(payload)`: only the fields that were set (Airflow's
`exclude_unset`; the `state` discriminator always counts as set), so an omitted optional field (e.g.
`rendered_map_index`) keeps the stored value instead of overwriting it with null. `json_text` is
also the one rule for what PostgreSQL cannot store (NUL characters, lone surrogates): TS422 naming
the field, for every JSON parameter, and `refuse_unstorable` for the plain text ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FailFast,
    Field,
    TypeAdapter,
)

from .errors import InvalidPayloadError

__all__ = [
    "STATE_UPDATE_ADAPTER",
    "AliasOutletEvent",
    "AssetEventInfo",
    "AssetEventResult",
    "AssetInfo",
    "AssetKey",
    "AssetOutletEvent",
    "AssetProfile",
    "DagDefinition",
    "DagInfo",
    "DagRunInfo",
    "DagRunTask",
    "DagSchedule",
    "DefineDagResult",
    "DefinedAlias",
    "DefinedAsset",
    "NotificationBacklog",
    "OutletEvent",
    "Payload",
    "RunContext",
    "StateUpdateResult",
    "TIDeferredStatePayload",
    "TIEnterRunningPayload",
    "TIHeartbeatInfo",
    "TIRescheduleStatePayload",
    "TIRetryStatePayload",
    "TISkippedDownstreamTasksStatePayload",
    "TIStateUpdate",
    "TISuccessStatePayload",
    "TITargetStatePayload",
    "TITerminalStatePayload",
    "TaskDefinition",
    "TaskInstanceDetail",
    "TaskInstanceSummary",
    "json_problem",
    "json_text",
    "non_finite",
    "refuse_unstorable",
]

# Lax on purpose: ISO 8601 strings must validate from Python dicts too (HTTP bodies, YAML files).
Timestamp = Annotated[AwareDatetime, Field(strict=False)]
Duration = Annotated[timedelta, Field(strict=False)]
JsonObject = dict[str, Any]


def json_problem(
    value: Any, leaf: Callable[[Any], str | None], *, keys: bool = True
) -> tuple[str, str] | None:
    """(path, why) of the first scalar (and key, with `keys`) of a JSON value that `leaf` finds a
    problem with; the path SQL style (`.a[0].b`, empty for `value` itself). The one walk of JSON
    values (on the request path: it recurses into containers only)."""
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
        step, check_keys = ".{}".format, keys
    elif isinstance(value, list | tuple):
        items = enumerate(value)
        step, check_keys = "[{}]".format, False
    else:
        why = leaf(value)
        return None if why is None else ("", why)
    for key, item in items:
        why = leaf(key) if check_keys else None
        if why is not None:
            return step(key), why
        if isinstance(item, dict | list | tuple):
            found = json_problem(item, leaf, keys=keys)
        else:
            why = leaf(item)
            found = None if why is None else ("", why)
        if found is not None:
            return step(key) + found[0], found[1]
    return None


NON_FINITE_MESSAGE = "numbers must be finite (no NaN or Infinity, no overflowing literal)"


def non_finite(value: Any) -> str | None:
    """A NaN or infinite number: JSON has none, but Python's and pydantic's parsers read `NaN`,
    `Infinity` and overflowing literals such as `1e309` (and YAML `.nan`, `.inf`)."""
    return NON_FINITE_MESSAGE if type(value) is float and not math.isfinite(value) else None


def _finite_object(value: JsonObject) -> JsonObject:
    if json_problem(value, non_finite, keys=False) is not None:  # keys are strings
        raise ValueError(NON_FINITE_MESSAGE)
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative (a timeout in the past)")
    return value


# The lists of a payload stop at their first invalid item (FailFast): a body of a million invalid
# items is one error, not a million (each costs pydantic hundreds of bytes and microseconds).

#: A JSON object of a payload: every number in it finite (PostgreSQL's jsonb has no NaN).
FiniteJsonObject = Annotated[JsonObject, AfterValidator(_finite_object)]
#: A duration from now: not negative.
FutureDuration = Annotated[timedelta, Field(strict=False), AfterValidator(_not_negative)]


class Payload(BaseModel):
    """Base of the request models: strict, unknown fields rejected."""

    #: allow_inf_nan: a float field refuses NaN and infinities (JSON has neither)
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    def payload_json(self) -> dict[str, Any]:
        """The JSON value sent to SQL: the fields that were set (`state` always is)."""
        return self.model_dump(mode="json", exclude_unset=True)


class _DefaultState(Payload):
    """Base of the payloads whose `state` has a default: it counts as set, because the SQL
    dispatches on it and exclude_unset would drop it. (Only these: a model_post_init costs every
    instance, nested ones included, a Python call.)"""

    def model_post_init(self, context: Any, /) -> None:
        self.__pydantic_fields_set__.add("state")


#: JSON values that reach SQL as jsonb: a payload model, or a plain object or array
JsonValue = Payload | Mapping[str, Any] | Sequence[Any]

NUL_MESSAGE = "NUL characters (\\u0000) cannot be stored"
SURROGATE_MESSAGE = "not valid Unicode (a lone surrogate) and cannot be stored"


def unstorable_text(value: Any) -> str | None:
    """A string PostgreSQL cannot store: with a NUL character, or not valid Unicode."""
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():  # isascii is O(1): only non-ASCII text is encoded to look
        try:
            value.encode()
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def refuse_unstorable(value: Any, name: str) -> None:
    """InvalidPayloadError (TS422) naming the field when `value` holds a string PostgreSQL cannot
    store (it would answer 22P05, or the driver would fail: a 500 class). The field of a JSON
    object parameter (a payload) is its path; of anything else, `name` and its path."""
    found = json_problem(value, unstorable_text)
    if found is None:
        return
    path, why = found
    field = path[1:] if path.startswith(".") else f"{name}{path}"
    raise InvalidPayloadError.at(field, why)


def json_text(value: JsonValue, name: str) -> str:
    """The JSON text a jsonb parameter is sent as: in one pass (pydantic's serializer for a
    payload, json.dumps otherwise), ASCII as json.dumps writes it (right in any client encoding).

    ASCII JSON writes a NUL as the escape `\\u0000` and a surrogate as `\\udXXX`, so one search
    of the text tells whether the value may hold one; only then is it walked, to name the field
    (the escape may be a backslash before "u0000", or half of an emoji: both are stored as is).
    """
    try:
        if isinstance(value, Payload):
            text = value.model_dump_json(exclude_unset=True, ensure_ascii=True)
        else:
            text = json.dumps(value)
    except ValueError:  # pydantic's serializer refuses a lone surrogate
        refuse_unstorable(_plain(value), name)
        raise
    if "\\u0000" in text or "\\ud" in text:
        refuse_unstorable(_plain(value), name)
    return text


def _plain(value: JsonValue) -> Any:
    return value.payload_json() if isinstance(value, Payload) else value


class Result(BaseModel):
    """Base of the result models: lax types (rows and jsonb), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------- assets
class AssetProfile(Payload):
    """An outlet as the worker describes it (Airflow's AssetProfile)."""

    name: str | None = None
    uri: str | None = None
    type: Literal["Asset", "AssetNameRef", "AssetUriRef", "AssetAlias"]


class AssetKey(Payload):
    name: str
    uri: str


class AssetOutletEvent(Payload):
    """A direct outlet event: extra for one asset, optionally for one partition."""

    dest_asset_key: AssetKey
    extra: FiniteJsonObject = Field(default_factory=dict)
    partition_key: str | None = None


class AliasOutletEvent(Payload):
    """An event emitted through an asset alias (Airflow's AssetAliasEvent)."""

    source_alias_name: str
    dest_asset_key: AssetKey
    dest_asset_extra: FiniteJsonObject = Field(default_factory=dict)
    extra: FiniteJsonObject = Field(default_factory=dict)


OutletEvent = AliasOutletEvent | AssetOutletEvent


# ---------------------------------------------------------------------------------- state payloads
class TISuccessStatePayload(_DefaultState):
    state: Literal["success"] = "success"
    end_date: Timestamp
    task_outlets: Annotated[list[AssetProfile], FailFast()] = Field(default_factory=list)
    outlet_events: Annotated[list[OutletEvent], FailFast()] = Field(default_factory=list)
    rendered_map_index: str | None = None


class TITerminalStatePayload(Payload):
    state: Literal["failed", "skipped", "removed", "upstream_failed"]
    end_date: Timestamp
    rendered_map_index: str | None = None


class TIRetryStatePayload(_DefaultState):
    state: Literal["up_for_retry"] = "up_for_retry"
    end_date: Timestamp
    rendered_map_index: str | None = None
    retry_delay_seconds: Annotated[float, Field(ge=0)] | None = None
    retry_reason: str | None = None


class TIRescheduleStatePayload(_DefaultState):
    state: Literal["up_for_reschedule"] = "up_for_reschedule"
    reschedule_date: Timestamp
    end_date: Timestamp


class TIDeferredStatePayload(_DefaultState):
    state: Literal["deferred"] = "deferred"
    classpath: str
    next_method: str
    trigger_kwargs: FiniteJsonObject | str = Field(default_factory=dict)
    #: ISO 8601 duration or seconds, from now (not negative)
    trigger_timeout: FutureDuration | None = None
    queue: str | None = None
    next_kwargs: FiniteJsonObject = Field(default_factory=dict)
    rendered_map_index: str | None = None


class TITargetStatePayload(Payload):
    state: Literal["scheduled", "queued", "restarting"]


#: Airflow's TIStateUpdate: the union of state payloads, discriminated on `state`.
TIStateUpdate = Annotated[
    TISuccessStatePayload
    | TITerminalStatePayload
    | TIRetryStatePayload
    | TIRescheduleStatePayload
    | TIDeferredStatePayload
    | TITargetStatePayload,
    Field(discriminator="state"),
]
STATE_UPDATE_ADAPTER: TypeAdapter[TIStateUpdate] = TypeAdapter(TIStateUpdate)


class TIEnterRunningPayload(_DefaultState):
    """PATCH .../run: queued/restarting -> running."""

    state: Literal["running"] = "running"
    hostname: str
    unixname: str
    pid: int
    start_date: Timestamp


class TIHeartbeatInfo(Payload):
    """PUT .../heartbeat."""

    hostname: str
    pid: int


class TISkippedDownstreamTasksStatePayload(Payload):
    """PATCH .../skip-downstream: task ids, or (task_id, map_index) pairs."""

    tasks: Annotated[list[str | tuple[str, int]], FailFast()]


# ---------------------------------------------------------------------------------- DAG documents
class DagSchedule(Payload):
    assets: list[AssetKey] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    name_refs: list[str] = Field(default_factory=list)
    uri_refs: list[str] = Field(default_factory=list)


class TaskDefinition(Payload):
    task_id: str
    max_tries: int | None = None
    pool: str | None = None
    pool_slots: int | None = None
    queue: str | None = None
    priority_weight: int | None = None
    operator: str | None = None
    is_teardown: bool | None = None
    outlets: list[AssetProfile] = Field(default_factory=list)


class DagDefinition(Payload):
    """The document define_dag takes (and `tistate dag define FILE` reads)."""

    dag_id: str
    owners: str | None = None
    description: str | None = None
    is_paused: bool | None = None
    fail_fast: bool | None = None
    max_active_runs: int | None = None
    timetable_partitioned: bool | None = None
    schedule: DagSchedule | None = None
    tasks: list[TaskDefinition] = Field(default_factory=list)


# ---------------------------------------------------------------------------------- results
class StateUpdateResult(Result):
    """tistate.state_update_result."""

    ti_id: UUID
    previous_state: str | None
    new_state: str | None
    applied: bool
    new_ti_id: UUID | None = None
    asset_event_ids: list[int] = Field(default_factory=list)
    queued_dag_ids: list[str] = Field(default_factory=list)
    lock_wait_ms: float | None = None
    lock_held_ms: float | None = None


class DagRunInfo(Result):
    """The dag_run part of the run context (Airflow's DagRun datamodel)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime
    start_date: datetime | None
    end_date: datetime | None
    clear_number: int
    run_type: str
    state: str | None
    conf: JsonObject | None
    consumed_asset_events: list[JsonObject]
    partition_key: str | None = None
    partition_date: datetime | None = None


class RunContext(Result):
    """What ti_run returns (Airflow's TIRunContext)."""

    dag_run: DagRunInfo
    task_reschedule_count: int
    max_tries: int
    variables: list[JsonObject]
    connections: list[JsonObject]
    xcom_keys_to_clear: list[str]
    should_retry: bool
    next_method: str | None = None
    next_kwargs: JsonObject | str | None = None
    start_date: datetime | None = None


class AssetEventResult(Result):
    """tistate.asset_event_result: what emit_asset_event returns."""

    asset_event_id: int
    asset_id: int
    queued_dag_ids: list[str] = Field(default_factory=list)


class DagRunTask(Result):
    """One row of create_dag_run: a queued task instance of the new run."""

    task_id: str
    map_index: int
    ti_id: UUID


class DefinedAsset(Result):
    id: int
    name: str
    uri: str


class DefinedAlias(Result):
    id: int
    name: str


class DefineDagResult(Result):
    dag_id: str
    tasks: list[str]
    assets: list[DefinedAsset]
    aliases: list[DefinedAlias]


# ---------------------------------------------------------------------------------- read results
class TaskInstanceSummary(Result):
    """One row of ti_list."""

    id: UUID
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    hostname: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    updated_at: datetime | None = None


class NotificationBacklog(Result):
    """Outbox rows waiting for the notification relay (tistate.notification_backlog())."""

    transactions: int
    oldest: datetime | None = None


class AssetEventInfo(Result):
    """An asset event as the read functions describe it."""

    id: int
    asset_id: int
    name: str
    uri: str
    extra: JsonObject
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = None
    timestamp: datetime
    partition_key: str | None = None
    ti_id: UUID | None = None
    try_number: int | None = None
    aliases: list[str] = Field(default_factory=list)


class TaskInstanceDetail(Result):
    """What ti_get returns: the task instance with its run, events, alias links and audit rows."""

    task_instance: JsonObject
    dag_run: JsonObject
    asset_events: list[AssetEventInfo]
    alias_links: list[JsonObject]
    queued_consumers: list[JsonObject]
    log: list[JsonObject]
    history: list[JsonObject] = Field(default_factory=list)


class DagInfo(Result):
    """One row of dag_list."""

    dag_id: str
    owners: str | None = None
    is_paused: bool
    is_stale: bool
    fail_fast: bool
    task_count: int
    run_count: int
    schedule: JsonObject
    outlets: list[JsonObject] = Field(default_factory=list)


class AssetInfo(Result):
    """One row of asset_list."""

    id: int
    name: str
    uri: str
    group: str
    active: bool
    event_count: int
    last_event_at: datetime | None = None
    aliases: list[str] = Field(default_factory=list)
    consumers: list[str] = Field(default_factory=list)
    queued_for: list[str] = Field(default_factory=list)
