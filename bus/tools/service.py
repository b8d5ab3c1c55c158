"""Tool calls: placed, answered, timed out and cancelled on their conversation's owner.

A call and its result are envelopes of the conversation (same log, same order, same
replay, each with its sequence number); the call's state is a view keyed by call, kept
in the conversation's partition by the conversations processor. The callee gets the call
in its inbox, the reply_to agent gets the result in its own. A locator (keyed by call)
records which conversation a call belongs to, so GET /v1/tool-calls/... finds it.

Settling a call is decided once, on the owner, under the conversation's lock: the first
result (or the bus's timeout, or a cancellation) wins, and anything after it is fenced
out with a code that says why.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from agentbus_client.models.agents import Agent, Capability
from agentbus_client.models.conversations import EnvelopeKind

from bus import headers as h
from bus import metrics
from bus.agents import service as agent_ops
from bus.agents.models import AgentRecord
from bus.approvals.service import is_parked, park, parked_call
from bus.clock import now_ms
from bus.cluster.forwarding import FORWARDER
from bus.cluster.ownership import is_owner, owned_partitions, owner_partition
from bus.conversations.calls import call_envelope, call_headers, inbox_copy
from bus.conversations.models import (
    ACCEPTS_MESSAGES,
    CallLocation,
    ConversationView,
    ToolCallView,
    call_view_key,
)
from bus.conversations.service import Envelope, append_envelope, open_view, view_of
from bus.conversations.service import settle as settle_view
from bus.errors import (
    AgentDisabled,
    AgentNotFound,
    ConversationNotOpen,
    NotCallee,
    OwnerMoved,
    SchemaViolation,
    ToolCallCancelled,
    ToolCallExists,
    ToolCallFinished,
    ToolCallNotFound,
    ToolCallTimedOut,
    ToolNotFound,
    ToolResultExists,
)
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord
from bus.schemas.validation import tool_validator, violations
from bus.state.waits import Waiters, wait_for_wake, wake
from bus.tools.models import ToolCall, ToolCallSpec, ToolResult, ToolResultSpec, Usage
from tables.agents import agents
from tables.conversations import conversations, locator

__all__ = [
    "agent_usage",
    "cancel",
    "changed",
    "expire_due",
    "find_location",
    "forget",
    "place",
    "require_open",
    "settle",
    "wait_call",
]

log = logging.getLogger(__name__)
_waiters: Waiters = {}
_deadlines: dict[str, int] = {}  # call view key -> deadline, for pending calls this worker owns
_scanned: set[int] = set()  # partitions whose pending calls are in _deadlines


# -- placing a call ------------------------------------------------------------------------


async def fetch_agent(ctx: BusContext, key: str) -> Agent:
    """The agent from its owner (here or asked there). The bus asks with the fleet's own
    key: the caller was allowed to place the call, and may hold no read grant on agents."""
    if is_owner(key, agents.topic):
        return await agent_ops.find(ctx, key)
    ns, tenant, agent_id = key.split("/")
    status, body = await FORWARDER.call(
        key, "GET", f"/v1/agents/{ns}/{tenant}/{agent_id}", fleet_auth(ctx), None, topic=agents.topic
    )
    if status != 200:
        raise_from_answer(status, body, agent_id)
    return Agent.model_validate(body)


def fleet_auth(ctx: BusContext) -> str:
    admin = ctx.settings.admin_key
    return f"Bearer {admin.get_secret_value()}" if admin is not None else ""


def raise_from_answer(status: int, body: Any, agent_id: str) -> None:
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    if status == 404:
        raise AgentNotFound(f"Agent {agent_id} is not registered", {"agent": agent_id})
    raise OwnerMoved(f"Could not look agent {agent_id} up ({status} {code}); retry", {"status": status})


async def registered_agents(
    ctx: BusContext, namespace: str, tenant: str, roles: dict[str, str]
) -> dict[str, Agent]:
    """The agents named by role (callee, caller, reply_to), looked up at once; the first
    role (in the order given) that names no registered agent of the tenant is a 404
    agent_not_found, whose details name the agent and the role."""
    ids = list(dict.fromkeys(roles.values()))
    found = await asyncio.gather(
        *(fetch_agent(ctx, f"{namespace}/{tenant}/{agent_id}") for agent_id in ids),
        return_exceptions=True,
    )
    failed = {i: got for i, got in zip(ids, found, strict=True) if isinstance(got, BaseException)}
    for role, agent_id in roles.items():
        if isinstance(failed.get(agent_id), AgentNotFound):
            raise AgentNotFound(
                f"The {role} {agent_id} is not a registered agent of {namespace}/{tenant}",
                {"agent": agent_id, "role": role},
            )
    for error in failed.values():
        raise error
    by_id = {i: got for i, got in zip(ids, found, strict=True) if isinstance(got, Agent)}
    return {role: by_id[agent_id] for role, agent_id in roles.items()}


def check_arguments(agent: Agent, spec: ToolCallSpec) -> Capability:
    """The tool; ToolNotFound (404) or SchemaViolation (422) first."""
    found = next((c for c in agent.capabilities if c.name == spec.tool), None)
    if found is None:
        raise ToolNotFound(
            f"Agent {agent.id} has no tool {spec.tool}",
            {"tool": spec.tool, "tools": [c.name for c in agent.capabilities]},
        )
    problems = violations(tool_validator(found.input_schema), spec.arguments)
    if problems:
        raise SchemaViolation(
            f"The arguments do not match the input schema of {spec.tool}",
            {"violations": [p.model_dump() for p in problems]},
        )
    return found


async def place(ctx: BusContext, conv_key: str, spec: ToolCallSpec) -> ToolCall:
    ns, tenant, _ = conv_key.split("/")
    # The caller and reply_to must be agents of the tenant too: a result for an unknown
    # reply_to would go to an inbox nobody reads.
    roles = {"callee": spec.callee, "caller": spec.caller, "reply_to": spec.reply_to or spec.caller}
    callee = (await registered_agents(ctx, ns, tenant, roles))["callee"]
    if callee.state == "disabled":
        raise AgentDisabled(f"Agent {spec.callee} is disabled", {"agent": spec.callee, "state": callee.state})
    tool = check_arguments(callee, spec)
    call_id = spec.call_id or uuid.uuid4().hex
    vkey = call_view_key(ns, tenant, call_id)
    async with conversations.deciding(ctx, conv_key):
        view = await open_view(ctx, conv_key, spec.caller)
        if conversations.get(vkey, ToolCallView) is not None or vkey in _deadlines or is_parked(vkey):
            raise ToolCallExists(f"Tool call {call_id} exists", {"call_id": call_id})
        if spec.parent_call_id is not None:
            await settle_view(ctx, conv_key)  # the parent may be on its way to the view
        parent = check_parent(conv_key, ns, tenant, spec.parent_call_id)
        call = ToolCallView(
            namespace=ns,
            tenant=tenant,
            conversation=conv_key,
            call_id=call_id,
            tool=spec.tool,
            arguments=spec.arguments,
            caller=spec.caller,
            callee=spec.callee,
            correlation_id=spec.correlation_id,
            reply_to=spec.reply_to or spec.caller,
            deadline=now_ms() + spec.timeout_ms,
            parent_call_id=parent,
            created_at=now_ms(),
            output_schema=tool.output_schema,
            timeout_ms=spec.timeout_ms,
        )
        if tool.requires_approval:  # parked: nothing reaches the conversation or the callee yet
            return (await park(ctx, call, spec.approval_ttl_ms)).public()
        located = locator.outgoing(vkey, CallLocation(conversation=conv_key))
        copy = inbox_copy(ctx, call, "tool_call", call.public().model_dump_json())
        message = await append_envelope(ctx, conv_key, view, call_envelope(call), [copy, located])
        _deadlines[vkey] = call.deadline
    return call.public().model_copy(update={"seq": message.seq})


def check_parent(conv_key: str, ns: str, tenant: str, parent_id: str | None) -> str | None:
    if parent_id is None:
        return None
    parent = conversations.get(call_view_key(ns, tenant, parent_id), ToolCallView)
    if parent is None or parent.conversation != conv_key:
        raise ToolCallNotFound(
            f"The parent call {parent_id} is not a call of this conversation", {"parent_call_id": parent_id}
        )
    if parent.status != "pending":
        raise finished(parent)
    return parent_id


async def locate(ctx: BusContext, vkey: str, conv_key: str) -> None:
    """Tell the call's locator which conversation holds it (its owner applies it)."""
    await ctx.gateway.produce(
        [locator.outgoing(vkey, CallLocation(conversation=conv_key))], [owner_partition(vkey)]
    )


