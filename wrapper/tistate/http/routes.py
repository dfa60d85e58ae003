"""The routes. Each execution handler validates the body with the library's models, makes ONE SQL
call through the AsyncClient and renders the result; errors are rendered from the registry by
`problems`. There is no business logic here: every decision about state is the SQL's.

The execution routes are `ExecutionRoute`s: declared as ordinary FastAPI routes (the OpenAPI
document and every unusual request go through FastAPI's dependency resolution), but a request whose
task-instance id is a canonical UUID is served by a direct handler doing the same steps in the same
order (token, body, endpoint) without resolving the dependency graph per request.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from .. import migrate, models
from ..client import AsyncClient, check_schema_version
from .auth import authenticate, require_ti_token, token_cache
from .body import HEARTBEAT, RUN, SKIP_DOWNSTREAM, STATE_UPDATE, json_body, parse_body
from .compat import record
from .forward import ForwardToAirflowError, forwarded_state
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openapi import body_schema
from .problems import ErrorBody, HTTPProblem, ValidationErrorBody
from .settings import Settings

__all__ = ["API_VERSION", "execution_router", "ops_router"]

#: The Execution API version this server speaks (the Task SDK's `Airflow-API-Version`).
API_VERSION = "2026-06-30"


async def _client(request: Request) -> AsyncClient:
    client: AsyncClient = request.app.state.client
    return client


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _api_version(
    airflow_api_version: Annotated[
        str | None,
        Header(
            alias="Airflow-API-Version",
            description="Execution API version the client speaks (accepted, echoed as the "
            "server's version)",
        ),
    ] = None,
) -> None:
    """Accepts the Task SDK's version header; the response carries the server's version."""


Client = Annotated[AsyncClient, Depends(_client)]
Config = Annotated[Settings, Depends(_settings)]
Meter = Annotated[Metrics, Depends(_metrics)]

#: body dependency -> how the fast path parses it: (request, limit) -> payload
Parser = Callable[[Request, int], Coroutine[Any, Any, Any]]
_BODIES: dict[Callable[..., Any], Parser] = {}


def _body(adapter: TypeAdapter[Any]) -> Any:
    """`Depends(json_body(adapter))`, registered for ExecutionRoute's fast path."""
    dependency = json_body(adapter)

    async def parse(request: Request, limit: int) -> Any:
        return await parse_body(request, adapter, limit)

    _BODIES[dependency] = parse
    return Depends(dependency)


def _forward_to_airflow(raw: bytearray) -> Exception | None:
    return ForwardToAirflowError(bytes(raw)) if forwarded_state(raw) else None


async def _parse_state(request: Request, limit: int) -> models.TIStateUpdate:
    """The state update; a body tistate does not implement but Airflow does (awaiting_input)
    raises ForwardToAirflowError (answered by Airflow's API server), never 422."""
    return await parse_body(request, STATE_UPDATE, limit, on_invalid=_forward_to_airflow)


async def _state_body(request: Request) -> models.TIStateUpdate:
    return await _parse_state(request, request.app.state.settings.max_body_bytes)


_BODIES[_state_body] = _parse_state


Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: What FastAPI's pydantic UUID accepts for sure (it accepts more: those take the generic path).
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: Endpoint parameter -> how the fast path provides it (the payload is the body dependency).
_PROVIDED = {"client": _client, "settings": _settings, "metrics": _metrics}


class ExecutionRoute(APIRoute):
    """A task-instance route with a direct handler for well-formed requests.

    The direct handler does what FastAPI's resolution of this route's dependencies does, in the
    same order: the router's `require_ti_token` (401/403), then the JSON body (413/422), then the
    endpoint with the app's client, settings and metrics. The path id is validated first: a
    canonical UUID is what the generic path would accept; anything else takes the generic path
    (which answers 422 where FastAPI does). A route whose dependencies are not exactly of these
    kinds, and any app with dependency_overrides, always take the generic path.
    """

    def get_route_handler(self) -> Handler:
        generic = super().get_route_handler()
        return _direct_handler(self, generic) or generic


