"""The language-neutral contract (contract/ at the repository root) that every SDK loads:
the requests each call sends and what it returns, every error code, SSE byte streams.

stream_order.json is not loaded: it describes an SDK that reorders chunks itself, while
this client reads streams through the bus's own ordering reader (GET /v1/streams/...),
whose gaps and late chunks requests/streams.json covers. The one WebSocket fixture
(streams.write_socket) needs a socket server; the fleet tests cover the WebSocket writer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pydantic import BaseModel

import agentbus_client as ab
from agentbus_client import AsyncClient, RetryPolicy, SSEDecoder, models
from agentbus_client._errors import error_from_answer

CONTRACT = Path(__file__).resolve().parents[3] / "contract"
NO_RETRY = RetryPolicy(attempts=1)
# The contract's error types (named by HTTP status) and this client's class for that status.
TYPES: dict[str, type[ab.APIError]] = {
    "BadRequestError": ab.BadRequest,
    "AuthenticationError": ab.Unauthenticated,
    "PermissionDeniedError": ab.Forbidden,
    "NotFoundError": ab.NotFound,
    "MethodNotAllowedError": ab.MethodNotAllowed,
    "ConflictError": ab.Conflict,
    "TooLargeError": ab.TooLarge,
    "UnsupportedMediaTypeError": ab.UnsupportedMediaType,
    "UnprocessableError": ab.APIError,  # 422: Unprocessable or KafkaRejected
    "RateLimitError": ab.QuotaExceeded,
    "InternalServerError": ab.InternalError,
    "UnavailableError": ab.Unavailable,
    "TimeoutError": ab.GatewayTimeout,
}


def load(name: str) -> Any:
    return json.loads((CONTRACT / name).read_text())


# -- SSE -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load("sse.json")["cases"], ids=lambda c: c["name"])
def test_sse_streams(case: dict[str, Any]) -> None:
    decoder = SSEDecoder()
    events = []
    for read in case["reads"]:
        chunk = read["text"].encode() if "text" in read else bytes.fromhex(read["hex"])
        events += decoder.feed(chunk)
    assert [{"type": e.event, "data": e.data, "id": e.id} for e in events] == [
        {"type": e["type"], "data": e["data"], "id": e["id"]} for e in case["events"]
    ]
    assert decoder.retry == case["retry_ms"]
    assert decoder.last_event_id == case["last_event_id"]


# -- errors ----------------------------------------------------------------------------


def error_of(response: dict[str, Any]) -> ab.APIError:
    answer = answer_of(response)
    return error_from_answer(answer.status_code, _body(answer), _retry_after(answer))


@pytest.mark.parametrize("entry", load("errors.json")["errors"], ids=lambda e: e["code"])
def test_every_error_code(entry: dict[str, Any]) -> None:
    error = error_of(entry["response"])
    assert (error.code, error.status, error.retriable) == (entry["code"], entry["status"], entry["retriable"])
    assert isinstance(error, TYPES[entry["type"]])
    assert type(error) is not TYPES[entry["type"]] or error.code == TYPES[entry["type"]].code
    if "retry_after_ms" in entry:
        assert error.retry_after is not None and error.retry_after * 1000 == entry["retry_after_ms"]


@pytest.mark.parametrize("entry", load("errors.json")["fallbacks"], ids=lambda e: e["name"])
def test_answers_that_are_not_bus_errors(entry: dict[str, Any]) -> None:
    error, expect = error_of(entry["response"]), entry["expect"]
    assert isinstance(error, TYPES[expect["type"]])
    assert (error.status, error.retriable) == (expect["status"], expect["retriable"])
    assert error.code in (expect["code"], TYPES[expect["type"]].code)  # http_<status>: the class's code here


# -- requests --------------------------------------------------------------------------

Call = Callable[[AsyncClient, dict[str, Any]], Awaitable[Any]]


async def _collect(stream: Any, expected: list[Any], shape: Callable[[Any, Any], Any]) -> list[Any]:
    """The first len(expected) items of an event stream (the fixture's answer then ends)."""
    got: list[Any] = []
    async for item in stream:
        got.append(shape(stream, item))
        if len(got) == len(expected):
            break
    return got


def _stream_event(event: Any) -> dict[str, Any]:
    if isinstance(event, models.StreamChunk):
        return {"type": "late" if event.late else "chunk", "chunk_seq": event.chunk_seq, "data": event.data}
    if isinstance(event, models.StreamGap):
        return {"type": "gap", **event.model_dump()}
    return {"type": "end", "end": event.model_dump(mode="json")}


def _conversation_event(stream: Any, event: Any) -> dict[str, Any]:
    if isinstance(event, models.Message):
        return {"type": "message", "id": stream.last_event_id, "message": event.model_dump(mode="json")}
    kind = "deleted" if isinstance(event, models.ConversationDeleted) else "state"
    return {"type": kind, "data": event.model_dump(mode="json")}


def _with(spec: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in drop}


CALLS: dict[str, Call] = {
    "agents.register": lambda b, a: b.agents.register(
        a["spec"]["id"], **_with(a["spec"], "namespace", "tenant", "id")
    ),
    "agents.list": lambda b, a: b.agents.list(**a),
    "agents.get": lambda b, a: b.agents.get(a["agent"]),
    "agents.delete": lambda b, a: b.agents.delete(a["agent"]),
    "agents.set_state": lambda b, a: b.agents.set_state(a["state"], agent=a["agent"], reason=a.get("reason")),
    "agents.heartbeat": lambda b, a: b.agents.heartbeat(a["agent"], status=a.get("status")),
    "agents.send": lambda b, a: b.agents.send(
        a["agent"],
        a["message"]["payload"],
        sender=a["message"].get("from"),
        **_with(a["message"], "from", "payload"),
    ),
    "agents.inbox_pull": lambda b, a: b.agents.pull(a["agent"], **a["options"]),
    "agents.inbox_ack": lambda b, a: b.agents.ack(a["delivery_ids"], agent=a["agent"]),
    "agents.inbox_nack": lambda b, a: b.agents.nack(
        a["delivery_ids"], agent=a["agent"], reason=a.get("reason")
    ),
    "agents.inbox_release": lambda b, a: b.agents.release(a["session"], agent=a["agent"]),
    "agents.inbox_lag": lambda b, a: b.agents.inbox_lag(a["agent"]),
    "approvals.list": lambda b, a: b.approvals.list(**a),
    "approvals.get": lambda b, a: b.approvals.get(a["approval_id"]),
    "approvals.approve": lambda b, a: b.approvals.approve(
        a["approval_id"], a["digest"], reason=a.get("reason")
    ),
    "approvals.reject": lambda b, a: b.approvals.reject(
        a["approval_id"], a["digest"], reason=a.get("reason")
    ),
    "conversations.create": lambda b, a: b.conversations.create(
        a["spec"].get("id"), **_with(a["spec"], "namespace", "tenant", "id")
    ),
    "conversations.list": lambda b, a: b.conversations.list(**a),
    "conversations.get": lambda b, a: b.conversations.get(a["conversation"]),
    "conversations.delete": lambda b, a: b.conversations.delete(a["conversation"]),
    "conversations.transition": lambda b, a: b.conversations.transition(
        a["conversation"], a["to"], reason=a.get("reason")
    ),
    "conversations.append": lambda b, a: b.conversations.append(
        a["conversation"], a["message"]["payload"], **_with(a["message"], "payload")
    ),
    "conversations.messages": lambda b, a: b.conversations.messages(**a),
    "keys.create": lambda b, a: b.keys.create(a["spec"]["name"], **_with(a["spec"], "name")),
    "keys.list": lambda b, a: b.keys.list(),
    "keys.get": lambda b, a: b.keys.get(a["key_id"]),
    "keys.revoke": lambda b, a: b.keys.revoke(a["key_id"]),
    "keys.rotate": lambda b, a: b.keys.rotate(a["key_id"]),
    "keys.set_quota": lambda b, a: b.keys.set_quota(a["key_id"], a["quota"]),
    "quotas.get": lambda b, a: b.with_scope(namespace=a["namespace"], tenant=a["tenant"]).keys.tenant_quota(),
    "quotas.set": lambda b, a: b.with_scope(
        namespace=a["namespace"], tenant=a["tenant"]
    ).keys.set_tenant_quota(a["quota"]),
    "publish.one": lambda b, a: b.publish(
        a["envelope"]["topic"], a["envelope"]["payload"], **_with(a["envelope"], "topic", "payload")
    ),
    "publish.batch": lambda b, a: b.publish_batch(a["records"]),
    "rules.get": lambda b, a: b.with_scope(**a).rules.get(),
    "rules.put": lambda b, a: b.with_scope(**_with(a, "rules")).rules.put(a["rules"]),
    "rules.delete": lambda b, a: b.with_scope(**a).rules.delete(),
    "schemas.list_subjects": lambda b, a: b.schemas.list(**a),
    "schemas.register": lambda b, a: b.schemas.register(
        a["subject"], a["submission"]["schema"], description=a["submission"].get("description")
    ),
    "schemas.versions": lambda b, a: b.schemas.versions(a["subject"]),
    "schemas.get_version": lambda b, a: b.schemas.get(a["subject"], a["version"]),
    "schemas.delete_version": lambda b, a: b.schemas.delete_version(a["subject"], a["version"]),
    "schemas.check_compatibility": lambda b, a: b.schemas.check(
        a["subject"], a["check"]["schema"], mode=a["check"].get("mode")
    ),
    "schemas.get_config": lambda b, a: b.schemas.get_config(a["subject"]),
    "schemas.set_config": lambda b, a: b.schemas.set_config(a["subject"], a["compatibility"]),
    "streams.write_chunks": lambda b, a: b.streams.write_chunks(
        a["conversation"], a["chunks"]["stream_id"], **_with(a["chunks"], "stream_id")
    ),
    "streams.end": lambda b, a: b.streams.end(
        a["conversation"], a["end"]["stream_id"], **_with(a["end"], "stream_id")
    ),
    "streams.cancel": lambda b, a: b.streams.cancel(
        a["conversation"], a["stream_id"], reason=a.get("reason")
    ),
    "subscriptions.create": lambda b, a: b.subscriptions.create(
        a["spec"]["id"], a["spec"]["topic"], **_with(a["spec"], "namespace", "tenant", "id", "topic")
    ),
    "subscriptions.list": lambda b, a: b.subscriptions.list(**a),
    "subscriptions.get": lambda b, a: b.subscriptions.get(a["subscription"]),
    "subscriptions.delete": lambda b, a: b.subscriptions.delete(a["subscription"]),
    "subscriptions.pull": lambda b, a: b.subscriptions.pull(a["subscription"], **a["options"]),
    "subscriptions.ack": lambda b, a: b.subscriptions.ack(a["subscription"], a["delivery_ids"]),
    "subscriptions.nack": lambda b, a: b.subscriptions.nack(
        a["subscription"], a["delivery_ids"], **_with(a, "subscription", "delivery_ids")
    ),
    "subscriptions.release": lambda b, a: b.subscriptions.release(a["subscription"], a["session"]),
    "subscriptions.lag": lambda b, a: b.subscriptions.lag(a["subscription"]),
    "subscriptions.seek": lambda b, a: b.subscriptions.seek(
        a["subscription"],
        position=a["target"].get("position"),
        timestamp_ms=a["target"].get("timestamp_ms"),
        offsets={int(p): o for p, o in a["target"]["offsets"].items()} if "offsets" in a["target"] else None,
    ),
    "subscriptions.dead_letters": lambda b, a: b.subscriptions.dead_letters(
        a["subscription"], **_with(a, "subscription")
    ),
    "subscriptions.redrive": lambda b, a: b.subscriptions.redrive(
        a["subscription"], a.get("dead_letter_ids"), all=a.get("all", False)
    ),
    "audit.search": lambda b, a: b.system.audit(**a),
    "system.health": lambda b, a: b.system.health(),
    "system.live": lambda b, a: b.system.live(),
    "system.ready": lambda b, a: b.system.ready(),
    "system.whoami": lambda b, a: b.system.whoami(),
    "system.workers": lambda b, a: b.system.workers(),
    "system.metrics": lambda b, a: b.system.metrics(),
    "system.openapi": lambda b, a: b.system.openapi(),
    "tool_calls.place": lambda b, a: b.tool_calls.place(
        a["conversation"],
        a["call"]["callee"],
        a["call"]["tool"],
        a["call"].get("arguments"),
        **_with(a["call"], "callee", "tool", "arguments"),
    ),
    "tool_calls.settle": lambda b, a: b.tool_calls.post_result(
        a["conversation"],
        a["result"]["call_id"],
        a["result"].get("result"),
        **_with(a["result"], "call_id", "result", "status"),
    ),
    "tool_calls.get": lambda b, a: b.tool_calls.get(a["call_id"], wait_ms=a.get("wait_ms")),
    "tool_calls.cancel": lambda b, a: b.tool_calls.cancel(a["call_id"], reason=a.get("reason")),
    "tool_calls.location": lambda b, a: b.tool_calls.location(a["call_id"]),
    "topics.create": lambda b, a: b.topics.create(
        a["spec"]["name"], **_with(a["spec"], "namespace", "tenant", "name")
    ),
    "topics.list": lambda b, a: b.topics.list(**a),
    "topics.get": lambda b, a: b.topics.get(a["topic"]),
    "topics.delete": lambda b, a: b.topics.delete(a["topic"]),
    "topics.bind_schema": lambda b, a: b.topics.bind_schema(a["topic"], **a["binding"]),
    "topics.unbind_schema": lambda b, a: b.topics.unbind_schema(a["topic"]),
}

# Event streams: the call, then how each item is compared with the fixture's result.
STREAMS: dict[str, Callable[[AsyncClient, dict[str, Any], list[Any]], Awaitable[list[Any]]]] = {
    "subscribe.topic": lambda b, a, want: _collect(
        b.topics.subscribe(a["topic"], start=a.get("from"), last_event_id=a.get("last_event_id")),
        want,
        lambda s, r: {"id": s.last_event_id, "record": r.model_dump(mode="json")},
    ),
    "subscriptions.events": lambda b, a, want: _collect(
        b.subscriptions.events(a["subscription"]), want, lambda s, d: d.model_dump(mode="json")
    ),
    "agents.inbox_events": lambda b, a, want: _collect(
        b.agents.inbox_events(a["agent"]), want, lambda s, d: d.model_dump(mode="json")
    ),
    "conversations.follow": lambda b, a, want: _collect(
        b.conversations.follow(a["conversation"], **_with(a, "conversation")), want, _conversation_event
    ),
    "streams.read": lambda b, a, want: _collect(
        b.streams.read(a["conversation"], a["stream_id"], **_with(a, "conversation", "stream_id")),
        want,
        lambda s, e: _stream_event(e),
    ),
    "system.watch": lambda b, a, want: _collect(
        b.system.watch(a["paths"], interval_ms=a.get("interval_ms")),
        want,
        lambda s, d: d.model_dump(mode="json"),
    ),
}


def request_fixtures() -> list[Any]:
    found = []
    for path in sorted((CONTRACT / "requests").glob("*.json")):
        document = load(f"requests/{path.name}")
        for fixture in document["fixtures"]:
            if fixture["request"].get("websocket"):
                continue  # see the module docstring
            found.append(pytest.param(document["client"], fixture, id=f"{path.stem}: {fixture['name']}"))
    return found


def answer_of(response: dict[str, Any]) -> httpx.Response:
    headers = response.get("headers", {})
    if "body" in response:
        return httpx.Response(response["status"], headers=headers, json=response["body"])
    return httpx.Response(response["status"], headers=headers, text=response.get("body_text", ""))


def _body(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("retry-after")
    return float(value) if value is not None else None


def query_items(query: dict[str, str | list[str]]) -> list[tuple[str, str]]:
    """A fixture's query as (name, value) pairs: a list is a repeated parameter, in its order."""
    return [(k, v) for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs])]


