"""HTTP: consuming a subscription (pull, SSE), ack, nack, release, lag, seek, dead letters.

Every route runs on the subscription's owner. A request that reaches another worker is
forwarded there as it came (bus.cluster.ownership); an SSE stream stays on the worker the client
reached and pulls from the owner on the client's behalf.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from bus import metrics
from bus.cluster.forwarding import FORWARDER, at_owner
from bus.cluster.ownership import is_owner, owners_topic
from bus.errors import BusError, InvalidParameter, Unavailable
from bus.http.access import Access, Action, Principal
from bus.http.event_stream import EventStream, event, json_event
from bus.http.params import whole
from bus.http.routes import Param, context, json_bytes_response, json_response, principal, read_model, route
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.keys.metering import delivery_subjects, has_delivery_quota
from bus.keys.quotas import deliver_within_quota
from bus.subscribe.service import delivered_json
from bus.subscriptions import dead_letters as deadletters
from bus.subscriptions.dispatcher import Dispatcher, Leased
from bus.subscriptions.dispatcher_pool import DISPATCHERS
from bus.subscriptions.http import path_subscription_key
from bus.subscriptions.models import (
    AckRequest,
    AckResponse,
    DeadLetterList,
    LagReport,
    NackRequest,
    NackResponse,
    PullRequest,
    PullResponse,
    RedriveRequest,
    RedriveResponse,
    ReleaseRequest,
    ReleaseResponse,
    SeekRequest,
    SeekResponse,
    Subscription,
)
from bus.subscriptions.service import authorize, require_subscription
from bus.wire import parse_whole

__all__ = ["OwnerCall", "on_owner", "pull_here", "serve_events"]

log = logging.getLogger(__name__)
SUB = "/v1/subscriptions/{namespace}/{tenant}/{id}"
SSE_BATCH = 500
SSE_WAIT_MS = 1_000
OwnerCall = Callable[[Dispatcher], Awaitable[web.StreamResponse]]


async def on_owner(
    request: web.Request, action: Action, call: OwnerCall, key: str | None = None
) -> web.StreamResponse:
    """Run call on the dispatcher of subscription key (default: the one in the path) here,
    or hand the request to its owner. Agents' inboxes pass their own key."""
    ctx = context(request)
    sub = await require_subscription(ctx, key or path_subscription_key(request))
    authorize(principal(request), sub, action)

    async def here() -> web.StreamResponse:
        return await call(await DISPATCHERS.get(ctx, sub))

    return await at_owner(request, sub.key, owners_topic, here)


async def pull_here(dispatcher: Dispatcher, who: Principal, body: PullRequest) -> list[Leased]:
    deliveries = await dispatcher.pull(body.max_records, body.wait_ms, body.session)
    sub = dispatcher.sub
    quotas = delivery_subjects(who, sub.namespace, sub.tenant)
    if deliveries and has_delivery_quota(quotas):
        size = sum(len(delivered_json(d)) for d in deliveries)
        await deliver_within_quota(quotas, len(deliveries), size)
    metrics.RECORDS_DELIVERED.labels("pull").inc(len(deliveries))
    metrics.count_delivered(dispatcher.topic.topic_id, "pull", len(deliveries))
    return deliveries


