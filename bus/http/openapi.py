"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bus.http.routes import ROUTES, Route
from bus.wire import ErrorBody

__all__ = ["build_openapi"]

REF = "#/components/schemas/{model}"


def build_openapi(version: str) -> dict[str, Any]:
    models = collect_models()
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = operation(r)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agentbus",
            "version": version,
            "description": "A message bus for fleets of AI agents, built on Apache Kafka.",
        },
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }


def collect_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorBody]
    for r in ROUTES:
        for m in (r.body, r.response):
            if m is not None and m not in found:
                found.append(m)
    return found


def operation(r: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": r.handler.__name__,
        "summary": r.summary,
        "tags": [r.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
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
    for status in r.errors:
        op["responses"][str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
        }
    return op


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
