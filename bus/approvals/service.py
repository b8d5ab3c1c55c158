"""Approvals: a tool call parked until a human decides, then published exactly once.

A call to a tool that requires approval is not written to its conversation nor to the
callee's inbox: it is parked in the approvals view (its own log, keyed by approval). The
approval id is chosen so that it hashes to the same partition as the conversation, so one
worker owns both and decides under the conversation's lock on views that caught up.

Approving writes, in ONE Kafka transaction, the decision (approvals log), the call's
envelope (conversation log, with its sequence number) and the callee's inbox copy;
rejecting writes the decision and the caller's `rejected` result. Either all of a
transaction is visible to the bus's read-committed processors and readers, or none of it:
a worker killed in the middle leaves nothing, and the next owner decides afresh on a view
that says pending. A decision already taken is refused with the first one shown, and the
transactional id of the partition fences a former owner that did not notice it lost it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid

from agentbus_client.models.tools import ToolCall, ToolResult

from bus import headers as h
from bus import metrics, tracing
from bus.approvals.models import Approval, ApprovalRecord, ApprovalView, Decision, ParkedRecord
from bus.clock import now_ms
from bus.cluster.ownership import owned_partitions, owner_partition
from bus.conversations.calls import call_envelope, inbox_copy
from bus.conversations.models import CallLocation, ToolCallView, call_view_key
from bus.conversations.service import count_unseen, envelope_record, note_appended, open_view
from bus.errors import AlreadyDecided, ApprovalNotFound, DigestMismatch, ToolCallNotFound
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, partition_for
from bus.state.keyed import write_decided
from bus.state.waits import Waiters, wait_for_wake, wait_until, wake
from tables.conversations import approvals, conversations, locator

__all__ = [
    "approval_key",
    "changed",
    "decide",
    "expire_due",
    "find",
    "forget",
    "is_parked",
    "owned",
    "park",
    "park_record",
    "parked_call",
]

log = logging.getLogger(__name__)
_expiries: dict[str, int] = {}  # approval key -> expires_at, pending approvals this worker owns
_scanned: set[int] = set()
_parked_calls: set[str] = set()  # call view keys of tool calls awaiting a decision here
_decision_waiters: Waiters = {}  # approval key -> GETs of its call


def is_parked(vkey: str) -> bool:
    """A call id taken by a call that waits for approval (the call has no view until then)."""
    return vkey in _parked_calls


def approval_key(namespace: str, tenant: str, approval_id: str) -> str:
    return f"{namespace}/{tenant}/{approval_id}"


def new_approval_id(namespace: str, tenant: str, conv_key: str) -> str:
    """A random id whose key hashes to the conversation's partition (about 12 tries)."""
    wanted = owner_partition(conv_key)
    while True:
        candidate = f"ap-{uuid.uuid4().hex[:24]}"
        if owner_partition(approval_key(namespace, tenant, candidate)) == wanted:
            return candidate


def digest_of(envelope: dict[str, object]) -> str:
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def park(ctx: BusContext, call: ToolCallView, ttl_ms: int) -> ToolCallView:
    """Park the call (the caller holds the conversation's lock). Returns the call as parked."""
    approval_id = new_approval_id(call.namespace, call.tenant, call.conversation)
    # What the approver sees and quotes: the call without what the bus sets at publish
    # (status, sequence number, and the deadline, which restarts at the approval).
    envelope = call.public().model_dump(
        mode="json", exclude={"approval_id", "approval_digest", "status", "seq", "deadline", "created_at"}
    )
    digest = digest_of(envelope)
    parked = call.model_copy(
        update={"status": "awaiting_approval", "approval_id": approval_id, "approval_digest": digest}
    )
    view = ApprovalView(
        namespace=call.namespace,
        tenant=call.tenant,
        approval_id=approval_id,
        conversation=call.conversation,
        call_id=call.call_id,
        tool=call.tool,
        caller=call.caller,
        callee=call.callee,
        envelope=envelope,
        digest=digest,
        requested_at=now_ms(),
        expires_at=now_ms() + ttl_ms,
        parked=parked,
    )
    akey = approval_key(call.namespace, call.tenant, approval_id)
    requested = approvals.outgoing(akey, ApprovalRecord(kind="requested", approval=view, at=now_ms()))
    # The locator names the approval too, so GET /v1/tool-calls/... answers for the parked
    # call (awaiting_approval, then rejected); approving overwrites it in its transaction.
    vkey = call_view_key(call.namespace, call.tenant, call.call_id)
    located = locator.outgoing(vkey, CallLocation(conversation=call.conversation, approval_id=approval_id))
    partition = owner_partition(akey)
    [produced, _] = await ctx.gateway.produce([requested, located], [partition, owner_partition(vkey)])
    await wait_until(
        lambda: approvals.applied_offset(partition) >= produced.offset,
        ctx.settings.timing.command_timeout,
        f"approvals record {produced.offset} to apply",
    )
    _expiries[akey] = view.expires_at
    return parked