async def find_location(ctx: BusContext, vkey: str) -> CallLocation:
    """Where a call is (its conversation, and its approval while parked), on the locator's
    owner; ToolCallNotFound (404) if nowhere."""
    async with locator.deciding(ctx, vkey):
        found = await locator.get_fresh(ctx, vkey, CallLocation)
    if found is None:
        raise ToolCallNotFound(f"No tool call {vkey.split('/')[-1]}", {"call_id": vkey.split("/")[-1]})
    return found


# -- results, timeouts, cancellations ------------------------------------------------------


async def settle(ctx: BusContext, conv_key: str, spec: ToolResultSpec) -> ToolCall:
    """Record the callee's result. 404 unknown call; 403 when the result names another
    sender than the callee; 409 when already settled, saying how, or when the conversation
    takes no envelopes any more. A refused result writes nothing."""
    ns, tenant, _ = conv_key.split("/")
    vkey = call_view_key(ns, tenant, spec.call_id)
    async with conversations.deciding(ctx, conv_key):
        call = await known_call(ctx, conv_key, vkey)
        if spec.sender is not None and spec.sender != call.callee:
            raise NotCallee(
                f"Only {call.callee}, the callee of tool call {call.call_id}, posts its result",
                {"call_id": call.call_id, "sender": spec.sender, "callee": call.callee},
            )
        if call.status != "pending":
            raise finished(call)
        require_open(await settled_view(ctx, conv_key))
        if spec.status == "ok" and call.output_schema is not None:
            problems = violations(tool_validator(call.output_schema), spec.result)
            if problems:
                raise SchemaViolation(
                    f"The result does not match the output schema of {call.tool}",
                    {"violations": [p.model_dump() for p in problems]},
                )
        result = ToolResult(
            call_id=spec.call_id,
            status=spec.status,
            result=spec.result,
            error=spec.error,
            usage=spec.usage,
            at=now_ms(),
        )
        await append_result(ctx, conv_key, call, result, call.callee, usage_record(call, spec.usage))
    return await wait_call(ctx, conv_key, vkey, 0)


