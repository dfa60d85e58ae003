"""The OpenAPI document: FastAPI's, with the request bodies taken from the library's models.

The execution routes read their request themselves (see `routes`), so FastAPI sees neither their
parameters nor their bodies: each is described by `execution_operation(...)` (the task-instance id,
the Airflow-API-Version header and the body model), and `build_openapi()` adds the models' JSON
schemas (pydantic's, validation mode) to `components.schemas`, with request examples (`EXAMPLES`).
The per-task-instance bearer JWT is declared as the `TaskInstanceToken` security scheme of every
/execution operation, so /docs offers an "Authorize" button for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter
from starlette.routing import BaseRoute

from .. import models

__all__ = [
    "BODY_MODELS",
    "EXAMPLES",
    "SECURITY_SCHEME",
    "body_schema",
    "build_openapi",
    "execution_operation",
    "render_openapi",
    "write_openapi",
]

REF_TEMPLATE = "#/components/schemas/{model}"

#: Component name -> the type its schema is generated from.
BODY_MODELS: dict[str, Any] = {
    "TIStateUpdate": models.TIStateUpdate,
    "TIEnterRunningPayload": models.TIEnterRunningPayload,
    "TIHeartbeatInfo": models.TIHeartbeatInfo,
    "TISkippedDownstreamTasksStatePayload": models.TISkippedDownstreamTasksStatePayload,
}


SECURITY_SCHEME = "TaskInstanceToken"
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT whose subject is the task instance id of the path, signed with "
    "TISTATE_JWT_SECRET (`tistate token mint TI_ID`), or Airflow's own execution token.",
}
_ORDERS = {"name": "orders", "uri": "s3://lake/orders"}

#: Component name -> named request examples (OpenAPI `examples`), each a valid body.
EXAMPLES: dict[str, dict[str, Any]] = {
    "TIStateUpdate": {
        "success_with_events": {
            "summary": "success with an outlet event and an event through an alias",
            "value": {
                "state": "success",
                "end_date": "2026-01-01T12:00:05Z",
                "task_outlets": [
                    {"type": "Asset", **_ORDERS},
                    {"type": "AssetAlias", "name": "daily-tables"},
                ],
                "outlet_events": [
                    {"dest_asset_key": _ORDERS, "extra": {"rows": 120}},
                    {
                        "source_alias_name": "daily-tables",
                        "dest_asset_key": {"name": "table-a", "uri": "s3://lake/tables/a"},
                        "extra": {"rows": 3},
                    },
                ],
            },
        },
        "failed": {
            "summary": "failed",
            "value": {"state": "failed", "end_date": "2026-01-01T12:00:05Z"},
        },
        "up_for_retry": {
            "summary": "up_for_retry (a new try gets a new task instance id)",
            "value": {"state": "up_for_retry", "end_date": "2026-01-01T12:00:05Z"},
        },
    },
    "TIEnterRunningPayload": {
        "run": {
            "summary": "queued -> running",
            "value": {
                "state": "running",
                "hostname": "worker-1",
                "unixname": "airflow",
                "pid": 4242,
                "start_date": "2026-01-01T12:00:00Z",
            },
        }
    },
    "TIHeartbeatInfo": {
        "heartbeat": {
            "summary": "the host and pid given to /run",
            "value": {"hostname": "worker-1", "pid": 4242},
        }
    },
    "TISkippedDownstreamTasksStatePayload": {
        "skip": {
            "summary": "task ids, or [task_id, map_index] pairs",
            "value": {"tasks": ["report", ["publish", 0]]},
        }
    },
}


def body_schema(component: str) -> dict[str, Any]:
    """`openapi_extra` of a route whose JSON body is the model registered as `component`."""
    if component not in BODY_MODELS:
        raise KeyError(component)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF_TEMPLATE.format(model=component)},
                    "examples": EXAMPLES.get(component, {}),
                }
            },
        }
    }


#: The parameters of every execution operation, as FastAPI described them when they were declared.
_API_VERSION_DESCRIPTION = (
    "Execution API version the client speaks (accepted, echoed as the server's version)"
)
EXECUTION_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "task_instance_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid", "title": "Task Instance Id"},
    },
    {
        "name": "Airflow-API-Version",
        "in": "header",
        "required": False,
        "schema": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": _API_VERSION_DESCRIPTION,
            "title": "Airflow-Api-Version",
        },
        "description": _API_VERSION_DESCRIPTION,
    },
]


def execution_operation(component: str) -> dict[str, Any]:
    """`openapi_extra` of an execution route: its parameters and its body `component`."""
    return {"parameters": [dict(p) for p in EXECUTION_PARAMETERS], **body_schema(component)}


def _model_components() -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name, model in BODY_MODELS.items():
        schema = TypeAdapter(model).json_schema(ref_template=REF_TEMPLATE, mode="validation")
        for def_name, definition in schema.pop("$defs", {}).items():
            components.setdefault(def_name, definition)
        if "title" not in schema:
            schema["title"] = name
        components[name] = schema
    return components


def build_openapi(app: FastAPI, described: Sequence[BaseRoute] = ()) -> dict[str, Any]:
    """The app's OpenAPI document (cached on the app, as FastAPI does): its FastAPI routes and
    the `described` ones (routes that describe served routes FastAPI does not see)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=[*described, *app.routes],
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _model_components().items():
        schemas.setdefault(name, schema)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    document["components"]["securitySchemes"] = {SECURITY_SCHEME: _BEARER}
    for path, operations in document.get("paths", {}).items():
        if path.startswith("/execution/"):
            for operation in operations.values():
                operation["security"] = [{SECURITY_SCHEME: []}]
    app.openapi_schema = document
    return document


def render_openapi(app: FastAPI) -> str:
    """The document as committed in docs/openapi.json (sorted keys, indent 2, final newline)."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def write_openapi(app: FastAPI, path: Path) -> None:
    path.write_text(render_openapi(app), encoding="utf-8")