@route(
    "POST",
    SUB + "/pull",
    summary="Take up to max_records records, waiting up to wait_ms for the first",
    tag="subscriptions",
    access=Access.READ,
    body=PullRequest,
    response=PullResponse,
    errors=(400, 404, 422, 503),
)
async def pull(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, PullRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        deliveries = await pull_here(d, principal(request), body)
        return json_bytes_response(b'{"deliveries":[%s]}' % b",".join(map(delivered_json, deliveries)))

    return await on_owner(request, Action.READ, call)


@route(
    "POST",
    SUB + "/ack",
    summary="Acknowledge deliveries (any worker; all ids or none)",
    tag="subscriptions",
    access=Access.READ,
    body=AckRequest,
    response=AckResponse,
    errors=(400, 404, 409, 422, 503),
)
async def ack(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, AckRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(AckResponse(acked=await d.ack(body.delivery_ids)))

    return await on_owner(request, Action.READ, call)


@route(
    "POST",
    SUB + "/nack",
    summary="Give deliveries back: redeliver after a backoff, or dead-letter now",
    tag="subscriptions",
    access=Access.READ,
    body=NackRequest,
    response=NackResponse,
    errors=(400, 404, 409, 422, 503),
)
async def nack(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, NackRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        nacked, dead = await d.nack(body.delivery_ids, body.action == "dead_letter", body.reason)
        return json_response(NackResponse(nacked=nacked, dead_lettered=dead))

    return await on_owner(request, Action.READ, call)


@route(
    "POST",
    SUB + "/release",
    summary="Give back every record a pull session holds (redelivered after the backoff)",
    tag="subscriptions",
    access=Access.READ,
    body=ReleaseRequest,
    response=ReleaseResponse,
    errors=(400, 404, 422, 503),
)
async def release(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, ReleaseRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(ReleaseResponse(released=await d.release(body.session)))

    return await on_owner(request, Action.READ, call)


@route(
    "GET",
    SUB + "/lag",
    summary="Committed offsets, high-water marks, lag and records in flight",
    tag="subscriptions",
    access=Access.READ,
    response=LagReport,
    errors=(404, 503),
)
async def lag(request: web.Request) -> web.StreamResponse:
    async def call(d: Dispatcher) -> web.StreamResponse:
        report = await d.lag()
        return json_response(report.model_copy(update={"owner": str(app.conf.canonical_url)}))

    return await on_owner(request, Action.READ, call)


@route(
    "POST",
    SUB + "/seek",
    summary="Move the subscription to earliest, latest, a time or explicit offsets (replay)",
    tag="subscriptions",
    access=Access.MANAGE,
    body=SeekRequest,
    response=SeekResponse,
    errors=(400, 404, 422, 503),
)
async def seek(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, SeekRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(
            SeekResponse(committed=await d.seek(await seek_target(context(request), d, body)))
        )

    return await on_owner(request, Action.MANAGE, call)


async def seek_target(ctx: BusContext, d: Dispatcher, body: SeekRequest) -> dict[int, int]:
    topic = d.topic
    if body.offsets is None:
        start = body.position if body.position is not None else body.timestamp_ms
        assert start is not None  # the model checked that one is given
        return await ctx.gateway.resolve_offsets(topic.kafka_topic, topic.partitions, start)
    partitions = {parse_whole(p): o for p, o in body.offsets.items()}
    wanted = {p: o for p, o in partitions.items() if p is not None}
    if len(wanted) != len(body.offsets):
        raise InvalidParameter("offsets keys are partition numbers", {"offsets": list(body.offsets)[:20]})
    unknown = [p for p in wanted if not 0 <= p < topic.partitions]
    if unknown:
        raise InvalidParameter(f"The topic has partitions 0..{topic.partitions - 1}", {"unknown": unknown})
    return wanted


@route(
    "GET",
    SUB + "/dead-letters",
    summary="The subscription's dead letters, with their origin and reason",
    tag="subscriptions",
    access=Access.READ,
    response=DeadLetterList,
    params=(
        Param("limit", "At most this many (default 100, at most 1000)"),
        Param("after", "Only those after this dead_letter_id"),
    ),
    errors=(400, 404),
)
async def list_dead_letters(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    sub = await require_subscription(ctx, path_subscription_key(request))
    authorize(principal(request), sub, Action.READ)
    limit = whole(request, "limit", 100, minimum=1, maximum=1000)
    found = await deadletters.list_dead_letters(ctx, sub, limit, request.query.get("after"))
    return json_response(DeadLetterList(dead_letters=found))


@route(
    "POST",
    SUB + "/dead-letters/redrive",
    summary="Send chosen dead letters (or all) back to the source topic, once each",
    tag="subscriptions",
    access=Access.WRITE,
    body=RedriveRequest,
    response=RedriveResponse,
    errors=(400, 404, 422, 503),
)
async def redrive(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, RedriveRequest)
    ctx = context(request)

    async def call(d: Dispatcher) -> web.StreamResponse:
        done, skipped = await deadletters.redrive(ctx, d, body.dead_letter_ids)
        return json_response(RedriveResponse(redriven=done, skipped=skipped))

    return await on_owner(request, Action.WRITE, call)


@route(
    "GET",
    SUB + "/events",
    summary="Consume the subscription as SSE (competing with its other consumers)",
    tag="subscriptions",
    access=Access.READ,
    event_stream=True,
    errors=(404, 503),
)
async def events(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    base = f"/v1/subscriptions/{m['namespace']}/{m['tenant']}/{m['id']}"
    return await serve_events(request, path_subscription_key(request), base)


async def serve_events(request: web.Request, key: str, base: str) -> web.StreamResponse:
    """Stream subscription key's deliveries as SSE; base is the path whose /pull and
    /release the stream calls on the owner when that is another worker."""
    ctx = context(request)
    sub = await require_subscription(ctx, key)
    who = principal(request)
    authorize(who, sub, Action.READ)
    session = secrets.token_urlsafe(12)
    async with EventStream(request) as events:
        try:
            await events.start(f"session {session}")
            await stream_deliveries(events, request, sub, session, base)
        finally:
            await release_anywhere(request, sub, session, base)
    return events.response


async def stream_deliveries(
    events: EventStream, request: web.Request, sub: Subscription, session: str, base: str
) -> None:
    """Pull and write until the client goes away; ride out an owner moving (a rebalance)."""
    while events.connected:
        try:
            deliveries = await pull_anywhere(request, sub, session, base)
        except Unavailable as exc:
            log.debug("SSE pull for %s: %s; retrying", sub.key, exc.message)
            await asyncio.sleep(0.5)
            deliveries = []
        except OwnerRefused as exc:  # e.g. the subscription was deleted: end the stream
            await events.send([event("error", json.dumps(exc.body))])
            return
        except BusError as exc:  # the same, decided here
            await events.send([event("error", json.dumps(exc.to_body()))])
            return
        if deliveries:
            await events.send(json_event("delivery", delivered_json(d), d["delivery_id"]) for d in deliveries)
        else:
            await events.keep_alive()


async def pull_anywhere(request: web.Request, sub: Subscription, session: str, base: str) -> list[Leased]:
    body = PullRequest(max_records=SSE_BATCH, wait_ms=SSE_WAIT_MS, session=session)
    if is_owner(sub.key):
        return await pull_here(await DISPATCHERS.get(context(request), sub), principal(request), body)
    answer = await owner_call(request, sub, base + "/pull", body)
    return owner_deliveries(answer)


def owner_deliveries(answer: object) -> list[Leased]:
    """The deliveries of the owner's pull answer, as it rendered them (checked for their
    shape, not rebuilt: they go on to the client as they came)."""
    found = answer.get("deliveries") if isinstance(answer, dict) else None
    if not isinstance(found, list) or not all(
        isinstance(d, dict) and isinstance(d.get("delivery_id"), str) for d in found
    ):
        raise Unavailable("The subscription's owner answered a pull without deliveries; retry", None)
    return found


async def release_anywhere(request: web.Request, sub: Subscription, session: str, base: str) -> None:
    """Best effort: if it fails, the session's leases end at their ack deadline instead."""
    try:
        if is_owner(sub.key):
            await (await DISPATCHERS.get(context(request), sub)).release(session)
        else:
            await owner_call(request, sub, base + "/release", ReleaseRequest(session=session))
    except (BusError, OSError) as exc:
        log.info("could not release SSE session of %s: %s", sub.key, exc)


async def owner_call(request: web.Request, sub: Subscription, path: str, body: BaseModel) -> object:
    status, answer = await FORWARDER.call(
        sub.key, "POST", path, request.headers.get("Authorization", ""), body.model_dump(mode="json")
    )
    if status >= 500:
        raise Unavailable("The subscription's owner could not serve the request; retry", {"status": status})
    if status >= 400:
        raise OwnerRefused(answer)
    return answer


class OwnerRefused(Exception):
    """The owner answered a pull on an SSE client's behalf with a 4xx: the stream ends with it."""

    def __init__(self, body: object) -> None:
        super().__init__(str(body))
        self.body = body
