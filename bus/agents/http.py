"""HTTP: /v1/agents. Every request about one agent runs on the worker that owns it; a list
asks every worker for the agents it owns."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bus.agents import service as ops
from bus.agents.models import (
    Agent,
    AgentList,
    AgentMessageSpec,
    AgentSpec,
    HeartbeatReceipt,
    HeartbeatRequest,
    SendReceipt,
    StateChange,
    agent_key,
)
from bus.cluster.forwarding import at_owner, fan_out
from bus.errors import InvalidParameter
from bus.http.access import Access, Action, Principal, can_see, require
from bus.http.routes import AUDIT_TARGET, Param, context, json_response, principal, read_model, route
from tables.agents import agents

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

AGENT_PATH = "/v1/agents/{namespace}/{tenant}/{agent_id}"
LIVENESS = ("unknown", "alive", "late", "dead")
STATES = ("enabled", "draining", "disabled")


def path_key(request: web.Request) -> str:
    m = request.match_info
    return agent_key(m["namespace"], m["tenant"], m["agent_id"])


@route(
    "POST",
    "/v1/agents",
    summary="Register an agent (and its inbox); the same registration again answers 200 with it",
    tag="agents",
    access=Access.MANAGE,
    body=AgentSpec,
    response=Agent,
    status=201,
    errors=(400, 403, 409, 413, 415, 422, 503, 504),
)
async def register(request: web.Request) -> web.StreamResponse:
    spec = await read_model(request, AgentSpec)
    request[AUDIT_TARGET] = (spec.namespace, spec.tenant)
    require(principal(request), Action.MANAGE, spec.namespace, spec.tenant, None)
    ops.check_capabilities(spec)  # a bad schema is refused here, before any forwarding
    key = agent_key(spec.namespace, spec.tenant, spec.id)

    async def call() -> web.StreamResponse:
        agent, created = await ops.register(context(request), spec)
        return json_response(agent, status=201 if created else 200)

    return await at_owner(request, key, agents.topic, call)


@route(
    "GET",
    "/v1/agents",
    summary="List agents",
    tag="agents",
    access=Access.AUTHENTICATED,
    response=AgentList,
    params=(
        Param("namespace", "Only this namespace"),
        Param("tenant", "Only this tenant"),
        Param("capability", "Only agents offering this tool"),
        Param("liveness", "unknown, alive, late or dead"),
        Param("state", "enabled, draining or disabled"),
        Param("label", "name=value: only agents with this label"),
    ),
    errors=(400, 503),
)
async def list_agents(request: web.Request) -> web.StreamResponse:
    keep, who = filters(request), principal(request)
    merged = await fan_out(request, ops.owned_agents, lambda body: AgentList.model_validate(body).agents)
    shown = [a for a in merged if keep(a) and visible(who, a)]
    return json_response(AgentList(agents=sorted(shown, key=lambda a: a.key)))


def visible(who: Principal, agent: Agent) -> bool:
    return can_see(who, agent.namespace, agent.tenant)


def filters(request: web.Request) -> Callable[[Agent], bool]:
    """The query's filters as one predicate; InvalidParameter (400) for unreadable ones."""
    q = request.query
    liveness, state, label = q.get("liveness"), q.get("state"), q.get("label")
    if liveness is not None and liveness not in LIVENESS:
        raise InvalidParameter(f"liveness is one of {', '.join(LIVENESS)}", {"liveness": liveness[:50]})
    if state is not None and state not in STATES:
        raise InvalidParameter(f"state is one of {', '.join(STATES)}", {"state": state[:50]})
    if label is not None and "=" not in label:
        raise InvalidParameter("label is name=value", {"label": label[:100]})
    name, _, value = (label or "").partition("=")

    def keep(a: Agent) -> bool:
        return (
            q.get("namespace") in (None, a.namespace)
            and q.get("tenant") in (None, a.tenant)
            and (q.get("capability") is None or a.has_capability(q["capability"]))
            and liveness in (None, a.liveness)
            and state in (None, a.state)
            and (label is None or a.labels.get(name) == value)
        )

    return keep


@route(
    "GET",
    AGENT_PATH,
    summary="Get one agent, with its liveness",
    tag="agents",
    access=Access.READ,
    response=Agent,
    errors=(403, 404, 503, 504),
)
async def get_agent(request: web.Request) -> web.StreamResponse:
    key = path_key(request)

    async def call() -> web.StreamResponse:
        return json_response(await ops.find(context(request), key))

    return await at_owner(request, key, agents.topic, call)


@route(
    "DELETE",
    AGENT_PATH,
    summary="Delete an agent and its inbox",
    tag="agents",
    access=Access.MANAGE,
    response=Agent,
    errors=(403, 404, 503, 504),
)
async def delete_agent(request: web.Request) -> web.StreamResponse:
    key = path_key(request)

    async def call() -> web.StreamResponse:
        return json_response(await ops.delete(context(request), key))

    return await at_owner(request, key, agents.topic, call)


@route(
    "PUT",
    AGENT_PATH + "/state",
    summary="Set the operator state: enabled, draining or disabled",
    tag="agents",
    access=Access.MANAGE,
    body=StateChange,
    response=Agent,
    errors=(400, 403, 404, 409, 415, 422, 503, 504),
)
async def change_state(request: web.Request) -> web.StreamResponse:
    key, change = path_key(request), await read_model(request, StateChange)

    async def call() -> web.StreamResponse:
        return json_response(await ops.change_state(context(request), key, change))

    return await at_owner(request, key, agents.topic, call)


@route(
    "POST",
    AGENT_PATH + "/heartbeat",
    summary="Report the agent alive (the body is optional)",
    audited=False,
    tag="agents",
    access=Access.WRITE,
    body=HeartbeatRequest,
    response=HeartbeatReceipt,
    status=202,
    errors=(400, 403, 404, 415, 422, 503),
)
async def heartbeat(request: web.Request) -> web.StreamResponse:
    key = path_key(request)
    raw = await request.read()
    body = await read_model(request, HeartbeatRequest) if raw.strip() else HeartbeatRequest()

    async def call() -> web.StreamResponse:
        return json_response(await ops.heartbeat(context(request), key, body), status=202)

    return await at_owner(request, key, agents.topic, call)


@route(
    "POST",
    AGENT_PATH + "/messages",
    summary="Send a message to the agent's inbox",
    audited=False,
    tag="agents",
    access=Access.WRITE,
    body=AgentMessageSpec,
    response=SendReceipt,
    errors=(400, 403, 404, 409, 413, 415, 422, 503),
)
async def send_message(request: web.Request) -> web.StreamResponse:
    key, spec = path_key(request), await read_model(request, AgentMessageSpec)
    m = request.match_info
    ops.check_message(context(request), m["namespace"], m["tenant"], spec)  # 4xx before forwarding

    async def call() -> web.StreamResponse:
        return json_response(await ops.send_message(context(request), key, spec))

    return await at_owner(request, key, agents.topic, call)
