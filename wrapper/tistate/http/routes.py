"""The routes. Each execution handler validates the body with the library's models, makes ONE SQL
call through the AsyncClient and renders the result; errors are rendered from the registry by
`problems`. There is no business logic here: every decision about state is the SQL's. (A heartbeat
goes through the HeartbeatBatcher, which shares one call among the heartbeats that arrive together
and sends alone, as before, each one that call did not record.)

The four task-instance routes are plain Starlette routes, each one handler over the `Request`:
the token (401/403), then the JSON body (413/422, or the forward to Airflow), then the path id
(422), the order in which FastAPI resolved them when they were dependencies. FastAPI only
describes them in the OpenAPI document (`execution_docs`, with the parameters written out as the
bodies are); the operation routes below are ordinary FastAPI routes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.routing import Route

from .. import migrate, models
from ..client import AsyncClient, check_schema_version
from .auth import authenticate, token_cache
from .body import HEARTBEAT, RUN, SKIP_DOWNSTREAM, STATE_UPDATE, parse_body
from .compat import record
from .forward import ForwardToAirflowError, forwarded_state
from .heartbeats import HeartbeatBatcher
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openapi import execution_operation
from .problems import ErrorBody, HTTPProblem, ValidationErrorBody
from .settings import Settings

__all__ = ["API_VERSION", "execution_docs", "execution_routes", "ops_router"]

#: The Execution API version this server speaks (the Task SDK's `Airflow-API-Version`).
API_VERSION = "2026-06-30"
PREFIX = "/execution/task-instances"

T = TypeVar("T")
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: how the path id is validated: as FastAPI validated a `UUID` path parameter (lax: upper case,
#: 32 hex digits, braces and `urn:uuid:` are accepted)
_UUID: TypeAdapter[UUID] = TypeAdapter(UUID)


def _task_instance_id(raw: str) -> UUID:
    try:
        return _UUID.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    raise RequestValidationError(
        [{**error, "loc": ("path", "task_instance_id", *error["loc"])} for error in errors]
    )


async def _accept(
    request: Request,
    adapter: TypeAdapter[T],
    on_invalid: Callable[[bytearray], Exception | None] | None = None,
) -> tuple[UUID, T]:
    """The task-instance id and the body of an authenticated request, or the error to answer."""
    raw_id: str = request.path_params["task_instance_id"]
    settings: Settings = request.app.state.settings
    if not settings.insecure_no_auth:
        request.state.token_claims = authenticate(
            settings, request.headers.get("authorization"), raw_id, token_cache(request)
        )
    payload = await parse_body(request, adapter, settings.max_body_bytes, on_invalid)
    return _task_instance_id(raw_id), payload


def _forward_to_airflow(raw: bytearray) -> Exception | None:
    """A state body tistate does not implement but Airflow does (awaiting_input) is answered by
    Airflow's API server, never 422."""
    return ForwardToAirflowError(bytes(raw)) if forwarded_state(raw) else None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in codes}
    if 422 in codes:
        # A body of the wrong shape gets FastAPI's list detail (as Airflow answers); a value the
        # SQL rejects gets tistate's detail object with the offending field.
        responses[422] = {"model": ErrorBody | ValidationErrorBody}
    return responses


_AUTH_ERRORS = _errors(401, 403)
_RETRYABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Retryable: see Retry-After"}
}

#: The OpenAPI description of the execution routes (never served: `execution_routes` are).
execution_docs = APIRouter(
    prefix=PREFIX, tags=["Task Instances"], responses={**_AUTH_ERRORS, **_RETRYABLE}
)
#: The served execution routes, in the app's router.
execution_routes: list[Route] = []


def _execution(method: str, path: str, body: str, **doc: Any) -> Callable[[Handler], Handler]:
    """Serve the handler at PREFIX + path, and describe it (`body`: its body's component)."""

    def register(handler: Handler) -> Handler:
        execution_docs.add_api_route(
            path, handler, methods=[method], openapi_extra=execution_operation(body), **doc
        )
        execution_routes.append(Route(PREFIX + path, handler, methods=[method]))
        return handler

    return register


