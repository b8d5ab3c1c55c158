"""The route table is complete, documented and installed on the worker's web server."""

from __future__ import annotations

import pytest

from bus.assembly import app
from bus.http.openapi import build_openapi
from bus.http.routes import ROUTES

EXPECTED = {
    ("POST", "/v1/topics"),
    ("GET", "/v1/topics"),
    ("GET", "/v1/topics/{namespace}/{tenant}/{name}"),
    ("DELETE", "/v1/topics/{namespace}/{tenant}/{name}"),
    ("PUT", "/v1/topics/{namespace}/{tenant}/{name}/schema"),
    ("DELETE", "/v1/topics/{namespace}/{tenant}/{name}/schema"),
    ("GET", "/v1/schemas"),
    ("POST", "/v1/schemas/{namespace}/{tenant}/{subject}/versions"),
    ("GET", "/v1/schemas/{namespace}/{tenant}/{subject}/versions"),
    ("GET", "/v1/schemas/{namespace}/{tenant}/{subject}/versions/{version}"),
    ("DELETE", "/v1/schemas/{namespace}/{tenant}/{subject}/versions/{version}"),
    ("POST", "/v1/schemas/{namespace}/{tenant}/{subject}/compatibility"),
    ("GET", "/v1/schemas/{namespace}/{tenant}/{subject}/config"),
    ("PUT", "/v1/schemas/{namespace}/{tenant}/{subject}/config"),
    ("POST", "/v1/publish"),
    ("POST", "/v1/publish/batch"),
    ("GET", "/v1/subscribe/{namespace}/{tenant}/{name}"),
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{namespace}/{tenant}/{id}"),
    ("DELETE", "/v1/subscriptions/{namespace}/{tenant}/{id}"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/{namespace}/{tenant}/{agent_id}"),
    ("DELETE", "/v1/agents/{namespace}/{tenant}/{agent_id}"),
    ("PUT", "/v1/agents/{namespace}/{tenant}/{agent_id}/state"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/heartbeat"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/messages"),
    ("GET", "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/pull"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/ack"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/nack"),
    ("POST", "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/release"),
    ("GET", "/v1/rules/{namespace}/{tenant}"),
    ("PUT", "/v1/rules/{namespace}/{tenant}"),
    ("DELETE", "/v1/rules/{namespace}/{tenant}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
}


def test_every_expected_route_is_declared() -> None:
    assert {(r.method, r.path) for r in ROUTES} >= EXPECTED


def test_every_declared_route_is_served() -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in app.web.web_app.router.routes()
        if route.resource is not None
    }
    for r in ROUTES:
        assert (r.method, r.path) in served


def test_openapi_documents_every_route_and_model() -> None:
    doc = build_openapi("test")
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        assert op["summary"] and op["responses"]
        if r.body is not None:
            assert r.body.__name__ in doc["components"]["schemas"]
    assert "ErrorBody" in doc["components"]["schemas"]


@pytest.mark.parametrize("r", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_declared_errors_are_error_statuses(r: object) -> None:
    assert all(400 <= s <= 599 for s in getattr(r, "errors", ()))
