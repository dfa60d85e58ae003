"""The routes. Each execution handler validates the body with the library's models, makes ONE SQL
call through the AsyncClient and renders the result; errors are rendered from the registry by
`problems`. There is no business logic here: every decision about state is the SQL's.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response

from .. import migrate, models
from ..client import AsyncClient, check_schema_version
from .auth import require_ti_token
from .body import HEARTBEAT, RUN, SKIP_DOWNSTREAM, STATE_UPDATE, json_body
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openapi import body_schema
from .problems import ErrorBody, ValidationErrorBody
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
    payload: Annotated[models.TIStateUpdate, Depends(json_body(STATE_UPDATE))],
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
    payload: Annotated[models.TIEnterRunningPayload, Depends(json_body(RUN))],
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
    payload: Annotated[models.TIHeartbeatInfo, Depends(json_body(HEARTBEAT))],
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
    payload: Annotated[
        models.TISkippedDownstreamTasksStatePayload, Depends(json_body(SKIP_DOWNSTREAM))
    ],
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
    summary="The database is reachable and its schema is current",
    responses={503: {"model": ErrorBody}},
)
async def ready(client: Client) -> dict[str, Any]:
    version = await client.schema_version()
    expected = migrate.latest_version()
    check_schema_version(version, expected)
    return {"status": "ready", "schema_version": version, "expected_schema_version": expected}


@ops_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(meter: Meter) -> Response:
    return Response(meter.render(), media_type=CONTENT_TYPE_LATEST)