def _json(model: models.Result, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def _state_answer(result: models.StateUpdateResult, metrics: Metrics) -> Response:
    """204 when the transition applied; 200 with the result for the same-state no-op."""
    metrics.observe_transition(result)
    return Response(status_code=204) if result.applied else _json(result)


@_execution(
    "PATCH",
    "/{task_instance_id}/state",
    "TIStateUpdate",
    status_code=204,
    summary="Update the state of a task instance",
    response_class=Response,
    responses={
        200: {"model": models.StateUpdateResult, "description": "Same-state no-op (applied=false)"},
        204: {"description": "Transition applied"},
        **_errors(404, 409, 410, 422),
    },
)
async def ti_update_state(request: Request) -> Response:
    ti_id, payload = await _accept(request, STATE_UPDATE, _forward_to_airflow)
    state = request.app.state
    client: AsyncClient = state.client
    result = await client.ti_update_state(ti_id, payload, lock_timeout=state.settings.lock_timeout)
    return _state_answer(result, state.metrics)


@_execution(
    "PATCH",
    "/{task_instance_id}/run",
    "TIEnterRunningPayload",
    summary="Mark a task instance as running and get its run context",
    response_model=models.RunContext,
    responses=_errors(404, 409, 410, 422),
)
async def ti_run(request: Request) -> Response:
    ti_id, payload = await _accept(request, RUN)
    state = request.app.state
    client: AsyncClient = state.client
    context = await client.ti_run(ti_id, payload, lock_timeout=state.settings.lock_timeout)
    state.metrics.observe_running()
    return _json(context)


@_execution(
    "PUT",
    "/{task_instance_id}/heartbeat",
    "TIHeartbeatInfo",
    status_code=204,
    summary="Heartbeat of a running task instance",
    response_class=Response,
    responses={204: {"description": "Heartbeat recorded"}, **_errors(404, 409, 410, 422)},
)
async def ti_heartbeat(request: Request) -> Response:
    ti_id, payload = await _accept(request, HEARTBEAT)
    state = request.app.state
    heartbeats: HeartbeatBatcher = state.heartbeats
    await heartbeats.heartbeat(
        ti_id, payload.hostname, payload.pid, lock_timeout=state.settings.lock_timeout
    )
    return Response(status_code=204)


@_execution(
    "PATCH",
    "/{task_instance_id}/skip-downstream",
    "TISkippedDownstreamTasksStatePayload",
    status_code=204,
    summary="Skip downstream tasks of a task instance",
    response_class=Response,
    responses={204: {"description": "Downstream tasks skipped"}, **_errors(404, 422)},
)
async def ti_skip_downstream(request: Request) -> Response:
    ti_id, payload = await _accept(request, SKIP_DOWNSTREAM)
    client: AsyncClient = request.app.state.client
    await client.ti_skip_downstream(ti_id, payload)
    return Response(status_code=204)


async def _client(request: Request) -> AsyncClient:
    client: AsyncClient = request.app.state.client
    return client


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


Client = Annotated[AsyncClient, Depends(_client)]
Meter = Annotated[Metrics, Depends(_metrics)]


# ---------------------------------------------------------------------------------- operations
ops_router = APIRouter(tags=["Operations"])


@ops_router.get("/health", summary="The process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@ops_router.get(
    "/ready",
    summary="The database is reachable, its schema current, and tistate can run safely on it",
    description="503 when the schema is missing or outdated, or when "
    "tistate.compatibility_problems() is not empty (Airflow mode: an Airflow revision tistate "
    "does not know, a changed column, a missing grant), with the problems in `detail`.",
    responses={503: {"model": ErrorBody}},
)
async def ready(request: Request, client: Client) -> dict[str, Any]:
    version = await client.schema_version()
    expected = migrate.latest_version()
    check_schema_version(version, expected)
    problems = await client.compatibility_problems()
    record(request.app, problems)  # the gate of the execution routes follows /ready at once
    if problems:
        raise HTTPProblem(
            503,
            "incompatible",
            "tistate cannot run safely on this database: " + "; ".join(problems),
            problems=problems,
        )
    return {"status": "ready", "schema_version": version, "expected_schema_version": expected}


@ops_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(meter: Meter) -> Response:
    return Response(meter.render(), media_type=CONTENT_TYPE_LATEST)