async def known_call(ctx: BusContext, conv_key: str, vkey: str) -> ToolCallView:
    """The call of this conversation, settled or not; ToolCallNotFound (404) if none."""
    await settled_view(ctx, conv_key)
    call = conversations.get(vkey, ToolCallView)
    if call is None or call.conversation != conv_key:
        raise ToolCallNotFound(
            f"No tool call {vkey.split('/')[-1]} in {conv_key}", {"call_id": vkey.split("/")[-1]}
        )
    return call


async def pending_call(ctx: BusContext, conv_key: str, vkey: str) -> ToolCallView:
    call = await known_call(ctx, conv_key, vkey)
    if call.status != "pending":
        raise finished(call)
    return call


def finished(call: ToolCallView) -> ToolCallFinished:
    """The refusal for a call settled already; the code says how it was settled."""
    cls = {"cancelled": ToolCallCancelled, "timed_out": ToolCallTimedOut}.get(call.status, ToolResultExists)
    result = call.result.model_dump(mode="json") if call.result else None
    return cls(
        f"Tool call {call.call_id} is {call.status}",
        {"call_id": call.call_id, "status": call.status, "result": result},
    )


def require_open(view: ConversationView) -> None:
    if view.state not in ACCEPTS_MESSAGES:
        raise ConversationNotOpen(
            f"Conversation {view.key} is {view.state} and takes no envelopes",
            {"state": view.state, "accepts_messages_when": list(ACCEPTS_MESSAGES)},
        )


async def settled_view(ctx: BusContext, conv_key: str) -> ConversationView:
    return await view_of(ctx, conv_key)


def usage_record(call: ToolCall, usage: Usage | None) -> list[OutgoingRecord]:
    """The usage a result reports, for the callee's agent record (it is what the agent spent)."""
    if usage is None:
        return []
    return [agent_usage(call.namespace, call.tenant, call.callee, usage)]


def agent_usage(namespace: str, tenant: str, agent_id: str, usage: Usage) -> OutgoingRecord:
    record = AgentRecord(kind="usage", usage=usage, at=now_ms())
    return agents.outgoing(f"{namespace}/{tenant}/{agent_id}", record, {h.KIND: "usage"})


async def append_result(
    ctx: BusContext,
    conv_key: str,
    call: ToolCallView,
    result: ToolResult,
    sender: str,
    extra: list[OutgoingRecord] | None = None,
) -> None:
    view = await settled_view(ctx, conv_key)
    kind: EnvelopeKind = "tool_cancel" if result.status == "cancelled" else "tool_result"
    envelope = Envelope(
        kind,
        sender,
        result.model_dump(mode="json"),
        message_id=f"{kind}-{call.call_id}",
        headers=call_headers(call),
    )
    to = call.callee if kind == "tool_cancel" else call.reply_to
    copy = inbox_copy(ctx, call, kind, result.model_dump_json(), to=to)
    await append_envelope(ctx, conv_key, view, envelope, [copy, *(extra or [])])
    _deadlines.pop(call_view_key(call.namespace, call.tenant, call.call_id), None)
    metrics.TOOL_CALLS.labels(result.status).observe(max(0, result.at - call.created_at) / 1000)