def _direct_handler(route: APIRoute, generic: Handler) -> Handler | None:
    dependant = route.dependant
    if (
        [p.name for p in dependant.path_params] != ["task_instance_id"]
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    ):
        return None
    adapter: Parser | None = None
    provided: list[str] = []
    for sub in dependant.dependencies:
        if sub.call in (require_ti_token, _api_version) and sub.name is None:
            continue  # the router's: the token is checked below, the version header is inert
        if sub.name == "payload" and sub.call in _BODIES:
            adapter = _BODIES[sub.call]
        elif sub.name is not None and _PROVIDED.get(sub.name) is sub.call:
            provided.append(sub.name)
        else:
            return None
    if {d.call for d in dependant.dependencies if d.name is None} != {
        require_ti_token,
        _api_version,
    }:
        return None
    endpoint = route.endpoint
    wants = tuple(provided)
    expected = {"task_instance_id", *wants, *(["payload"] if adapter is not None else [])}
    if set(inspect.signature(endpoint).parameters) != expected:
        return None

    async def handler(request: Request) -> Response:
        ti_id = request.path_params.get("task_instance_id")
        app = request.app
        if (
            app.dependency_overrides
            or not isinstance(ti_id, str)
            or _CANONICAL_UUID.fullmatch(ti_id) is None
        ):
            return await generic(request)
        state = app.state
        settings: Settings = state.settings
        if not settings.insecure_no_auth:
            request.state.token_claims = authenticate(
                settings, request.headers.get("authorization"), ti_id, token_cache(request)
            )
        kwargs: dict[str, Any] = {"task_instance_id": UUID(ti_id)}
        if adapter is not None:
            kwargs["payload"] = await adapter(request, settings.max_body_bytes)
        for name in wants:
            kwargs[name] = getattr(state, name)
        response: Response = await endpoint(**kwargs)
        return response

    return handler


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

execution_router = APIRouter(
    prefix="/execution/task-instances",
    tags=["Task Instances"],
    dependencies=[Depends(require_ti_token), Depends(_api_version)],
    responses={**_AUTH_ERRORS, **_RETRYABLE},
    route_class=ExecutionRoute,
)


def _json(model: models.Result, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def _state_answer(result: models.StateUpdateResult, metrics: Metrics) -> Response:
    """204 when the transition applied; 200 with the result for the same-state no-op."""
    metrics.observe_transition(result)
    return Response(status_code=204) if result.applied else _json(result)


@execution_router.patch(
    "/{task_instance_id}/state",
    status_code=204,
    summary="Update the state of a task instance",
    response_class=Response,
    responses={
        200: {"model": models.StateUpdateResult, "description": "Same-state no-op (applied=false)"},
        204: {"description": "Transition applied"},
        **_errors(404, 409, 410, 422),
    },
    openapi_extra=body_schema("TIStateUpdate"),
)
async def ti_update_state(
    task_instance_id: UUID,
    payload: Annotated[models.TIStateUpdate, Depends(_state_body)],
    client: Client,
    settings: Config,
    metrics: Meter,
) -> Response:
    result = await client.ti_update_state(
        task_instance_id, payload, lock_timeout=settings.lock_timeout
    )
    return _state_answer(result, metrics)


@execution_router.patch(
    "/{task_instance_id}/run",
    summary="Mark a task instance as running and get its run context",
    response_model=models.RunContext,
    responses=_errors(404, 409, 410, 422),
    openapi_extra=body_schema("TIEnterRunningPayload"),
)
async def ti_run(
    task_instance_id: UUID,
    payload: Annotated[models.TIEnterRunningPayload, _body(RUN)],
    client: Client,
    settings: Config,
    metrics: Meter,
) -> Response:
    context = await client.ti_run(task_instance_id, payload, lock_timeout=settings.lock_timeout)
    metrics.observe_running()
    return _json(context)


@execution_router.put(
    "/{task_instance_id}/heartbeat",
    status_code=204,
    summary="Heartbeat of a running task instance",
    response_class=Response,
    responses={204: {"description": "Heartbeat recorded"}, **_errors(404, 409, 410, 422)},
    openapi_extra=body_schema("TIHeartbeatInfo"),
)
async def ti_heartbeat(
    task_instance_id: UUID,
    payload: Annotated[models.TIHeartbeatInfo, _body(HEARTBEAT)],
    client: Client,
    settings: Config,
) -> Response:
    await client.ti_heartbeat(
        task_instance_id, payload.hostname, payload.pid, lock_timeout=settings.lock_timeout
    )
    return Response(status_code=204)


@execution_router.patch(
    "/{task_instance_id}/skip-downstream",
    status_code=204,
    summary="Skip downstream tasks of a task instance",
    response_class=Response,
    responses={204: {"description": "Downstream tasks skipped"}, **_errors(404, 422)},
    openapi_extra=body_schema("TISkippedDownstreamTasksStatePayload"),
)
async def ti_skip_downstream(
    task_instance_id: UUID,
    payload: Annotated[models.TISkippedDownstreamTasksStatePayload, _body(SKIP_DOWNSTREAM)],
    client: Client,
) -> Response:
    await client.ti_skip_downstream(task_instance_id, payload)
    return Response(status_code=204)


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
