"""HTTP: an agent reads its inbox (SSE or pull) and acks, nacks or releases what it got.

An inbox is a subscription (bus/http/deliveries.py serves both): it runs on the owner of
its subscription key, delivers only the agent's records of the shared inbox topic, in
order, and resumes after the last ack on any worker, after any restart.
"""

from __future__ import annotations

from agentbus_client.models.subscriptions import (
    AckRequest,
    AckResponse,
    LagReport,
    NackRequest,
    NackResponse,
    PullRequest,
    PullResponse,
    ReleaseRequest,
    ReleaseResponse,
)
from aiohttp import web

from bus.agents.models import agent_key
from bus.agents.service import inbox_key
from bus.cluster.ownership import self_url
from bus.errors import AgentNotFound, SubscriptionNotFound
from bus.http.access import Access, Action
from bus.http.routes import json_response, principal, read_model, route
from bus.subscriptions import delivery_http as deliveries
from bus.subscriptions.dispatcher import Dispatcher

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

INBOX = "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox"


def inbox_of(request: web.Request) -> tuple[str, str]:
    """(the inbox's subscription key, the base path of its routes)."""
    m = request.match_info
    base = f"/v1/agents/{m['namespace']}/{m['tenant']}/{m['agent_id']}/inbox"
    return inbox_key(m["namespace"], m["tenant"], m["agent_id"]), base


async def on_owner(request: web.Request, call: deliveries.OwnerCall) -> web.StreamResponse:
    """The inbox's dispatcher runs call; a missing inbox is an unknown agent (404)."""
    key, _ = inbox_of(request)
    try:
        return await deliveries.on_owner(request, Action.READ, call, key)
    except SubscriptionNotFound:
        raise agent_not_found(request) from None


def agent_not_found(request: web.Request) -> AgentNotFound:
    m = request.match_info
    key = agent_key(m["namespace"], m["tenant"], m["agent_id"])
    return AgentNotFound(f"Agent {key} does not exist", {"agent": key})


@route(
    "GET",
    INBOX,
    summary="Read the agent's inbox as SSE (delivery events; ack each one)",
    tag="agents",
    audited=False,
    access=Access.READ,
    event_stream=True,
    errors=(403, 404, 503),
)
async def events(request: web.Request) -> web.StreamResponse:
    key, base = inbox_of(request)
    try:
        return await deliveries.serve_events(request, key, base)
    except SubscriptionNotFound:
        raise agent_not_found(request) from None


@route(
    "POST",
    INBOX + "/pull",
    summary="Take up to max_records messages from the inbox, waiting up to wait_ms for the first",
    tag="agents",
    audited=False,
    access=Access.READ,
    body=PullRequest,
    response=PullResponse,
    errors=(400, 403, 404, 422, 503),
)
async def pull(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, PullRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(PullResponse(deliveries=await deliveries.pull_here(d, principal(request), body)))

    return await on_owner(request, call)


@route(
    "POST",
    INBOX + "/ack",
    summary="Acknowledge inbox deliveries (all ids or none)",
    tag="agents",
    audited=False,
    access=Access.READ,
    body=AckRequest,
    response=AckResponse,
    errors=(400, 403, 404, 409, 422, 503),
)
async def ack(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, AckRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(AckResponse(acked=await d.ack(body.delivery_ids)))

    return await on_owner(request, call)


@route(
    "POST",
    INBOX + "/nack",
    summary="Give inbox deliveries back: redeliver after a backoff, or dead-letter now",
    tag="agents",
    audited=False,
    access=Access.READ,
    body=NackRequest,
    response=NackResponse,
    errors=(400, 403, 404, 409, 422, 503),
)
async def nack(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, NackRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        nacked, dead = await d.nack(body.delivery_ids, body.action == "dead_letter", body.reason)
        return json_response(NackResponse(nacked=nacked, dead_lettered=dead))

    return await on_owner(request, call)


@route(
    "POST",
    INBOX + "/release",
    summary="Give back every message a pull session holds",
    tag="agents",
    audited=False,
    access=Access.READ,
    body=ReleaseRequest,
    response=ReleaseResponse,
    errors=(400, 403, 404, 422, 503),
)
async def release(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, ReleaseRequest)

    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response(ReleaseResponse(released=await d.release(body.session)))

    return await on_owner(request, call)


@route(
    "GET",
    "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/lag",
    summary="The agent's inbox depth: lag, unacked, in flight and the oldest unacked age",
    tag="agents",
    access=Access.READ,
    response=LagReport,
    errors=(404, 503),
)
async def inbox_lag(request: web.Request) -> web.StreamResponse:
    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response((await d.lag()).model_copy(update={"owner": self_url()}))

    return await on_owner(request, call)
