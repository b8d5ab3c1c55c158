"""The OpenAPI document is valid OpenAPI 3.1, and says how every operation is secured."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from bus.assembly import app  # noqa: F401  (importing the worker registers every route)
from bus.http.access import Access
from bus.http.openapi import build_openapi
from bus.http.routes import ROUTES
from bus.wire import PATH_PARAMETERS


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_the_document_passes_the_spec_validator() -> None:
    validate(build_openapi("0.0.0"))


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in operations(build_openapi("0"))]
    assert len(ids) == len(set(ids)) == len(ROUTES)


def test_every_protected_operation_needs_a_bearer_key_and_may_answer_401_and_403() -> None:
    doc = build_openapi("0")
    assert doc["components"]["securitySchemes"]["bearerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerKey"]["description"],
    }
    assert doc["security"] == [{"bearerKey": []}]
    public = {(r.method.lower(), r.path) for r in ROUTES if r.access is Access.PUBLIC}
    assert ("get", "/healthz") in public
    for path, method, op in operations(doc):
        if (method, path) in public:
            assert op["security"] == [] and "401" not in op["responses"]
        else:
            assert "security" not in op, (method, path)  # the document's default applies
            assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_path_parameters_carry_their_patterns() -> None:
    for path, method, op in operations(build_openapi("0")):
        for param in (p for p in op["parameters"] if p["in"] == "path"):
            assert param["schema"]["pattern"] == PATH_PARAMETERS[param["name"]], (method, path, param)
            assert re.compile(param["schema"]["pattern"])


def test_a_503_of_readyz_and_healthz_is_declared_as_the_health_body_it_is() -> None:
    paths = build_openapi("0")["paths"]
    for path in ("/readyz", "/healthz"):
        answers = paths[path]["get"]["responses"]
        health = {"$ref": "#/components/schemas/Health"}
        assert answers["503"]["content"]["application/json"]["schema"] == health
        assert answers["200"]["content"] == answers["503"]["content"]
    assert set(paths["/livez"]["get"]["responses"]) == {"200"}
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert paths["/v1/whoami"]["get"]["responses"]["401"]["content"]["application/json"]["schema"] == error
