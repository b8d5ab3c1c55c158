"""The schema registry and publish-edge validation, against the real fleet."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import end_offsets, kafka_topics, open_sse, unique

pytestmark = pytest.mark.integration

ORDER_V1: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "status": {"enum": ["new", "paid"]},
    },
    "required": ["id", "total"],
}


def subject_url(url: str, subject: str, tenant: str = "acme") -> str:
    return f"{url}/v1/schemas/it/{tenant}/{subject}"


async def register(http: aiohttp.ClientSession, url: str, subject: str, schema: Any) -> tuple[int, Any]:
    async with http.post(f"{subject_url(url, subject)}/versions", json={"schema": schema}) as r:
        return r.status, await r.json()


async def eventually(check: Any, within: float = 3.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)


async def test_register_dedupe_and_read_back(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    subject = unique("orders")
    status, v1 = await register(http, fleet.urls[0], subject, ORDER_V1)
    assert status == 201 and v1["version"] == 1 and len(v1["schema_id"]) == 64
    reordered = dict(reversed(list(ORDER_V1.items())))
    status, again = await register(http, fleet.urls[0], subject, reordered)
    assert status == 200 and again == v1  # identical schema: the existing version

    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions/latest") as r:
        assert r.status == 200 and (await r.json())["schema"] == ORDER_V1
    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions") as r:
        assert [v["version"] for v in (await r.json())["versions"]] == [1]
    async with http.get(f"{fleet.urls[0]}/v1/schemas", params={"namespace": "it", "tenant": "acme"}) as r:
        listed = {s["subject"]: s for s in (await r.json())["subjects"]}
    assert listed[subject]["latest"] == 1 and listed[subject]["compatibility"] == "BACKWARD"


async def test_backward_by_default_refuses_breaking_changes_with_pointers(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    subject = unique("orders")
    assert (await register(http, fleet.urls[0], subject, ORDER_V1))[0] == 201
    widened = {**ORDER_V1, "properties": {**ORDER_V1["properties"], "note": {"type": "string"}}}
    status, v2 = await register(http, fleet.urls[1], subject, widened)
    assert status == 201 and v2["version"] == 2

    narrowed = {
        **widened,
        "properties": {**widened["properties"], "status": {"enum": ["new"]}},
        "required": ["id", "total", "note"],
    }
    status, body = await register(http, fleet.urls[0], subject, narrowed)
    assert status == 409
    error = body["error"]
    assert error["code"] == "incompatible_schema"
    changes = {(c["change"], c["pointer"]) for c in error["details"]["breaking_changes"]}
    assert ("enum_value_removed", "/properties/status/enum") in changes
    assert any(change == "required_added" for change, _ in changes)
    assert error["details"]["compared_with"] == [2]
    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions") as r:
        assert [v["version"] for v in (await r.json())["versions"]] == [1, 2]  # nothing registered


async def test_compatibility_check_registers_nothing_and_modes_change(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    subject = unique("orders")
    await register(http, fleet.urls[0], subject, ORDER_V1)
    closed = {**ORDER_V1, "additionalProperties": False}
    async with http.post(  # the registering worker: it has v1 already
        f"{subject_url(fleet.urls[0], subject)}/compatibility", json={"schema": closed}
    ) as r:
        report = await r.json()
    assert report["compatible"] is False and report["mode"] == "BACKWARD"
    assert report["breaking_changes"][0]["change"] == "additional_properties_closed"
    async with http.post(
        f"{subject_url(fleet.urls[1], subject)}/compatibility", json={"schema": closed, "mode": "FORWARD"}
    ) as r:
        assert (await r.json())["compatible"] is True

    async with http.put(f"{subject_url(fleet.urls[0], subject)}/config", json={"compatibility": "NONE"}) as r:
        assert r.status == 200 and (await r.json())["compatibility"] == "NONE"
    status, v2 = await register(http, fleet.urls[0], subject, closed)
    assert status == 201 and v2["version"] == 2


@pytest.mark.parametrize(
    ("schema", "code"),
    [
        ({"type": "no-such-type"}, "invalid_schema"),
        ({"properties": {"a": {"minimum": "zero"}}}, "invalid_schema"),
        ({"$ref": "https://example.com/other.json"}, "invalid_schema"),
        ("just a string", "invalid_request"),
    ],
)
async def test_malformed_schemas_are_refused_with_the_reason(
    fleet: Fleet, http: aiohttp.ClientSession, schema: Any, code: str
) -> None:
    subject = unique("bad")
    status, body = await register(http, fleet.urls[0], subject, schema)
    assert (status, body["error"]["code"]) == (422, code)
    assert body["error"]["details"]
    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions") as r:
        assert r.status == 404  # nothing was registered


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/schemas/it/acme/never-registered/versions/latest", 404, "subject_not_found"),
        ("GET", "/v1/schemas/it/acme/never-registered/versions", 404, "subject_not_found"),
        ("GET", "/v1/schemas/it/acme/x/versions/zero", 400, "invalid_parameter"),
        ("GET", "/v1/schemas/IT/acme/x/versions", 400, "invalid_parameter"),
        ("POST", "/v1/schemas/bus/system/bus.envelope/versions", 403, "reserved_namespace"),
        ("PUT", "/v1/schemas/it/acme/x/config", 422, "invalid_request"),
    ],
)
async def test_bad_registry_requests(
    fleet: Fleet, http: aiohttp.ClientSession, method: str, path: str, status: int, code: str
) -> None:
    body: Any = (
        {"schema": {}} if method == "POST" else {"compatibility": "SIDEWAYS"} if method == "PUT" else None
    )
    async with http.request(method, f"{fleet.urls[0]}{path}", json=body) as r:
        assert r.status == status
        assert (await r.json())["error"]["code"] == code


async def test_unknown_version_is_404(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    subject = unique("orders")
    await register(http, fleet.urls[0], subject, ORDER_V1)
    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions/7") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "version_not_found"


async def bound_topic(
    http: aiohttp.ClientSession, fleet: Fleet, subject: str, version: Any = "latest"
) -> str:
    name = unique("bound")
    body = {
        "namespace": "it",
        "tenant": "acme",
        "name": name,
        "schema_binding": {"subject": subject, "version": version},
    }
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
        assert r.status == 201, await r.text()
        assert (await r.json())["schema_binding"] == {"subject": subject, "version": version}
    return name


async def records_on(fleet: Fleet, name: str) -> int:
    return sum((await end_offsets(fleet.bootstrap, f"{fleet.prefix}.it.acme.{name}")).values())


async def test_publish_to_a_bound_topic_is_validated_and_stamped(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    subject = unique("orders")
    _, v1 = await register(http, fleet.urls[0], subject, ORDER_V1)
    name = await bound_topic(http, fleet, subject)
    ref = f"it/acme/{name}"

    sse = await open_sse(http, f"{fleet.urls[0]}/v1/subscribe/{ref}?from=earliest")
    try:
        async with http.post(
            f"{fleet.urls[0]}/v1/publish", json={"topic": ref, "payload": {"id": "o1", "total": 5}}
        ) as r:
            assert r.status == 200, await r.text()
        headers = (await sse.next_event()).json["headers"]
        assert headers["bus.schema_subject"] == subject
        assert headers["bus.schema_version"] == "1"
        assert headers["bus.schema_id"] == v1["schema_id"]
    finally:
        sse.close()

    bad = {"topic": ref, "payload": {"id": 7, "total": -1, "status": "lost"}}
    async with http.post(f"{fleet.urls[1]}/v1/publish", json=bad) as r:
        assert r.status == 422
        error = (await r.json())["error"]
    assert error["code"] == "schema_violation"
    assert error["details"]["version"] == 1 and error["details"]["subject"] == subject
    found = {(v["pointer"], v["keyword"]) for v in error["details"]["violations"]}
    assert found == {("/id", "type"), ("/total", "minimum"), ("/status", "enum")}

    good = {"topic": ref, "payload": {"id": "o2", "total": 1}}
    missing = {"topic": ref, "payload": {"id": "o3"}}
    async with http.post(
        f"{fleet.urls[1]}/v1/publish/batch", json={"records": [good, missing, good, bad]}
    ) as r:
        assert r.status == 422
        details = (await r.json())["error"]["details"]
    assert [f["index"] for f in details["records"]] == [1, 3]
    assert details["records"][0]["violations"][0]["keyword"] == "required"
    await asyncio.sleep(0.3)
    assert await records_on(fleet, name) == 1  # only the first, valid publish


async def test_a_new_latest_version_is_used_at_once(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    subject = unique("orders")
    await register(http, fleet.urls[0], subject, ORDER_V1)
    name = await bound_topic(http, fleet, subject)
    async with http.put(f"{subject_url(fleet.urls[0], subject)}/config", json={"compatibility": "NONE"}) as r:
        assert r.status == 200
    stricter = {**ORDER_V1, "required": ["id", "total", "status"]}
    status, _ = await register(http, fleet.urls[1], subject, stricter)
    assert status == 201

    payload = {"topic": f"it/acme/{name}", "payload": {"id": "o1", "total": 2}}
    async with http.post(f"{fleet.urls[1]}/v1/publish", json=payload) as r:  # the registering worker
        assert r.status == 422 and (await r.json())["error"]["details"]["version"] == 2

    async def refused_on_other_worker() -> bool:
        async with http.post(f"{fleet.urls[0]}/v1/publish", json=payload) as r:
            return r.status == 422

    assert await eventually(refused_on_other_worker)


async def test_binding_checks_and_schema_in_use(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    missing = {
        "namespace": "it",
        "tenant": "acme",
        "name": unique("t"),
        "schema_binding": {"subject": "nothing-here"},
    }
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=missing) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "subject_not_found"
    assert f"{fleet.prefix}.it.acme.{missing['name']}" not in await kafka_topics(fleet.bootstrap)

    subject = unique("orders")
    await register(http, fleet.urls[0], subject, ORDER_V1)
    other_tenant = {
        "namespace": "it",
        "tenant": "globex",
        "name": unique("t"),
        "schema_binding": {"subject": subject},
    }
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=other_tenant) as r:
        assert r.status == 404  # subjects are per tenant

    name = await bound_topic(http, fleet, subject, version=1)
    async with http.delete(f"{subject_url(fleet.urls[1], subject)}/versions/1") as r:
        assert r.status == 409
        error = (await r.json())["error"]
    assert error["code"] == "schema_in_use" and error["details"]["topics"] == [f"it/acme/{name}"]

    async with http.delete(f"{fleet.urls[0]}/v1/topics/it/acme/{name}/schema") as r:
        assert r.status == 200 and (await r.json())["schema_binding"] is None
    async with http.post(
        f"{fleet.urls[0]}/v1/publish", json={"topic": f"it/acme/{name}", "payload": "anything"}
    ) as r:
        assert r.status == 200  # unbound: not validated any more
    async with http.delete(f"{subject_url(fleet.urls[0], subject)}/versions/1") as r:
        assert r.status == 200
    async with http.get(f"{subject_url(fleet.urls[0], subject)}/versions/1") as r:
        assert r.status == 404
    async with http.put(f"{fleet.urls[0]}/v1/topics/it/acme/{name}/schema", json={"subject": subject}) as r:
        assert r.status == 404  # no live version left to bind to


async def test_the_bus_publishes_its_own_envelope_schemas(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async def envelope_schema() -> Any:
        async with http.get(f"{fleet.urls[1]}/v1/schemas/bus/system/bus.envelope/versions/latest") as r:
            return await r.json() if r.status == 200 else None

    found = await eventually(envelope_schema, within=20)
    assert found is not None
    assert set(found["schema"]["required"]) == {"topic", "payload"}


async def test_schemas_whose_refs_never_resolve_are_refused_at_registration(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    for schema in ({"$ref": "#"}, {"$ref": "#/$defs/nowhere"}, {"allOf": [{"$ref": "#"}]}):
        async with http.post(
            f"{fleet.urls[0]}/v1/schemas/it/acme/{unique('refs')}/versions", json={"schema": schema}
        ) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (422, "invalid_schema"), (schema, body)
    agent = {
        "namespace": "it",
        "tenant": "acme",
        "id": unique("refs-agent"),
        "capabilities": [{"name": "loop", "input_schema": {"$ref": "#"}}],
    }
    async with http.post(f"{fleet.urls[1]}/v1/agents", json=agent) as r:
        body = await r.json()
        assert (r.status, body["error"]["code"]) == (422, "invalid_schema"), body
