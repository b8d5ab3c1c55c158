"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bus.http.access import Access
from bus.http.routes import ROUTES, Route
from bus.wire import PATH_PARAMETERS, ErrorBody

__all__ = ["build_openapi"]

REF = "#/components/schemas/{model}"
BEARER = "bearerKey"


def build_openapi(version: str) -> dict[str, Any]:
    models = collect_models()
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    ids: dict[str, Route] = {}
    for r in ROUTES:
        op = operation(r)
        clash = ids.setdefault(op["operationId"], r)
        assert clash is r, f"operationId {op['operationId']} names two routes"
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agentbus",
            "version": version,
            "description": "A message bus for fleets of AI agents, built on Apache Kafka.",
        },
        "security": [{BEARER: []}],  # every operation but the public ones (which say so)
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: 'Authorization: Bearer abk_<id>.<secret>' (docs/security.md)",
                }
            },
        },
    }


def operation_id(r: Route) -> str:
    """Unique per route: the primitive, the room when it is not plain http, the handler."""
    parts = r.handler.__module__.split(".")  # bus.<primitive>.<room>
    room = parts[-1].removesuffix("_http") if parts[-1] != "http" else ""
    return "_".join(p for p in (parts[1] if len(parts) > 2 else parts[-1], room, r.handler.__name__) if p)


def collect_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorBody]
    for r in ROUTES:
        for m in (r.body, r.response, *(model for _, model in r.answers)):
            if m is not None and m not in found:
                found.append(m)
    return found


def operation(r: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [r.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": path_schema(name)}
            for name in re.findall(r"{(\w+)}", r.path)
        ]
        + [
            {
                "name": p.name,
                "in": p.location,
                "required": False,
                "description": p.description,
                "schema": {"type": "string"},
            }
            for p in r.params
        ],
        "responses": {str(r.status): success(r)},
    }
    if r.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=r.body.__name__)}}},
        }
    if r.access is Access.PUBLIC:
        op["security"] = []
    statuses = sorted({*r.errors, *(() if r.access is Access.PUBLIC else (401, 403))})
    for status in statuses:
        op["responses"][str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
        }
    for status, model in r.answers:
        op["responses"][str(status)] = {
            "description": "Answered with this body, not an error body",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
    return op


def path_schema(name: str) -> dict[str, Any]:
    pattern = PATH_PARAMETERS.get(name)
    return {"type": "string", "pattern": pattern} if pattern is not None else {"type": "string"}


def success(r: Route) -> dict[str, Any]:
    if r.websocket:
        return {"description": "Switching Protocols: a WebSocket (its frames: docs/streams.md)"}
    if r.event_stream:
        return {
            "description": "Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    if r.response is None:
        return {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": REF.format(model=r.response.__name__)}}},
    }
