"""HTTP: /v1/topics."""

from __future__ import annotations

from aiohttp import web

from bus.http.access import Access, Action, can_see, require
from bus.http.routes import AUDIT_TARGET, Param, context, json_response, principal, read_model, route
from bus.topics import service as topics
from bus.topics.models import SchemaBinding, Topic, TopicList, TopicSpec, topic_id

__all__ = ["path_topic_id"]

TOPIC_PATH = "/v1/topics/{namespace}/{tenant}/{name}"


def path_topic_id(request: web.Request) -> str:
    m = request.match_info
    return topic_id(m["namespace"], m["tenant"], m["name"])


@route(
    "POST",
    "/v1/topics",
    summary="Create a topic and its Kafka topic",
    tag="topics",
    access=Access.MANAGE,
    body=TopicSpec,
    response=Topic,
    status=201,
    errors=(400, 409, 422, 503, 504),
)
async def create_topic(request: web.Request) -> web.StreamResponse:
    spec = await read_model(request, TopicSpec)
    request[AUDIT_TARGET] = (spec.namespace, spec.tenant)
    require(principal(request), Action.MANAGE, spec.namespace, spec.tenant, spec.name)
    topic = await topics.create_topic(context(request), spec)
    return json_response(topic, status=201)


@route(
    "GET",
    "/v1/topics",
    summary="List topics",
    tag="topics",
    access=Access.AUTHENTICATED,
    response=TopicList,
    params=(Param("namespace", "Only this namespace"), Param("tenant", "Only this tenant")),
)
async def list_topics(request: web.Request) -> web.StreamResponse:
    q, who = request.query, principal(request)
    found = topics.list_topics(q.get("namespace"), q.get("tenant"))
    return json_response(TopicList(topics=[t for t in found if can_see(who, t.namespace, t.tenant, t.name)]))


@route(
    "GET",
    TOPIC_PATH,
    summary="Get one topic",
    tag="topics",
    access=Access.READ,
    response=Topic,
    errors=(404,),
)
async def get_topic(request: web.Request) -> web.StreamResponse:
    return json_response(await topics.require_topic(context(request), path_topic_id(request)))


@route(
    "PUT",
    TOPIC_PATH + "/schema",
    summary="Bind the topic to a schema subject (and version)",
    tag="topics",
    access=Access.MANAGE,
    body=SchemaBinding,
    response=Topic,
    errors=(400, 404, 422, 503, 504),
)
async def bind_schema(request: web.Request) -> web.StreamResponse:
    binding = await read_model(request, SchemaBinding)
    return json_response(await topics.bind_schema(context(request), path_topic_id(request), binding))


@route(
    "DELETE",
    TOPIC_PATH + "/schema",
    summary="Unbind the topic from its schema",
    tag="topics",
    access=Access.MANAGE,
    response=Topic,
    errors=(404, 503, 504),
)
async def unbind_schema(request: web.Request) -> web.StreamResponse:
    return json_response(await topics.bind_schema(context(request), path_topic_id(request), None))


@route(
    "DELETE",
    TOPIC_PATH,
    summary="Delete a topic, its Kafka topic and all its records",
    tag="topics",
    access=Access.MANAGE,
    response=Topic,
    errors=(404, 503, 504),
)
async def delete_topic(request: web.Request) -> web.StreamResponse:
    return json_response(await topics.delete_topic(context(request), path_topic_id(request)))
