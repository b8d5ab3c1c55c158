"""HTTP: /v1/subscriptions (the metadata; deliveries are in bus/http/deliveries.py)."""

from __future__ import annotations

from aiohttp import web

from bus.errors import SubscriptionNotFound
from bus.http.access import Access, Action, can_see, require
from bus.http.routes import AUDIT_TARGET, Param, context, json_response, principal, read_model, route
from bus.subscriptions import service as subscriptions
from bus.subscriptions.models import Subscription, SubscriptionList, SubscriptionSpec, subscription_key

__all__ = ["path_subscription_key"]

SUBSCRIPTION_PATH = "/v1/subscriptions/{namespace}/{tenant}/{id}"


def path_subscription_key(request: web.Request) -> str:
    """The subscription in the path. Agents' inboxes ('inbox.{agent}': '.' is never in a
    subscription id) are not reachable here: they live and die with their agent."""
    m = request.match_info
    key = subscription_key(m["namespace"], m["tenant"], m["id"])
    if "." in m["id"]:
        raise SubscriptionNotFound(f"Subscription {key} does not exist", {"subscription": key})
    return key


@route(
    "POST",
    "/v1/subscriptions",
    summary="Create a subscription (and its dead-letter topic if missing)",
    tag="subscriptions",
    access=Access.MANAGE,
    body=SubscriptionSpec,
    response=Subscription,
    status=201,
    errors=(400, 403, 404, 409, 415, 422, 503, 504),
)
async def create_subscription(request: web.Request) -> web.StreamResponse:
    spec = await read_model(request, SubscriptionSpec)
    request[AUDIT_TARGET] = (spec.namespace, spec.tenant)
    who = principal(request)
    source = subscriptions.source_topic_name(spec)
    require(who, Action.MANAGE, spec.namespace, spec.tenant, source)
    require(who, Action.READ, spec.namespace, spec.tenant, source)  # it will consume the topic
    created = await subscriptions.create_subscription(context(request), spec)
    return json_response(created, status=201)


@route(
    "GET",
    "/v1/subscriptions",
    summary="List subscriptions",
    tag="subscriptions",
    access=Access.AUTHENTICATED,
    response=SubscriptionList,
    params=(
        Param("namespace", "Only this namespace"),
        Param("tenant", "Only this tenant"),
        Param("topic", "Only subscriptions to this topic (its name)"),
    ),
)
async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    q, who = request.query, principal(request)
    found = subscriptions.list_subscriptions(q.get("namespace"), q.get("tenant"), q.get("topic"))
    visible = [s for s in found if can_see(who, s.namespace, s.tenant, s.topic)]
    return json_response(SubscriptionList(subscriptions=visible))


@route(
    "GET",
    SUBSCRIPTION_PATH,
    summary="Get one subscription",
    tag="subscriptions",
    access=Access.READ,
    response=Subscription,
    errors=(403, 404, 503, 504),
)
async def get_subscription(request: web.Request) -> web.StreamResponse:
    sub = await subscriptions.require_subscription(context(request), path_subscription_key(request))
    subscriptions.authorize(principal(request), sub, Action.READ)
    return json_response(sub)


@route(
    "DELETE",
    SUBSCRIPTION_PATH,
    summary="Delete a subscription (its dead-letter topic stays)",
    tag="subscriptions",
    access=Access.MANAGE,
    response=Subscription,
    errors=(403, 404, 503, 504),
)
async def delete_subscription(request: web.Request) -> web.StreamResponse:
    ctx, key = context(request), path_subscription_key(request)
    sub = await subscriptions.require_subscription(ctx, key)
    subscriptions.authorize(principal(request), sub, Action.MANAGE)
    return json_response(await subscriptions.delete_subscription(ctx, key))