async def find(ctx: BusContext, akey: str) -> ApprovalView:
    await approvals.catch_up(ctx, owner_partition(akey))
    found = await approvals.get_fresh(ctx, akey, ApprovalView)
    if found is None:
        raise ApprovalNotFound(f"No approval {akey.rsplit('/', 1)[-1]}", {"approval": akey})
    return found


async def decide(ctx: BusContext, akey: str, decision: Decision | None, approve: bool, who: str) -> Approval:
    """Approve or reject (decision None: the bus expires it). Exactly once, see the module doc."""
    outcome = "approved" if approve else ("expired" if decision is None else "rejected")
    attributes = {"agentbus.approval": akey, "agentbus.outcome": outcome}
    with tracing.span("approval decide", attributes=attributes):
        return await decide_once(ctx, akey, decision, approve, who)


async def decide_once(
    ctx: BusContext, akey: str, decision: Decision | None, approve: bool, who: str
) -> Approval:
    first = await find(ctx, akey)
    # A tool call's approval is decided under its conversation's lock (the envelope takes a
    # sequence number); a parked publish under its own.
    lock = (
        conversations.deciding(ctx, first.conversation)
        if first.kind == "tool_call"
        else approvals.deciding(ctx, akey)
    )
    async with lock:
        current = await find(ctx, akey)
        if current.state != "pending":
            raise AlreadyDecided(
                f"Approval {current.approval_id} was {current.state} already",
                {
                    "decision": current.public().model_dump(
                        mode="json", include={"state", "decided_by", "decided_at", "reason"}
                    )
                },
            )
        if decision is not None and decision.digest != current.digest:
            raise DigestMismatch(
                "The digest is not the one of this approval's payload: look at it again",
                {"approval": current.approval_id},
            )
        reason = decision.reason if decision is not None else "expired"
        if current.record is not None:
            offset = await settle_record(ctx, akey, current, who, reason, approve, decision is None)
        elif approve:
            offset = await publish(ctx, akey, current, who, reason)
        else:
            offset = await refuse(
                ctx, akey, current, who, reason, "expired" if decision is None else "rejected"
            )
        _expiries.pop(akey, None)
        outcome = "approved" if approve else ("expired" if decision is None else "rejected")
        metrics.APPROVAL_DECISIONS.labels(outcome).observe(max(0, now_ms() - current.requested_at) / 1000)
        partition = owner_partition(akey)
        await wait_until(
            lambda: approvals.applied_offset(partition) >= offset,
            ctx.settings.timing.command_timeout,
            "the approval decision to apply",
        )
    return (await find(ctx, akey)).public()


async def park_record(
    ctx: BusContext,
    envelope: dict[str, object],
    record: OutgoingRecord,
    partition: int,
    ttl_ms: int,
    who: str,
) -> tuple[str, str]:
    """Park a publish a rule gated: (approval id, digest). Not waited for: any worker may
    park, and the owner catches up with the approvals log before it shows or decides it."""
    namespace, tenant, _ = str(envelope["topic"]).split("/")
    approval_id = f"ap-{uuid.uuid4().hex[:24]}"
    akey = approval_key(namespace, tenant, approval_id)
    parked = ParkedRecord(
        topic=str(envelope["topic"]),
        kafka_topic=record.topic,
        partition=partition,
        key=record.key.decode() if record.key is not None else None,
        value=record.value.decode("utf-8", "replace"),
        headers=[(k, v.decode("utf-8", "replace")) for k, v in record.headers],
    )
    view = ApprovalView(
        namespace=namespace,
        tenant=tenant,
        approval_id=approval_id,
        kind="publish",
        caller=who,
        topic=parked.topic,
        envelope=envelope,
        digest=digest_of(envelope),
        requested_at=now_ms(),
        expires_at=now_ms() + ttl_ms,
        record=parked,
    )
    requested = ApprovalRecord(kind="requested", approval=view, at=now_ms())
    await ctx.gateway.produce([approvals.outgoing(akey, requested)], [owner_partition(akey)])
    return approval_id, view.digest


