"""What the clients send for a call and what they make of the answer (a fake fleet)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import agentbus_client as ab
from agentbus_client import AsyncClient, Client

from .conftest import FAST_RETRY, Recorder

TOPIC = {
    "namespace": "demo",
    "tenant": "acme",
    "name": "orders",
    "kafka_topic": "agentbus.demo.acme.orders",
    "partitions": 3,
    "replication_factor": 1,
    "created_at": "2026-12-01T00:00:00Z",
}
RESULT = {"topic": "demo/acme/orders", "partition": 1, "offset": 7, "message_id": "m-1", "timestamp": 5}


def fleet(answers: dict[tuple[str, str], Any], status: int = 200) -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        found = answers.get((request.method, request.url.path))
        if found is None:
            return httpx.Response(404, json={"error": {"code": "route_not_found", "message": "no"}})
        return httpx.Response(status, json=found)

    return Recorder(answer)


def async_client(recorder: Recorder, **options: Any) -> AsyncClient:
    return AsyncClient(
        "http://bus",
        "k3y",
        namespace="demo",
        tenant="acme",
        agent_id="planner",
        transport=httpx.MockTransport(recorder),
        retry=FAST_RETRY,
        **options,
    )


def sync_client(recorder: Recorder) -> Client:
    return Client(
        "http://bus",
        "k3y",
        namespace="demo",
        tenant="acme",
        agent_id="planner",
        transport=httpx.MockTransport(recorder),
        retry=FAST_RETRY,
    )


async def test_create_topic_sends_the_spec_and_parses_the_topic() -> None:
    recorder = fleet({("POST", "/v1/topics"): TOPIC}, status=201)
    async with async_client(recorder) as bus:
        topic = await bus.topics.create("orders", partitions=3, labels={"team": "a"})
    assert isinstance(topic, ab.models.Topic) and topic.kafka_topic == "agentbus.demo.acme.orders"
    sent = recorder.sent[0]
    assert sent.headers["authorization"] == "Bearer k3y"
    assert recorder.body() == {
        "namespace": "demo",
        "tenant": "acme",
        "name": "orders",
        "partitions": 3,
        "labels": {"team": "a"},
    }


def test_sync_client_sends_the_same() -> None:
    recorder = fleet({("POST", "/v1/topics"): TOPIC}, status=201)
    with sync_client(recorder) as bus:
        topic = bus.topics.create("demo/acme/orders", partitions=3, labels={"team": "a"})
    assert topic.name == "orders"
    assert recorder.body()["partitions"] == 3


async def test_publish_names_the_topic_in_full_and_makes_a_message_id() -> None:
    recorder = fleet({("POST", "/v1/publish"): RESULT})
    async with async_client(recorder) as bus:
        result = await bus.publish("orders", {"total": 42}, key="o-1", headers={"trace": "t"})
    body = recorder.body()
    assert body["topic"] == "demo/acme/orders" and body["payload"] == {"total": 42} and body["key"] == "o-1"
    assert len(body["message_id"]) == 32
    assert (result.partition, result.offset) == (1, 7)


async def test_a_bad_body_is_refused_before_anything_is_sent() -> None:
    recorder = fleet({})
    async with async_client(recorder) as bus:
        with pytest.raises(ValueError):
            await bus.topics.create("Not A Name")
    assert recorder.sent == []


async def test_retriable_answers_are_retried_until_one_succeeds() -> None:
    answers = iter(
        [
            httpx.Response(503, json={"error": {"code": "owner_moved", "message": "moving"}}),
            httpx.Response(
                429, headers={"Retry-After": "0"}, json={"error": {"code": "quota_exceeded", "message": "q"}}
            ),
            httpx.Response(200, json=RESULT),
        ]
    )
    recorder = Recorder(lambda _: next(answers))
    async with async_client(recorder) as bus:
        result = await bus.publish("orders", 1)
    assert result.offset == 7 and len(recorder.sent) == 3
    ids = {json.loads(r.content)["message_id"] for r in recorder.sent}
    assert len(ids) == 1  # the retries repeat the message id


async def test_a_refusal_raises_its_typed_error_at_once() -> None:
    recorder = Recorder(
        lambda _: httpx.Response(
            404, json={"error": {"code": "topic_not_found", "message": "x", "details": {"t": 1}}}
        )
    )
    async with async_client(recorder) as bus:
        with pytest.raises(ab.TopicNotFound) as raised:
            await bus.topics.get("orders")
    assert raised.value.details == {"t": 1} and len(recorder.sent) == 1


async def test_retriable_errors_raise_when_the_budget_is_spent() -> None:
    recorder = Recorder(lambda _: httpx.Response(503, json={"error": {"code": "not_ready", "message": "n"}}))
    async with async_client(recorder) as bus:
        with pytest.raises(ab.NotReady):
            await bus.topics.get("orders")
    assert len(recorder.sent) == FAST_RETRY.attempts


async def test_a_connection_failure_moves_to_the_next_url() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=TOPIC)

    recorder = Recorder(answer)
    bus = AsyncClient(
        ["http://down", "http://up"],
        "k",
        namespace="demo",
        tenant="acme",
        transport=httpx.MockTransport(recorder),
        retry=FAST_RETRY,
    )
    async with bus:
        await bus.topics.get("orders")
        assert bus.base_url == "http://up"
    assert [r.url.host for r in recorder.sent] == ["down", "up"]


async def test_paths_and_queries_of_the_tenant_calls() -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json={"deliveries": []}))
    async with async_client(recorder) as bus:
        await bus.subscriptions.pull("billing", max_records=5, wait_ms=100, session="s1")
        await bus.agents.pull(wait_ms=0)
        other = bus.with_scope(namespace="ops", tenant="blue", agent_id="watcher")
        await other.agents.pull()
    paths = [r.url.path for r in recorder.sent]
    assert paths == [
        "/v1/subscriptions/demo/acme/billing/pull",
        "/v1/agents/demo/acme/planner/inbox/pull",
        "/v1/agents/ops/blue/watcher/inbox/pull",
    ]
    assert json.loads(recorder.sent[0].content) == {"max_records": 5, "wait_ms": 100, "session": "s1"}


async def test_a_retried_tool_call_placement_returns_the_earlier_call() -> None:
    call = {
        "namespace": "demo",
        "tenant": "acme",
        "conversation": "c1",
        "call_id": "call-1",
        "tool": "add",
        "arguments": {"n": 1},
        "caller": "planner",
        "callee": "solver",
        "reply_to": "planner",
        "deadline": 1,
        "created_at": 1,
        "status": "pending",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json={"error": {"code": "tool_call_exists", "message": "exists"}})
        return httpx.Response(200, json=call)

    recorder = Recorder(answer)
    async with async_client(recorder) as bus:
        placed = await bus.tool_calls.place("c1", "solver", "add", {"n": 1}, call_id="call-1")
        assert placed.call_id == "call-1"
        with pytest.raises(ab.ToolCallExists):
            await bus.tool_calls.place("c1", "solver", "add", {"n": 2}, call_id="call-1")
    assert recorder.sent[1].url.path == "/v1/tool-calls/demo/acme/call-1"


async def test_answers_with_strict_nested_models_parse() -> None:
    key: dict[str, Any] = {
        "id": "k1",
        "name": "reader",
        "role": "tenant",
        "namespace": "demo",
        "tenant": "acme",
        "grants": [{"topics": "*", "actions": ["read"]}],
        "labels": {},
        "quota": None,
        "created_at": "2026-12-01T00:00:00Z",
        "rotated_at": None,
        "revoked_at": None,
        "secret": "s",
    }
    recorder = Recorder(lambda _: httpx.Response(201, json=key))
    async with async_client(recorder) as bus:
        made = await bus.keys.create("reader", grants=[{"actions": ["read"]}])
    assert made.grants[0].actions == [ab.models.Action.READ]
    assert recorder.body()["grants"] == [{"actions": ["read"]}]


NOT_READY = {"status": "unavailable", "broker": True, "ready": False}


async def test_ready_returns_the_health_of_a_503_asked_once() -> None:
    recorder = Recorder(lambda _: httpx.Response(503, json=NOT_READY))
    async with async_client(recorder) as bus:
        health = await bus.system.ready()
    assert health == ab.models.Health(status="unavailable", broker=True, ready=False)
    assert len(recorder.sent) == 1  # retries are on (FAST_RETRY), yet not ready is an answer


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, json={"error": {"code": "unavailable", "message": "no backend"}}),
        httpx.Response(503, text="<html>502 Bad Gateway</html>"),
        httpx.Response(503, json={"status": "unavailable"}),  # not a whole Health
    ],
    ids=["bus error", "proxy page", "partial body"],
)
async def test_ready_raises_on_a_503_that_is_not_a_health(answer: httpx.Response) -> None:
    recorder = Recorder(lambda _: answer)
    async with async_client(recorder) as bus:
        with pytest.raises(ab.Unavailable):
            await bus.system.ready()
    assert len(recorder.sent) == FAST_RETRY.attempts  # an ordinary 503: retried


async def test_only_readyz_takes_a_health_503_as_its_answer() -> None:
    recorder = Recorder(lambda _: httpx.Response(503, json=NOT_READY))
    async with async_client(recorder) as bus:
        with pytest.raises(ab.Unavailable):
            await bus.system.health()  # /healthz: Unavailable after retries, as documented
    assert len(recorder.sent) == FAST_RETRY.attempts


def test_sync_ready_and_location() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(503, json=NOT_READY)
        return httpx.Response(200, json={"conversation": "demo/acme/trip", "approval_id": "ap-1"})

    recorder = Recorder(answer)
    with sync_client(recorder) as bus:
        assert bus.system.ready().ready is False
        located = bus.tool_calls.location("call-1")
    assert located == ab.models.CallLocation(conversation="demo/acme/trip", approval_id="ap-1")
    assert [r.url.path for r in recorder.sent] == ["/readyz", "/v1/tool-calls/demo/acme/call-1/location"]