async def cancel(ctx: BusContext, conv_key: str, vkey: str, reason: str) -> list[str]:
    """Cancel a pending call and every pending call below it; each callee gets a cancel."""
    async with conversations.deciding(ctx, conv_key):
        root = await pending_call(ctx, conv_key, vkey)
        doomed = [root, *pending_descendants(root)]
        for call in doomed:
            error = {"code": "cancelled", "message": reason or "cancelled by the caller"}
            result = ToolResult.model_validate(
                {"call_id": call.call_id, "status": "cancelled", "error": error, "by": "bus", "at": now_ms()}
            )
            await append_result(ctx, conv_key, call, result, "bus")
    return [c.call_id for c in doomed]


def pending_descendants(call: ToolCallView) -> list[ToolCallView]:
    found: list[ToolCallView] = []
    for child_id in call.children:
        child = conversations.get(call_view_key(call.namespace, call.tenant, child_id), ToolCallView)
        if child is not None:
            if child.status == "pending":
                found.append(child)
            found += pending_descendants(child)
    return found


async def expire_due(ctx: BusContext) -> None:
    """Write a timed_out result, once, for each pending call past its deadline that we own."""
    await catch_up_owned(ctx)
    scan_new_partitions()
    now = now_ms()
    for vkey, deadline in list(_deadlines.items()):
        if deadline > now:
            continue
        call = conversations.get(vkey, ToolCallView)
        if call is None or conversations.get(call.conversation, ConversationView) is None:
            _deadlines.pop(vkey, None)  # gone with its conversation
            continue
        try:
            async with conversations.deciding(ctx, call.conversation):
                current = conversations.get(vkey, ToolCallView)
                if current is None or current.status != "pending":
                    _deadlines.pop(vkey, None)
                    continue
                error = {"code": "timed_out", "message": "no result before the deadline"}
                result = ToolResult.model_validate(
                    {"call_id": call.call_id, "status": "timed_out", "error": error, "by": "bus", "at": now}
                )
                await append_result(ctx, call.conversation, current, result, "bus")
        except Exception as exc:  # the next tick tries again
            log.warning("timing out call %s failed: %s", vkey, exc)


# -- waiting ---------------------------------------------------------------------------------


async def wait_call(
    ctx: BusContext, conv_key: str, vkey: str, wait_ms: int, approval_id: str | None = None
) -> ToolCall:
    """The call; while pending, wait up to wait_ms for it to settle (no polling: the
    processor wakes the waiters when it applies the result). A call parked for approval
    (approval_id, from the locator) has no view in its conversation until it is approved:
    it is answered from its approval (awaiting_approval, or rejected), and a wait ends at
    the decision; once approved, what is left of the wait goes on on the published call."""
    await settled_view(ctx, conv_key)
    call = conversations.get(vkey, ToolCallView)
    if call is None and approval_id is not None:
        parked, wait_ms = await parked_call(ctx, vkey, approval_id, wait_ms)
        if parked is not None:
            return parked
        await settled_view(ctx, conv_key)  # approved: the published call is on its way to the view
        call = conversations.get(vkey, ToolCallView)
    if call is None:
        raise ToolCallNotFound(f"No tool call {vkey.split('/')[-1]}", {"call_id": vkey.split("/")[-1]})
    if call.status == "pending" and wait_ms > 0:
        await wait_for_wake(_waiters, vkey, wait_ms / 1000)
        call = conversations.get(vkey, ToolCallView) or call
    return call.public()


def changed(vkey: str, call: ToolCallView) -> None:
    """The processor applied a change to this call: wake whoever waits for it to settle."""
    if call.status == "pending":
        if is_owner(call.conversation, conversations.topic):
            _deadlines[vkey] = call.deadline
        return
    _deadlines.pop(vkey, None)
    wake(_waiters, vkey)


async def catch_up_owned(ctx: BusContext) -> None:
    """Catch the view up on every partition this worker owns, not only those a request
    touched: calls and approvals of a partition taken over must still time out."""
    for partition in owned_partitions(conversations.topic) - conversations.caught_up_partitions():
        try:
            await conversations.catch_up(ctx, partition)
        except Exception as exc:  # the next tick tries again
            log.info("catching up partition %d failed: %s", partition, exc)


def scan_new_partitions() -> None:
    """Pending calls of partitions taken over: their records were applied by the previous
    owner, so only the view (restored from its changelog) knows their deadlines."""
    fresh = conversations.caught_up_partitions() - _scanned
    if not fresh:
        return
    _scanned.update(fresh)
    for key, raw in conversations.local_items("call:", fresh):
        call = ToolCallView.model_validate_json(raw)
        if call.status == "pending" and owner_partition(call.conversation) in fresh:
            _deadlines[key] = call.deadline


def forget(partitions: set[int]) -> None:
    _scanned.difference_update(partitions)
    for vkey in [k for k in _deadlines if owner_partition_of_call(k) in partitions]:
        del _deadlines[vkey]


def owner_partition_of_call(vkey: str) -> int:
    call = conversations.get(vkey, ToolCallView)
    return owner_partition(call.conversation) if call is not None else -1