async def settle_record(
    ctx: BusContext, akey: str, approval: ApprovalView, who: str, reason: str, approve: bool, expired: bool
) -> int:
    """A parked publish: approve writes the decision and the record in one transaction."""
    assert approval.record is not None
    state = "approved" if approve else ("expired" if expired else "rejected")
    decided = ApprovalRecord.model_validate(
        {"kind": "decided", "state": state, "by": who, "reason": reason, "at": now_ms()}
    )
    partition = owner_partition(akey)
    records = [(approvals.outgoing(akey, decided), partition)]
    if approve:
        parked = approval.record
        headers = [(k, v.encode()) for k, v in parked.headers] + [
            (h.APPROVAL_ID, approval.approval_id.encode())
        ]
        key = parked.key.encode() if parked.key is not None else None
        records.append(
            (OutgoingRecord(parked.kafka_topic, parked.value.encode(), key, headers), parked.partition)
        )
    produced = await write_decided(partition, records)
    return produced[0].offset


async def publish(ctx: BusContext, akey: str, approval: ApprovalView, who: str, reason: str) -> int:
    """The decision, the call's envelope and the callee's inbox copy, in one transaction.
    Returns the decision's offset."""
    conv_key = approval.conversation
    view = await open_view(ctx, conv_key, approval.caller)
    assert approval.parked is not None
    call = approval.parked.model_copy(
        update={"status": "pending", "deadline": now_ms() + approval.parked.timeout_ms}
    )
    await count_unseen(ctx, conv_key, view)
    message, envelope = envelope_record(conv_key, view, call_envelope(call))
    envelope.headers.append((h.APPROVAL_ID, approval.approval_id.encode()))
    decided = ApprovalRecord(
        kind="decided", state="approved", by=who, reason=reason, published_seq=message.seq, at=now_ms()
    )
    copy = inbox_copy(ctx, call, "tool_call", call.public().model_dump_json())
    partition = owner_partition(conv_key)
    vkey = call_view_key(call.namespace, call.tenant, call.call_id)
    located = locator.outgoing(vkey, CallLocation(conversation=conv_key))
    records = [
        (approvals.outgoing(akey, decided), partition),
        (envelope, partition),
        (copy, inbox_partition(ctx, copy)),
        (located, owner_partition(vkey)),
    ]
    produced = await write_decided(partition, records)
    note_appended(conv_key, message, produced[1].partition, produced[1].offset)
    return produced[0].offset


async def refuse(
    ctx: BusContext, akey: str, approval: ApprovalView, who: str, reason: str, state: str
) -> int:
    """The decision and the caller's `rejected` result, in one transaction; nothing to the target."""
    call = approval.parked
    assert call is not None
    decided = ApprovalRecord.model_validate(
        {"kind": "decided", "state": state, "by": who, "reason": reason, "at": now_ms()}
    )
    result = rejection(call.call_id, state, reason, now_ms())
    copy = inbox_copy(ctx, call, "tool_result", result.model_dump_json(), to=call.reply_to)
    partition = owner_partition(approval.conversation)
    records = [(approvals.outgoing(akey, decided), partition), (copy, inbox_partition(ctx, copy))]
    produced = await write_decided(partition, records)
    metrics.TOOL_CALLS.labels("rejected").observe(max(0, result.at - call.created_at) / 1000)
    return produced[0].offset


def rejection(call_id: str, state: str, reason: str, at: int) -> ToolResult:
    """The `rejected` result of a call whose approval was rejected or expired (state)."""
    error = {"code": state, "message": reason or f"the approval was {state}"}
    return ToolResult.model_validate(
        {"call_id": call_id, "status": "rejected", "error": error, "by": "bus", "at": at}
    )


