"""HTTP: /v1/conversations. Every request about one conversation runs on its owner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.cluster.forwarding import FORWARDER, at_owner, fan_out, is_forwarded
from bus.cluster.ownership import is_owner, owner_partition
from bus.conversations import service as ops
from bus.conversations.models import (
    Conversation,
    ConversationList,
    ConversationRecord,
    ConversationSpec,
    ConversationView,
    Message,
    MessagePage,
    MessageSpec,
    TransitionRequest,
    conversation_key,
)
from bus.errors import InvalidParameter
from bus.http.access import Access, Action, can_see, require
from bus.http.event_stream import EventStream, event
from bus.http.params import optional_whole, whole, whole_text
from bus.http.routes import AUDIT_TARGET, Param, context, json_response, principal, read_model, route
from bus.kafka.gateway import guarded
from tables.conversations import conversations

__all__ = ["path_key"]

PATH = "/v1/conversations/{namespace}/{tenant}/{id}"
MAX_PAGE = 1000


def path_key(request: web.Request) -> str:
    m = request.match_info
    return conversation_key(m["namespace"], m["tenant"], m["id"])


@route(
    "POST",
    "/v1/conversations",
    summary="Start a conversation",
    tag="conversations",
    access=Access.WRITE,
    body=ConversationSpec,
    response=Conversation,
    status=201,
    errors=(400, 409, 422, 503, 504),
)
async def create(request: web.Request) -> web.StreamResponse:
    spec = await read_model(request, ConversationSpec)
    request[AUDIT_TARGET] = (spec.namespace, spec.tenant)
    require(principal(request), Action.WRITE, spec.namespace, spec.tenant, None)
    if spec.id is None:  # picked here: the id decides which worker owns the conversation
        spec = spec.model_copy(update={"id": ops.new_id()})
    key = conversation_key(spec.namespace, spec.tenant, spec.id or "")
    if not is_forwarded(request) and not is_owner(key, conversations.topic):
        auth = request.headers.get("Authorization", "")
        body = spec.model_dump(mode="json")
        status, answer = await FORWARDER.call(
            key, "POST", "/v1/conversations", auth, body, topic=conversations.topic
        )
        return web.json_response(answer, status=status)
    return json_response(await ops.create(context(request), spec), status=201)


@route(
    "GET",
    "/v1/conversations",
    summary="List conversations",
    tag="conversations",
    access=Access.AUTHENTICATED,
    response=ConversationList,
    params=(
        Param("namespace", "Only this namespace"),
        Param("tenant", "Only this tenant"),
        Param("participant", "Only those this agent takes part in (or open to the tenant)"),
        Param("state", "open, active, paused, closed or archived"),
        Param("label", "name=value: only those with this label"),
        Param("active_since", "Unix ms: only those with activity at or after it"),
    ),
    errors=(400, 503),
)
async def list_conversations(request: web.Request) -> web.StreamResponse:
    keep = filters(request)
    merged = await fan_out(
        request,
        lambda: [v.public() for v in conversations.owned_values(ConversationView)],
        lambda body: ConversationList.model_validate(body).conversations,
    )
    who = principal(request)
    shown = [c for c in merged if keep(c) and can_see(who, c.namespace, c.tenant)]
    return json_response(ConversationList(conversations=sorted(shown, key=lambda c: c.key)))


def filters(request: web.Request) -> Callable[[Conversation], bool]:
    q = request.query
    label = q.get("label")
    if label is not None and "=" not in label:
        raise InvalidParameter("label is name=value", {"label": label[:100]})
    since = optional_whole(request, "active_since")

    def keep(c: Conversation) -> bool:
        checks = [
            q.get("namespace") in (None, c.namespace),
            q.get("tenant") in (None, c.tenant),
            q.get("state") in (None, c.state),
            "participant" not in q or not c.participants or q["participant"] in c.participants,
            label is None or c.labels.get(label.split("=", 1)[0]) == label.split("=", 1)[1],
            since is None or c.last_activity_at.timestamp() * 1000 >= since,
        ]
        return all(checks)

    return keep


@route(
    "GET",
    PATH,
    summary="Get a conversation",
    tag="conversations",
    access=Access.READ,
    response=Conversation,
    errors=(404, 503),
)
async def get(request: web.Request) -> web.StreamResponse:
    key = path_key(request)

    async def call() -> web.StreamResponse:
        return json_response((await ops.view_of(context(request), key)).public())

    return await at_owner(request, key, conversations.topic, call)


@route(
    "DELETE",
    PATH,
    summary="Delete a conversation (its records stay in Kafka until retention)",
    tag="conversations",
    access=Access.MANAGE,
    response=Conversation,
    errors=(404, 503, 504),
)
async def delete(request: web.Request) -> web.StreamResponse:
    key = path_key(request)

    async def call() -> web.StreamResponse:
        return json_response(await ops.delete(context(request), key))

    return await at_owner(request, key, conversations.topic, call)


@route(
    "POST",
    PATH + "/transition",
    summary="Move the conversation to another state",
    tag="conversations",
    access=Access.WRITE,
    body=TransitionRequest,
    response=Conversation,
    errors=(404, 409, 422, 503, 504),
)
async def transition(request: web.Request) -> web.StreamResponse:
    key, body = path_key(request), await read_model(request, TransitionRequest)

    async def call() -> web.StreamResponse:
        return json_response(await ops.transition(context(request), key, body))

    return await at_owner(request, key, conversations.topic, call)


@route(
    "POST",
    PATH + "/messages",
    summary="Append a message; it gets the next sequence number",
    tag="conversations",
    access=Access.WRITE,
    body=MessageSpec,
    response=Message,
    status=201,
    errors=(403, 404, 409, 422, 503, 504),
)
async def append(request: web.Request) -> web.StreamResponse:
    key, body = path_key(request), await read_model(request, MessageSpec)

    async def call() -> web.StreamResponse:
        message, appended = await ops.append_message(context(request), key, body)
        return json_response(message, status=201 if appended else 200)

    return await at_owner(request, key, conversations.topic, call)


@route(
    "GET",
    PATH + "/messages",
    summary="Read the thread back from Kafka, by sequence number or time",
    tag="conversations",
    access=Access.READ,
    response=MessagePage,
    params=(
        Param("from_seq", "First sequence number (default 1)"),
        Param("to_seq", "Last sequence number"),
        Param("since", "Unix ms: only messages appended at or after it"),
        Param("limit", f"At most this many (default 100, at most {MAX_PAGE})"),
    ),
    errors=(400, 404, 503),
)
async def messages(request: web.Request) -> web.StreamResponse:
    key = path_key(request)
    from_seq = whole(request, "from_seq", 1, minimum=1)
    to_seq = optional_whole(request, "to_seq", minimum=1)
    since = optional_whole(request, "since")
    limit = whole(request, "limit", 100, minimum=1, maximum=MAX_PAGE)

    async def call() -> web.StreamResponse:
        ctx = context(request)
        view = await ops.view_of(ctx, key)
        found = await ops.read_messages(ctx, view, from_seq, to_seq, since, limit)
        last = found[-1].seq if found else None
        more = last is not None and last < view.message_count and (to_seq is None or last < to_seq)
        return json_response(MessagePage(messages=found, next_from_seq=last + 1 if more and last else None))

    return await at_owner(request, key, conversations.topic, call)


@route(
    "GET",
    PATH + "/stream",
    summary="Follow the conversation live as SSE, from any sequence number",
    tag="conversations",
    access=Access.READ,
    event_stream=True,
    params=(
        Param("from_seq", "Replay from this sequence number first (default: only new messages)"),
        Param("Last-Event-ID", "Resume after this sequence number (wins over from_seq)", "header"),
    ),
    errors=(400, 404, 503),
)
async def stream(request: web.Request) -> web.StreamResponse:
    key = path_key(request)
    last_id = request.headers.get("Last-Event-ID")
    if last_id is not None:
        from_seq: int | None = whole_text(last_id, "Last-Event-ID") + 1
    else:
        from_seq = optional_whole(request, "from_seq", minimum=1)
    return await at_owner(
        request, key, conversations.topic, lambda: follow(request, key, from_seq), relay="event_stream"
    )


async def follow(request: web.Request, key: str, from_seq: int | None) -> web.StreamResponse:
    ctx = context(request)
    view = await ops.view_of(ctx, key)
    tp = TopicPartition(conversations.kafka_topic, owner_partition(key))
    async with EventStream(request) as events:
        consumer = ctx.gateway.new_reader(isolation_level="read_committed")
        await guarded(consumer.start())
        try:
            consumer.assign([tp])
            if from_seq is None:  # only what comes next
                from_seq = view.next_seq
                consumer.seek(tp, (await guarded(consumer.end_offsets([tp])))[tp])
            else:
                consumer.seek(tp, await ops.start_offset(consumer, tp, view, from_seq, None))
            await events.start(f"following {key} from seq {from_seq}")
            await relay_records(events, consumer, tp, key, from_seq)
        finally:
            await consumer.stop()
    return events.response


async def relay_records(
    events: EventStream, consumer: AIOKafkaConsumer, tp: TopicPartition, key: str, from_seq: int
) -> None:
    """Write the conversation's records as events until the client goes or it is deleted."""
    wanted = key.encode()
    while events.connected:
        batch = await guarded(consumer.getmany(tp, timeout_ms=250, max_records=500))
        found = []
        for record in batch.get(tp, []):
            if record.key != wanted:
                continue
            entry = ConversationRecord.model_validate_json(record.value or b"{}")
            if entry.kind == "message" and entry.message is not None and entry.message.seq >= from_seq:
                found.append(event("message", entry.message.model_dump_json(), str(entry.message.seq)))
            elif entry.kind == "transition":
                found.append(event("state", json.dumps({"state": entry.state, "at": entry.at})))
            elif entry.kind == "deleted":
                await events.send([*found, event("deleted", json.dumps({"at": entry.at}))])
                return
        if found:
            await events.send(found)
        else:
            await events.keep_alive()
        await asyncio.sleep(0)
