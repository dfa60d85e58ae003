"""The OpenAPI document: FastAPI's, with the request bodies taken from the library's models.

Bodies are validated from raw JSON (see `body`), so FastAPI does not see them as parameters; each
route names its body model with `body_schema(...)` and `build_openapi()` adds the models' JSON
schemas (pydantic's, validation mode) to `components.schemas`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from .. import models

__all__ = ["BODY_MODELS", "body_schema", "build_openapi", "render_openapi", "write_openapi"]

REF_TEMPLATE = "#/components/schemas/{model}"

#: Component name -> the type its schema is generated from.
BODY_MODELS: dict[str, Any] = {
    "TIStateUpdate": models.TIStateUpdate,
    "TIEnterRunningPayload": models.TIEnterRunningPayload,
    "TIHeartbeatInfo": models.TIHeartbeatInfo,
    "TISkippedDownstreamTasksStatePayload": models.TISkippedDownstreamTasksStatePayload,
}


def body_schema(component: str) -> dict[str, Any]:
    """`openapi_extra` of a route whose JSON body is the model registered as `component`."""
    if component not in BODY_MODELS:
        raise KeyError(component)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=component)}}
            },
        }
    }


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


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (cached on the app, as FastAPI does)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _model_components().items():
        schemas.setdefault(name, schema)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    app.openapi_schema = document
    return document


def render_openapi(app: FastAPI) -> str:
    """The document as committed in docs/openapi.json (sorted keys, indent 2, final newline)."""
    return json.dumps(build_openapi(app), indent=2, sort_keys=True) + "\n"


def write_openapi(app: FastAPI, path: Path) -> None:
    path.write_text(render_openapi(app), encoding="utf-8")