async def parked_call(
    ctx: BusContext, vkey: str, approval_id: str, wait_ms: int
) -> tuple[ToolCall | None, int]:
    """A call that was parked for approval, as GET /v1/tool-calls/... shows it, and what is
    left of wait_ms. While the approval is pending: the call `awaiting_approval`, after
    waiting up to wait_ms for the decision (the processor wakes the wait when it applies
    one). Rejected or expired: the call `rejected`, with the result the reply_to agent got
    (its `at` is the decision's time). Approved: None, the call is in its conversation.
    Runs on the owner of the approval's partition (the conversation's owner)."""
    ns, tenant, call_id = vkey.removeprefix("call:").split("/")
    akey = approval_key(ns, tenant, approval_id)
    await approvals.catch_up(ctx, owner_partition(akey))
    approval = approvals.get(akey, ApprovalView)
    if approval is None or approval.parked is None or approval.call_id != call_id:
        raise ToolCallNotFound(f"No tool call {call_id}", {"call_id": call_id})
    if approval.state == "pending" and wait_ms > 0:
        began = time.monotonic()
        with tracing.span("approval wait", attributes={"agentbus.approval_id": approval_id}):
            # no await since the view said pending
            await wait_for_wake(_decision_waiters, akey, wait_ms / 1000)
        wait_ms = max(0, wait_ms - int((time.monotonic() - began) * 1000))
        approval = approvals.get(akey, ApprovalView) or approval
    if approval.state == "approved":
        return None, wait_ms
    return as_parked_call(approval), wait_ms


def as_parked_call(approval: ApprovalView) -> ToolCall:
    assert approval.parked is not None
    call = approval.parked.public()
    if approval.state == "pending":
        return call
    result = rejection(call.call_id, approval.state, approval.reason, approval.decided_at or now_ms())
    return call.model_copy(update={"status": "rejected", "result": result})


def inbox_partition(ctx: BusContext, record: OutgoingRecord) -> int:
    return partition_for(record.key, ctx.settings.state_partitions, 0)


def owned(state: str | None, tool: str | None, agent: str | None) -> list[Approval]:
    """The approvals of this worker's partitions, filtered."""
    found = [a.public() for a in approvals.owned_values(ApprovalView)]
    return [
        a
        for a in found
        if (state is None or a.state == state)
        and (tool is None or a.tool == tool)
        and (agent is None or agent in (a.caller, a.callee))
    ]


def changed(akey: str, approval: ApprovalView) -> None:
    """The processor applied a change: track pending approvals (expiry, parked call ids)."""
    vkey = call_view_key(approval.namespace, approval.tenant, approval.call_id) if approval.call_id else None
    if approval.state == "pending":
        _expiries[akey] = approval.expires_at
        if vkey is not None:
            _parked_calls.add(vkey)
    else:
        _expiries.pop(akey, None)
        if vkey is not None:
            _parked_calls.discard(vkey)
        wake(_decision_waiters, akey)


async def expire_due(ctx: BusContext) -> None:
    for partition in owned_partitions(approvals.topic) - approvals.caught_up_partitions():
        try:
            await approvals.catch_up(ctx, partition)
        except Exception as exc:  # the next tick tries again
            log.info("catching up approvals partition %d failed: %s", partition, exc)
    scan_new_partitions()
    now = now_ms()
    for akey, expires_at in list(_expiries.items()):
        if expires_at > now:
            continue
        try:
            await decide(ctx, akey, None, approve=False, who="bus")
        except AlreadyDecided:
            _expiries.pop(akey, None)
        except Exception as exc:  # the next tick tries again
            log.warning("expiring approval %s failed: %s", akey, exc)


def scan_new_partitions() -> None:
    fresh = approvals.caught_up_partitions() - _scanned
    if not fresh:
        return
    _scanned.update(fresh)
    for approval in approvals.owned_values(ApprovalView):
        akey = approval_key(approval.namespace, approval.tenant, approval.approval_id)
        if approval.state == "pending" and owner_partition(akey) in fresh:
            changed(akey, approval)


def pending_gauges() -> list[metrics.Row]:
    """How many approvals this worker owns wait, and how soon the first expires (at scrape time)."""
    soonest = min(_expiries.values(), default=None)
    return [((), (float(len(_expiries)), None if soonest is None else (soonest - now_ms()) / 1000))]


metrics.APPROVALS.read_from(pending_gauges)


def forget(partitions: set[int]) -> None:
    _scanned.difference_update(partitions)
    for akey in [k for k in _expiries if owner_partition(k) in partitions]:
        del _expiries[akey]