def by_name(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Different parameters in any order, a repeated one's values in theirs (a stable sort)."""
    return sorted(items, key=lambda item: item[0])


def as_json(value: Any) -> Any:
    """What a call returned, as JSON (models as the bus sent them; lists of models; text)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return json.loads(json.dumps(value))


def test_every_operation_has_a_call() -> None:
    ops = {p.values[1]["call"]["op"] for p in request_fixtures()}
    assert ops <= set(CALLS) | set(STREAMS), sorted(ops - set(CALLS) - set(STREAMS))


@pytest.mark.parametrize(("client", "fixture"), request_fixtures())
async def test_requests(client: dict[str, Any], fixture: dict[str, Any]) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer_of(fixture["response"])

    bus = AsyncClient(
        client["base_url"],
        client["api_key"],
        namespace=client["namespace"],
        tenant=client["tenant"],
        retry=NO_RETRY,
        transport=httpx.MockTransport(answer),
    )
    op, args, want = fixture["call"]["op"], fixture["call"]["args"], fixture["result"]
    async with bus:
        try:
            if op in STREAMS:
                got: Any = await STREAMS[op](bus, args, want)
            else:
                got = as_json(await CALLS[op](bus, args))
        except ab.APIError as error:
            got = {
                "error": {
                    "type": error.status,
                    "code": error.code,
                    "status": error.status,
                    "retriable": error.retriable,
                }
            }
            want = {"error": {**want["error"], "type": TYPES[want["error"]["type"]].status}}
    expected = fixture["request"]
    request = sent[0]
    assert request.method == expected["method"]
    assert request.url.raw_path.decode().split("?")[0] == expected["path"]
    assert unquote(request.url.path) == unquote(expected["path"])
    assert by_name(request.url.params.multi_items()) == by_name(query_items(expected["query"]))
    assert request.headers["authorization"] == f"Bearer {client['api_key']}"
    for name, value in expected["headers"].items():
        assert request.headers[name] == value, name
    if "body" in expected:
        assert json.loads(request.content) == expected["body"]
    else:
        assert request.content == b""
    if op == "agents.inbox_pull":  # this client unpacks inbox deliveries into InboxMessages
        want = [as_json(models.InboxMessage.from_delivery(models.Delivery.model_validate(d))) for d in want]
    if isinstance(want, dict) and len(want) == 1 and not isinstance(got, dict):
        (want,) = want.values()  # this client answers a one-field body with its value (acked: 1 -> 1)
    assert got == want
