"""Authorization: a matrix over every declared route, key lifecycle, and tenant isolation.

The matrix is generated from the route table: a route without an example request here
fails test_every_route_has_a_matrix_example, so no endpoint escapes the matrix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

import bus.assembly  # noqa: F401  (registers every route, so ROUTES is complete at collection)
from bus.http.access import Access
from bus.http.routes import ROUTES, Route
from tests.fleet import Fleet
from tests.helpers import unique

pytestmark = pytest.mark.integration

ALL = ["read", "write", "manage"]


@dataclass
class Example:
    path: str
    body: Any
    success: int


Factory = Callable[[aiohttp.ClientSession, str], Awaitable[Example]]


async def create_key(http: aiohttp.ClientSession, url: str, spec: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{url}/v1/keys", json={"name": unique("k"), **spec}) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
    return created


def tenant_key(actions: list[str], tenant: str = "acme", topics: str = "*") -> dict[str, Any]:
    return {
        "role": "tenant",
        "namespace": "it",
        "tenant": tenant,
        "grants": [{"topics": topics, "actions": actions}],
    }


async def admin_post(http: aiohttp.ClientSession, url: str, path: str, body: Any) -> Any:
    async with http.post(f"{url}{path}", json=body) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def new_topic(http: aiohttp.ClientSession, url: str) -> str:
    name = unique("m")
    await admin_post(
        http, url, "/v1/topics", {"namespace": "it", "tenant": "acme", "name": name, "partitions": 1}
    )
    return name


async def new_subject(http: aiohttp.ClientSession, url: str) -> str:
    subject = unique("s")
    await admin_post(http, url, f"/v1/schemas/it/acme/{subject}/versions", {"schema": {"type": "object"}})
    return subject


# Rules apply to every topic of it/acme, which other tests publish to: match no topic.
HARMLESS_RULES = {
    "rules": [
        {"id": "matrix", "match": {"topics": "no-such-topic"}, "action": {"type": "deny", "reason": "m"}}
    ]
}


def examples() -> dict[tuple[str, str], Factory]:
    """One request per route that the admin key (and a fully granted key) can make succeed."""
    t = "/v1/topics/{namespace}/{tenant}/{name}"
    s = "/v1/schemas/{namespace}/{tenant}/{subject}"
    sp = "/v1/subscriptions/{namespace}/{tenant}/{id}"
    ag = "/v1/agents/{namespace}/{tenant}/{agent_id}"
    cp = "/v1/conversations/{namespace}/{tenant}/{id}"

    async def topic_create(http: aiohttp.ClientSession, url: str) -> Example:
        return Example("/v1/topics", {"namespace": "it", "tenant": "acme", "name": unique("c")}, 201)

    async def fixed(path: str, body: Any = None, success: int = 200) -> Example:
        return Example(path, body, success)

    async def on_topic(http: aiohttp.ClientSession, url: str, suffix: str = "", body: Any = None) -> Example:
        return Example(f"/v1/topics/it/acme/{await new_topic(http, url)}{suffix}", body, 200)

    async def bind(http: aiohttp.ClientSession, url: str) -> Example:
        subject = await new_subject(http, url)
        return await on_topic(http, url, "/schema", {"subject": subject})

    async def publish(http: aiohttp.ClientSession, url: str) -> Example:
        return Example("/v1/publish", {"topic": f"it/acme/{await new_topic(http, url)}", "payload": 1}, 200)

    async def batch(http: aiohttp.ClientSession, url: str) -> Example:
        ref = f"it/acme/{await new_topic(http, url)}"
        return Example("/v1/publish/batch", {"records": [{"topic": ref, "payload": 1}]}, 200)

    async def subject(http: aiohttp.ClientSession, url: str, suffix: str = "", body: Any = None) -> Example:
        return Example(f"/v1/schemas/it/acme/{await new_subject(http, url)}{suffix}", body, 200)

    async def register(http: aiohttp.ClientSession, url: str) -> Example:
        return Example(f"/v1/schemas/it/acme/{unique('r')}/versions", {"schema": {"type": "string"}}, 201)

    async def key(http: aiohttp.ClientSession, url: str, suffix: str = "") -> Example:
        created = await create_key(http, url, tenant_key(["read"]))
        return Example(f"/v1/keys/{created['id']}{suffix}", None, 200)

    return {
        ("POST", "/v1/topics"): topic_create,
        ("GET", "/v1/topics"): lambda h, u: fixed("/v1/topics"),
        ("GET", t): lambda h, u: on_topic(h, u),
        ("DELETE", t): lambda h, u: on_topic(h, u),
        ("PUT", t + "/schema"): bind,
        ("DELETE", t + "/schema"): lambda h, u: on_topic(h, u, "/schema"),
        ("POST", "/v1/publish"): publish,
        ("POST", "/v1/publish/batch"): batch,
        ("GET", "/v1/subscribe/{namespace}/{tenant}/{name}"): lambda h, u: sub_example(h, u),
        ("POST", "/v1/subscriptions"): subscription_create,
        ("GET", "/v1/subscriptions"): lambda h, u: fixed("/v1/subscriptions"),
        ("GET", sp): lambda h, u: on_subscription(h, u),
        ("DELETE", sp): lambda h, u: on_subscription(h, u),
        ("POST", sp + "/pull"): lambda h, u: on_subscription(h, u, "/pull", {"wait_ms": 0}),
        ("POST", sp + "/ack"): lambda h, u: with_delivery(h, u, "/ack"),
        ("POST", sp + "/nack"): lambda h, u: with_delivery(h, u, "/nack"),
        ("POST", sp + "/release"): lambda h, u: on_subscription(h, u, "/release", {"session": "s1"}),
        ("GET", sp + "/lag"): lambda h, u: on_subscription(h, u, "/lag"),
        ("POST", sp + "/seek"): lambda h, u: on_subscription(h, u, "/seek", {"position": "latest"}),
        ("GET", sp + "/events"): lambda h, u: on_subscription(h, u, "/events"),
        ("GET", sp + "/dead-letters"): lambda h, u: on_subscription(h, u, "/dead-letters"),
        ("POST", sp + "/dead-letters/redrive"): lambda h, u: on_subscription(
            h, u, "/dead-letters/redrive", {"all": True}
        ),
        ("POST", "/v1/conversations"): lambda h, u: fixed(
            "/v1/conversations", {"namespace": "it", "tenant": "acme", "id": unique("c")}, 201
        ),
        ("GET", "/v1/conversations"): lambda h, u: fixed("/v1/conversations"),
        ("GET", cp): lambda h, u: on_conversation(h, u),
        ("DELETE", cp): lambda h, u: on_conversation(h, u),
        ("POST", cp + "/transition"): lambda h, u: on_conversation(h, u, "/transition", {"to": "paused"}),
        ("POST", cp + "/messages"): lambda h, u: on_conversation(
            h, u, "/messages", {"sender": "a", "payload": 1}, 201
        ),
        ("GET", cp + "/messages"): lambda h, u: on_conversation(h, u, "/messages"),
        ("GET", cp + "/stream"): lambda h, u: on_conversation(h, u, "/stream"),
        ("POST", "/v1/agents"): lambda h, u: fixed(
            "/v1/agents", {"namespace": "it", "tenant": "acme", "id": unique("ag")}, 201
        ),
        ("GET", "/v1/agents"): lambda h, u: fixed("/v1/agents"),
        ("GET", ag): lambda h, u: on_agent(h, u),
        ("DELETE", ag): lambda h, u: on_agent(h, u),
        ("PUT", ag + "/state"): lambda h, u: on_agent(h, u, "/state", {"state": "draining"}),
        ("POST", ag + "/heartbeat"): lambda h, u: on_agent(h, u, "/heartbeat", {}, 202),
        ("POST", ag + "/messages"): lambda h, u: on_agent(h, u, "/messages", {"payload": 1}),
        ("GET", ag + "/inbox"): lambda h, u: on_agent(h, u, "/inbox"),
        ("POST", ag + "/inbox/pull"): lambda h, u: on_agent(h, u, "/inbox/pull", {"wait_ms": 0}),
        ("POST", ag + "/inbox/ack"): lambda h, u: with_inbox_delivery(h, u, "/ack"),
        ("POST", ag + "/inbox/nack"): lambda h, u: with_inbox_delivery(h, u, "/nack"),
        ("POST", ag + "/inbox/release"): lambda h, u: on_agent(h, u, "/inbox/release", {"session": "s1"}),
        ("POST", cp + "/tool-calls"): lambda h, u: with_tool_call(h, u, "place"),
        ("POST", cp + "/tool-results"): lambda h, u: with_tool_call(h, u, "result"),
        ("GET", "/v1/tool-calls/{namespace}/{tenant}/{call_id}"): lambda h, u: with_tool_call(h, u, "get"),
        ("POST", "/v1/tool-calls/{namespace}/{tenant}/{call_id}/cancel"): lambda h, u: with_tool_call(
            h, u, "cancel"
        ),
        ("GET", "/v1/tool-calls/{namespace}/{tenant}/{call_id}/location"): lambda h, u: with_tool_call(
            h, u, "location"
        ),
        ("POST", cp + "/stream-chunks"): lambda h, u: on_conversation(
            h, u, "/stream-chunks", {"stream_id": "s", "chunk_seq": 0, "data": "x"}
        ),
        ("POST", cp + "/stream-end"): lambda h, u: on_conversation(h, u, "/stream-end", {"stream_id": "s"}),
        ("GET", "/v1/streams/{namespace}/{tenant}/{conversation_id}/{stream_id}"): lambda h, u: on_stream(
            h, u, ""
        ),
        # A plain GET: past authorization, then refused for want of the WebSocket upgrade.
        ("GET", "/v1/streams/{namespace}/{tenant}/{conversation_id}/{stream_id}/write"): lambda h, u: (
            on_stream(h, u, "/write", None, 400)
        ),
        ("POST", "/v1/streams/{namespace}/{tenant}/{conversation_id}/{stream_id}/cancel"): lambda h, u: (
            on_stream(h, u, "/cancel", {})
        ),
        ("GET", "/v1/approvals/{namespace}/{tenant}"): lambda h, u: fixed(
            "/v1/approvals/it/acme?state=approved"
        ),
        ("GET", "/v1/approvals/{namespace}/{tenant}/{approval_id}"): lambda h, u: with_approval(h, u, ""),
        ("POST", "/v1/approvals/{namespace}/{tenant}/{approval_id}/approve"): lambda h, u: with_approval(
            h, u, "/approve"
        ),
        ("POST", "/v1/approvals/{namespace}/{tenant}/{approval_id}/reject"): lambda h, u: with_approval(
            h, u, "/reject"
        ),
        ("GET", "/v1/schemas"): lambda h, u: fixed("/v1/schemas"),
        ("POST", s + "/versions"): register,
        ("GET", s + "/versions"): lambda h, u: subject(h, u, "/versions"),
        ("GET", s + "/versions/{version}"): lambda h, u: subject(h, u, "/versions/latest"),
        ("DELETE", s + "/versions/{version}"): lambda h, u: subject(h, u, "/versions/1"),
        ("POST", s + "/compatibility"): lambda h, u: subject(h, u, "/compatibility", {"schema": {}}),
        ("GET", s + "/config"): lambda h, u: subject(h, u, "/config"),
        ("PUT", s + "/config"): lambda h, u: subject(h, u, "/config", {"compatibility": "FULL"}),
        ("POST", "/v1/keys"): lambda h, u: fixed("/v1/keys", {"name": "n", **tenant_key(["read"])}, 201),
        ("GET", "/v1/keys"): lambda h, u: fixed("/v1/keys"),
        ("GET", "/v1/keys/{key_id}"): lambda h, u: key(h, u),
        ("DELETE", "/v1/keys/{key_id}"): lambda h, u: key(h, u),
        ("POST", "/v1/keys/{key_id}/rotate"): lambda h, u: key(h, u, "/rotate"),
        ("GET", "/v1/audit"): lambda h, u: fixed("/v1/audit?limit=1"),
        ("PUT", "/v1/keys/{key_id}/quota"): lambda h, u: key_quota(h, u),
        ("GET", "/v1/quotas/{namespace}/{tenant}"): lambda h, u: fixed("/v1/quotas/it/acme"),
        ("PUT", "/v1/quotas/{namespace}/{tenant}"): lambda h, u: fixed(
            f"/v1/quotas/it/{unique('qt')}", {"publish_records_per_s": 100}
        ),
        ("GET", "/v1/rules/{namespace}/{tenant}"): lambda h, u: fixed("/v1/rules/it/acme"),
        ("PUT", "/v1/rules/{namespace}/{tenant}"): lambda h, u: fixed("/v1/rules/it/acme", HARMLESS_RULES),
        ("DELETE", "/v1/rules/{namespace}/{tenant}"): lambda h, u: fixed("/v1/rules/it/acme"),
        ("GET", "/healthz"): lambda h, u: fixed("/healthz"),
        ("GET", "/livez"): lambda h, u: fixed("/livez"),
        ("GET", "/readyz"): lambda h, u: fixed("/readyz"),
        ("GET", "/metrics"): lambda h, u: fixed("/metrics"),
        ("GET", "/openapi.json"): lambda h, u: fixed("/openapi.json"),
        ("GET", "/v1/whoami"): lambda h, u: fixed("/v1/whoami"),
        ("GET", "/v1/workers"): lambda h, u: fixed("/v1/workers"),
        ("GET", "/v1/watch"): lambda h, u: fixed("/v1/watch?path=/healthz"),
        ("GET", ag + "/inbox/lag"): lambda h, u: on_agent(h, u, "/inbox/lag"),
    }


async def key_quota(http: aiohttp.ClientSession, url: str) -> Example:
    created = await create_key(http, url, tenant_key(["read"]))
    return Example(f"/v1/keys/{created['id']}/quota", {"publish_records_per_s": 5}, 200)


async def sub_example(http: aiohttp.ClientSession, url: str) -> Example:
    return Example(f"/v1/subscribe/it/acme/{await new_topic(http, url)}", None, 200)


async def subscription_create(http: aiohttp.ClientSession, url: str) -> Example:
    body = {"namespace": "it", "tenant": "acme", "id": unique("s"), "topic": await new_topic(http, url)}
    return Example("/v1/subscriptions", body, 201)


async def on_subscription(
    http: aiohttp.ClientSession, url: str, suffix: str = "", body: Any = None
) -> Example:
    create = await subscription_create(http, url)
    await admin_post(http, url, create.path, create.body)
    return Example(f"/v1/subscriptions/it/acme/{create.body['id']}{suffix}", body, 200)


async def on_conversation(
    http: aiohttp.ClientSession, url: str, suffix: str = "", body: Any = None, success: int = 200
) -> Example:
    created = await admin_post(http, url, "/v1/conversations", {"namespace": "it", "tenant": "acme"})
    return Example(f"/v1/conversations/it/acme/{created['id']}{suffix}", body, success)


async def on_stream(
    http: aiohttp.ClientSession, url: str, suffix: str, body: Any = None, success: int = 200
) -> Example:
    created = await admin_post(http, url, "/v1/conversations", {"namespace": "it", "tenant": "acme"})
    return Example(f"/v1/streams/it/acme/{created['id']}/s{suffix}", body, success)


async def with_approval(http: aiohttp.ClientSession, url: str, suffix: str) -> Example:
    """A parked call to a tool that needs approval; the example looks at it or decides it."""
    agent = unique("ag")
    tool = {"name": "pay", "requires_approval": True}
    await admin_post(
        http, url, "/v1/agents", {"namespace": "it", "tenant": "acme", "id": agent, "capabilities": [tool]}
    )
    created = await admin_post(http, url, "/v1/conversations", {"namespace": "it", "tenant": "acme"})
    spec = {"tool": "pay", "caller": agent, "callee": agent}
    parked = await admin_post(http, url, f"/v1/conversations/it/acme/{created['id']}/tool-calls", spec)
    body = {"digest": parked["approval_digest"]} if suffix else None
    return Example(f"/v1/approvals/it/acme/{parked['approval_id']}{suffix}", body, 200)


TOOL = {"name": "echo", "input_schema": {"type": "object"}}


async def with_tool_call(http: aiohttp.ClientSession, url: str, what: str) -> Example:
    """A conversation with an agent offering a tool, and (but for 'place') a pending call to it."""
    agent = unique("ag")
    await admin_post(
        http, url, "/v1/agents", {"namespace": "it", "tenant": "acme", "id": agent, "capabilities": [TOOL]}
    )
    created = await admin_post(http, url, "/v1/conversations", {"namespace": "it", "tenant": "acme"})
    conv = f"/v1/conversations/it/acme/{created['id']}"
    spec = {"tool": "echo", "caller": agent, "callee": agent}
    if what == "place":
        return Example(conv + "/tool-calls", spec, 201)
    placed = await admin_post(http, url, conv + "/tool-calls", spec)
    call_path = f"/v1/tool-calls/it/acme/{placed['call_id']}"
    if what == "result":
        return Example(
            conv + "/tool-results", {"call_id": placed["call_id"], "status": "ok", "result": 1}, 200
        )
    if what == "cancel":
        return Example(call_path + "/cancel", {}, 200)
    if what == "location":
        return Example(call_path + "/location", None, 200)
    return Example(call_path, None, 200)


async def with_delivery(http: aiohttp.ClientSession, url: str, suffix: str) -> Example:
    """A subscription with one record delivered (to the admin): the example settles it."""
    create = await subscription_create(http, url)
    await admin_post(http, url, create.path, {**create.body, "start": "earliest"})
    await admin_post(http, url, "/v1/publish", {"topic": f"it/acme/{create.body['topic']}", "payload": 1})
    path = f"/v1/subscriptions/it/acme/{create.body['id']}"
    pulled = await admin_post(http, url, path + "/pull", {"wait_ms": 5000})
    [delivery] = pulled["deliveries"]
    return Example(path + suffix, {"delivery_ids": [delivery["delivery_id"]]}, 200)


async def on_agent(
    http: aiohttp.ClientSession, url: str, suffix: str = "", body: Any = None, success: int = 200
) -> Example:
    agent_id = unique("ag")
    await admin_post(http, url, "/v1/agents", {"namespace": "it", "tenant": "acme", "id": agent_id})
    return Example(f"/v1/agents/it/acme/{agent_id}{suffix}", body, success)


async def with_inbox_delivery(http: aiohttp.ClientSession, url: str, suffix: str) -> Example:
    """An agent with one message delivered (to the admin): the example settles it."""
    agent = await on_agent(http, url)
    await admin_post(http, url, agent.path + "/messages", {"payload": 1})
    pulled = await admin_post(http, url, agent.path + "/inbox/pull", {"wait_ms": 5000})
    [delivery] = pulled["deliveries"]
    return Example(agent.path + "/inbox" + suffix, {"delivery_ids": [delivery["delivery_id"]]}, 200)


def test_every_route_has_a_matrix_example() -> None:
    missing = {(r.method, r.path) for r in ROUTES} - set(examples())
    assert not missing, f"add these routes to the authorization matrix: {sorted(missing)}"


def other_actions(route: Route) -> list[str]:
    action = route.access.action
    return [a for a in ALL if action is None or a != action.value] or ["read"]


def expected(route: Route, who: str, success: int) -> int:
    if route.access is Access.PUBLIC:
        return success
    if who in ("none", "revoked"):
        return 401
    if route.access is Access.AUTHENTICATED:
        return success
    if route.access is Access.ADMIN:
        return success if who == "admin" else 403
    return success if who in ("admin", "own") else 403


async def call(url: str, route: Route, example: Example, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        kwargs: dict[str, Any] = {} if example.body is None else {"json": example.body}
        async with session.request(route.method, f"{url}{example.path}", **kwargs) as r:
            if r.status >= 400:
                body = await r.json()
                assert set(body["error"]) == {"code", "message", "details"}
                assert key is None or key not in await r.text()  # secrets never echo back
            return r.status


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_authorization_matrix(fleet: Fleet, http: aiohttp.ClientSession, route: Route) -> None:
    url = fleet.urls[0]
    revoked = await create_key(http, url, tenant_key(ALL))
    async with http.delete(f"{url}/v1/keys/{revoked['id']}") as r:
        assert r.status == 200
    keys = {
        "admin": fleet.admin_key,
        "own": (await create_key(http, url, tenant_key(ALL)))["secret"],
        "own-without": (await create_key(http, url, tenant_key(other_actions(route))))["secret"],
        "other": (await create_key(http, url, tenant_key(ALL, tenant="globex")))["secret"],
        "none": None,
        "revoked": revoked["secret"],
    }
    factory = examples()[(route.method, route.path)]
    got: dict[str, int] = {}
    want: dict[str, int] = {}
    for who, key in keys.items():
        example = await factory(http, url)  # fresh resources: a success must not hide a later denial
        got[who] = await call(url, route, example, key)
        want[who] = expected(route, "own" if who == "own" else who, example.success)
        if who == "own-without" and route.access not in (Access.PUBLIC, Access.AUTHENTICATED, Access.ADMIN):
            want[who] = 403
        elif who == "own-without":
            want[who] = expected(route, "own-without", example.success)
    assert got == want


async def test_key_lifecycle_and_rotation(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[0]
    created = await create_key(http, url, tenant_key(["read"]))
    assert created["secret"].startswith("abk_")
    async with http.get(f"{url}/v1/keys") as r:
        text = await r.text()
    assert created["id"] in text and created["secret"] not in text and "secret_hash" not in text

    async def status_with(secret: str, where: str = url) -> int:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as s:
            async with s.get(f"{where}/v1/topics") as r:
                return r.status

    assert await status_with(created["secret"]) == 200
    async with http.post(f"{url}/v1/keys/{created['id']}/rotate") as r:
        rotated = await r.json()
    assert rotated["id"] == created["id"] and rotated["secret"] != created["secret"]
    assert await status_with(created["secret"]) == 401
    assert await status_with(rotated["secret"]) == 200

    async with http.delete(f"{url}/v1/keys/{created['id']}") as r:
        assert (await r.json())["revoked_at"] is not None
    assert await status_with(rotated["secret"]) == 401
    deadline = time.monotonic() + 5  # the other worker: within seconds
    while await status_with(rotated["secret"], fleet.urls[1]) != 401:
        assert time.monotonic() < deadline, "revocation did not reach the other worker"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        ("Basic abc", "unauthenticated"),
        ("Bearer ", "unauthenticated"),
        ("Bearer abk_nope.nope", "invalid_key"),
        ("Bearer " + "x" * 300, "invalid_key"),
    ],
)
async def test_bad_credentials_are_401(fleet: Fleet, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header else {}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{fleet.urls[1]}/v1/topics") as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == code


async def test_tenant_keys_see_only_their_own(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[0]
    own = await new_topic(http, url)
    secret_topic = unique("x")
    await admin_post(http, url, "/v1/topics", {"namespace": "it", "tenant": "globex", "name": secret_topic})
    narrow = (await create_key(http, url, tenant_key(["read"], topics="m-*")))["secret"]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {narrow}"}) as s:
        async with s.get(f"{url}/v1/topics") as r:
            names = {t["name"] for t in (await r.json())["topics"]}
        assert own in names and secret_topic not in names
        assert all(n.startswith("m-") for n in names)
        async with s.get(f"{url}/v1/subscribe/it/globex/{secret_topic}") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "tenant_forbidden"
            assert secret_topic not in await r.text()
        async with s.post(f"{url}/v1/publish", json={"topic": f"it/acme/{own}", "payload": 1}) as r:
            body = await r.json()
            assert r.status == 403 and body["error"]["code"] == "permission_missing"
            assert body["error"]["details"]["permission"] == "write"


async def test_bad_key_specs_are_422(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    for spec in (
        {"name": "a", "role": "tenant"},
        {"name": "a", "role": "admin", "tenant": "acme"},
        {
            "name": "a",
            "role": "tenant",
            "namespace": "it",
            "tenant": "acme",
            "grants": [{"topics": "*", "actions": ["fly"]}],
        },
        {"name": "", "role": "admin"},
    ):
        async with http.post(f"{fleet.urls[0]}/v1/keys", json=spec) as r:
            assert r.status == 422, spec
    async with http.get(f"{fleet.urls[0]}/v1/keys/{uuid.uuid4().hex[:16]}") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "key_not_found"


async def test_secrets_never_reach_the_logs(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    created = await create_key(http, fleet.urls[0], tenant_key(["read"]))
    headers = {"Authorization": f"Bearer {created['secret']}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for url in fleet.urls:
            for method, path in (
                ("GET", "/v1/topics"),
                ("POST", "/v1/keys"),
                ("GET", "/v1/subscribe/it/x/y"),
            ):
                async with s.request(method, f"{url}{path}") as r:
                    assert r.status in (200, 403)
    async with http.post(f"{fleet.urls[1]}/v1/keys/{created['id']}/rotate") as r:
        rotated = (await r.json())["secret"]
    for worker in fleet.workers:
        log = worker.log_path.read_text(errors="replace")
        assert created["secret"] not in log and rotated not in log
        assert fleet.admin_key not in log
