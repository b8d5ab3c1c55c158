"""Agents: register, change state, delete, heartbeat, liveness, and messages to inboxes.

Everything about one agent runs on the worker that owns its key (bus.cluster.ownership), where
its registration (the agents log) and its heartbeats (the heartbeats log) have their
views (bus.state.keyed). Changes are decided one at a time per agent on a caught-up view, so
a 409 or 404 is never answered from a stale one, and a 2xx means the change is in the
owner's view (read-your-writes on every worker: they all forward to the owner).

Liveness is derived from heartbeats: alive, late after LATE_AFTER intervals without a
beat, dead after DEAD_AFTER (and unknown before the first beat; dead if none comes in
DEAD_AFTER intervals). The owner evaluates it on a timer; each change is announced on the
tenant's agent-events topic *before* it is recorded, so an owner dying in between
announces it again after the failover: liveness events are at least once, in order per
agent. Registered, state and deleted events follow the recorded change (a crash between
the two loses that event; the change itself stands).

A message goes to the shared inbox topic, keyed (and so partitioned) by the agent, and
the agent reads it through its inbox subscription: only its own messages, in order,
durable until acked.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
from collections import Counter
from datetime import UTC, datetime

from agentbus_client.models.subscriptions import Subscription, subscription_key
from agentbus_client.models.topics import Topic, TopicSpec, topic_id
from pydantic_core import to_json

from bus import headers as h
from bus import metrics
from bus.agents.models import (
    DEAD_AFTER,
    LATE_AFTER,
    MAX_SCHEMA_BYTES,
    TRANSITIONS,
    Agent,
    AgentCard,
    AgentEvent,
    AgentMessageSpec,
    AgentRecord,
    AgentSkill,
    AgentSpec,
    HeartbeatReceipt,
    HeartbeatRecord,
    HeartbeatRequest,
    HeartbeatView,
    Liveness,
    SendReceipt,
    StateChange,
    agent_key,
    inbox_subscription_id,
)
from bus.clock import now_ms
from bus.cluster.ownership import is_owner, owned_partitions, owner_partition
from bus.errors import (
    AgentDisabled,
    AgentExists,
    AgentNotFound,
    IllegalTransition,
    InvalidSchema,
    NotReady,
    OwnerMoved,
    PayloadTooLarge,
    ReservedHeader,
    SchemaTooLarge,
    SubscriptionNotFound,
    TenantForbidden,
    TopicExists,
    Unprocessable,
)
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord
from bus.schemas.registry import check_schema
from bus.state.keyed import BARRIER, BARRIER_KIND, KIND_HEADER
from bus.subscriptions.dispatcher_pool import inbox_kafka_topic
from bus.subscriptions.models import SubscriptionCommand
from bus.subscriptions.service import find_topic, require_subscription, send_command
from bus.topics.service import create_topic
from bus.topics.store import get_topic
from tables.agents import agents, heartbeats

__all__ = [
    "as_datetime",
    "change_state",
    "check_capabilities",
    "check_message",
    "delete",
    "evaluate_liveness",
    "find",
    "flush_heartbeats",
    "forget",
    "heartbeat",
    "inbox_key",
    "owned_agents",
    "register",
    "send_message",
]

log = logging.getLogger(__name__)
EVENTS_TOPIC = "agent-events"  # a bus topic per tenant: agent.registered, .state, .liveness, .deleted
DEAD_LETTERS_TOPIC = "inbox-dlq"  # a bus topic per tenant: inbox messages never acked
INBOX_TOPIC = "inbox"  # the name an inbox subscription gives its source (the shared inbox topic)

# What this owner wrote to the heartbeats log, ahead of its view while the records travel
# to the processor: the beats (the timer must not call an agent late because of a beat in
# flight) and the liveness it announced with its time (so it never announces one twice,
# and never waits for the view to decide). Dropped with the partition: the next owner
# catches its view up with the log before it decides anything.
_last_beat: dict[str, int] = {}
_announced: dict[str, tuple[Liveness, int]] = {}
DECISIONS_AT_ONCE = 32  # liveness decisions in flight per worker
# The view keeps a beat only if it is this fraction of an interval newer than the one it
# has (or says something new): half the processor's writes for agents that beat often,
# and a view at most a quarter interval behind (late takes two).
COALESCE = 4


def at(unix_ms: int | None) -> datetime | None:
    return None if unix_ms is None else as_datetime(unix_ms)


def as_datetime(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)


def forget(partitions: set[int]) -> None:
    for memory in (_last_beat, _announced, SCHEDULE.due):
        for key in [k for k in memory if owner_partition(k) in partitions]:
            del memory[key]


def drop(key: str) -> None:
    """Forget an agent that is registered again or deleted (and look at it again soon)."""
    _last_beat.pop(key, None)
    _announced.pop(key, None)
    SCHEDULE.touch(key)


# -- reading (owner only) ----------------------------------------------------------------


def require_owner(key: str) -> None:
    if not is_owner(key, agents.topic):
        raise OwnerMoved("This worker does not own this agent now; retry", {"agent": key})


async def find(ctx: BusContext, key: str) -> Agent:
    """The agent with its liveness, from views that have caught up; AgentNotFound (404)."""
    require_owner(key)
    partition = owner_partition(key)
    await agents.catch_up(ctx, partition)
    await heartbeats.catch_up(ctx, partition)
    agent = agents.get(key, Agent)
    if agent is None:
        raise AgentNotFound(f"Agent {key} does not exist", {"agent": key})
    return with_liveness(agent)


def with_liveness(agent: Agent) -> Agent:
    beats = heartbeats.get(agent.key, HeartbeatView) or HeartbeatView()
    liveness, since = announced(agent.key, beats)
    return agent.model_copy(
        update={
            "liveness": liveness,
            "liveness_since": at(since),
            "last_heartbeat_at": at(last_beat(agent.key, beats)),
            "status": beats.status,
        }
    )


def owned_agents() -> list[Agent]:
    """Every agent this worker owns (eventually consistent while a partition recovers)."""
    return [with_liveness(a) for a in owned()]


class Parsed:
    """The agents view, parsed once per change: the liveness timer reads every owned agent
    twice a second, and parsing (and hashing the key to its partition) dominated it."""

    def __init__(self) -> None:
        self.agents: dict[str, tuple[bytes, Agent, int]] = {}  # key -> (raw, agent, partition)
        self.beats: dict[str, tuple[bytes, HeartbeatView]] = {}

    def owned(self) -> list[Agent]:
        mine, found, seen = owned_partitions(agents.topic), [], {}
        for key, raw in list(agents.table.items()):
            if key.startswith("\x00") or raw is None:  # the view's own bookkeeping
                continue
            hit = seen[key] = self._parsed(key, raw)
            if hit[2] in mine:
                found.append(hit[1])
        self.agents = seen
        self.beats = {k: v for k, v in self.beats.items() if k in seen}
        return found

    def agent(self, key: str) -> Agent | None:
        """One agent from the view, parsed once per change."""
        raw = agents.raw(key)
        if raw is None:
            return None
        hit = self.agents[key] = self._parsed(key, raw)
        return hit[1]

    def _parsed(self, key: str, raw: bytes) -> tuple[bytes, Agent, int]:
        hit = self.agents.get(key)
        if hit is None or hit[0] != raw:
            hit = (raw, Agent.model_validate_json(raw), owner_partition(key))
        return hit

    def partition_of(self, key: str) -> int:
        """key's partition, hashed once per parse rather than on every liveness tick."""
        hit = self.agents.get(key)
        return hit[2] if hit is not None else owner_partition(key)

    def beats_of(self, key: str) -> HeartbeatView:
        raw = heartbeats.raw(key)
        if raw is None:
            return HeartbeatView()
        hit = self.beats.get(key)
        if hit is None or hit[0] != raw:
            hit = (raw, HeartbeatView.model_validate_json(raw))
            self.beats[key] = hit
        return hit[1]


PARSED = Parsed()


class LivenessSchedule:
    """When each owned agent's liveness can next change, so that a tick looks only at the
    agents due then and those touched since (a beat, a registration): liveness moves only
    at known times (late after LATE_AFTER intervals, dead after DEAD_AFTER) or at a beat.
    Every agent is still looked at every FULL_PASS_MS, and after the owned partitions
    change, so a change no hook saw is late by at most that."""

    FULL_PASS_MS = 5_000
    TOUCH_TRIES = 20  # ticks a touched key waits for the view to have the agent

    def __init__(self) -> None:
        self.due: dict[str, int] = {}  # key -> when (unix ms); the heap may hold stale times
        self.heap: list[tuple[int, str]] = []
        self.touched: dict[str, int] = {}  # key -> tries left
        self.full_pass_at = 0
        self.passed_over: frozenset[int] = frozenset()  # the partitions of the last full pass

    def touch(self, key: str) -> None:
        self.touched[key] = self.TOUCH_TRIES

    def wants_full_pass(self, now: int, mine: frozenset[int]) -> bool:
        return now >= self.full_pass_at or mine != self.passed_over

    def pass_again(self) -> None:
        """The next tick looks at every agent."""
        self.full_pass_at = 0

    def full_pass_done(self, now: int, mine: frozenset[int]) -> None:
        self.full_pass_at, self.passed_over = now + self.FULL_PASS_MS, mine
        self.touched.clear()

    def at(self, key: str, when: int | None) -> None:
        """Look at key again at when (never, if None: only a beat or a pass changes it)."""
        if when is None:
            self.due.pop(key, None)
            return
        if self.due.get(key) != when:
            self.due[key] = when
            heapq.heappush(self.heap, (when, key))

    def take(self, now: int) -> list[str]:
        """The keys due by now and those touched, each once."""
        found = dict.fromkeys(self.touched)
        while self.heap and self.heap[0][0] <= now:
            when, key = heapq.heappop(self.heap)
            if self.due.get(key) == when:
                del self.due[key]
                found[key] = None
        for key in list(self.touched):
            self.touched[key] -= 1
            if self.touched[key] <= 0:
                del self.touched[key]
        return list(found)

    def seen(self, key: str) -> None:
        """key's agent was looked at: touching it again is for a later change."""
        self.touched.pop(key, None)


SCHEDULE = LivenessSchedule()


def owned() -> list[Agent]:
    return PARSED.owned()


def count_by_liveness() -> list[metrics.Row]:
    """The agents this worker owns, by the liveness last announced (read at scrape time)."""
    counts: Counter[str] = Counter(announced(a.key, PARSED.beats_of(a.key))[0] for a in owned())
    return [((state,), (float(counts[state]),)) for state in metrics.LIVENESS_STATES]


metrics.AGENTS.read_from(count_by_liveness)


def announced(key: str, beats: HeartbeatView) -> tuple[Liveness, int | None]:
    """The liveness last announced (and since when): this owner's, else the view's."""
    mine = _announced.get(key)
    if mine is not None and (beats.since is None or mine[1] >= beats.since):
        return mine
    return beats.liveness, beats.since


def last_beat(key: str, beats: HeartbeatView) -> int | None:
    mine = _last_beat.get(key)
    if beats.last_beat_at is None or mine is None:
        return beats.last_beat_at if mine is None else mine
    return max(beats.last_beat_at, mine)


# -- registration, state, deletion (owner only) -------------------------------------------


async def register(ctx: BusContext, spec: AgentSpec) -> tuple[Agent, bool]:
    """Register an agent: its inbox subscription and its tenant's agent-events topic exist
    before the 201. The agent, and whether this call registered it.

    The same registration again (every field of the body as registered, and the agent
    still in that state) is the agent as it is, not a conflict: a caller retrying a
    registration whose answer it lost (or that failed after the record was written) ends
    with the agent, not a 409. AgentExists (409) if the key is taken otherwise."""
    check_capabilities(spec)
    key = agent_key(spec.namespace, spec.tenant, spec.id)
    created = now_ms()
    agent = Agent(
        namespace=spec.namespace,
        tenant=spec.tenant,
        id=spec.id,
        display_name=spec.display_name or spec.id,
        description=spec.description,
        capabilities=spec.capabilities,
        card=spec.card or card_from(spec),
        labels=spec.labels,
        heartbeat_interval_ms=spec.heartbeat_interval_ms,
        state=spec.state,
        inbox=spec.inbox,
        created_at=as_datetime(created),
        updated_at=as_datetime(created),
    )
    async with agents.deciding(ctx, key):
        existing = agents.get(key, Agent)
        if existing is not None:
            if same_registration(existing, agent):
                return await find(ctx, key), False
            raise AgentExists(f"Agent {key} already exists", {"agent": key})
        # Everything that can fail for want of a topic happens before the record is written,
        # and the event is published to the topic found here, not looked up again.
        events = await ensure_topic(
            ctx, spec.namespace, spec.tenant, EVENTS_TOPIC, "Agent lifecycle and liveness"
        )
        await create_inbox(ctx, agent)
        drop(key)
        await heartbeats.append(ctx, key, HeartbeatRecord(kind="reset", at=created))
        await agents.append(ctx, key, AgentRecord(kind="registered", agent=agent, at=created))
        await publish_event(
            ctx, agent, AgentEvent(type="agent.registered", agent=key, to=agent.state, at=created), events
        )
    return with_liveness(agent), True


REGISTERED_FIELDS = frozenset(
    {
        "namespace",
        "tenant",
        "id",
        "display_name",
        "description",
        "capabilities",
        "card",
        "labels",
        "heartbeat_interval_ms",
        "state",
        "inbox",
    }
)


def same_registration(existing: Agent, wanted: Agent) -> bool:
    """Whether wanted registers the agent exactly as it stands (times and liveness aside)."""
    return existing.model_dump(include=set(REGISTERED_FIELDS)) == wanted.model_dump(
        include=set(REGISTERED_FIELDS)
    )


def check_capabilities(spec: AgentSpec) -> None:
    """InvalidSchema (422) or SchemaTooLarge (413) for the first bad input or output schema."""
    for index, capability in enumerate(spec.capabilities):
        for field, schema in (
            ("input_schema", capability.input_schema),
            ("output_schema", capability.output_schema),
        ):
            if schema is None:
                continue
            where = {"capability": capability.name, "index": index, "field": field}
            size = len(to_json(schema))
            if size > MAX_SCHEMA_BYTES:
                raise SchemaTooLarge("A capability's schema is over the size limit", {**where, "size": size})
            try:
                check_schema(schema)
            except InvalidSchema as exc:
                raise InvalidSchema(exc.message, {**where, **(exc.details or {})}) from None


def card_from(spec: AgentSpec) -> AgentCard:
    """The A2A card of an agent that brought none: one skill per capability."""
    return AgentCard(
        name=spec.display_name or spec.id,
        description=spec.description,
        version="0.0.0",
        skills=[AgentSkill(id=c.name, name=c.name, description=c.description) for c in spec.capabilities],
    )


async def change_state(ctx: BusContext, key: str, change: StateChange) -> Agent:
    """Move the operator state; the same state again changes nothing (200).
    IllegalTransition (409) lists the states allowed from the current one."""
    async with agents.deciding(ctx, key):
        agent = await find(ctx, key)
        if change.state == agent.state:
            return agent
        allowed = TRANSITIONS[agent.state]
        if change.state not in allowed:
            raise IllegalTransition(
                f"An agent that is {agent.state} cannot become {change.state}",
                {"from": agent.state, "to": change.state, "allowed": list(allowed)},
            )
        now = now_ms()
        await agents.append(ctx, key, AgentRecord(kind="state", state=change.state, at=now))
        event = AgentEvent(
            type="agent.state", agent=key, from_=agent.state, to=change.state, at=now, reason=change.reason
        )
        await publish_event(ctx, agent, event)
        return await find(ctx, key)


async def delete(ctx: BusContext, key: str) -> Agent:
    """Delete the agent and its inbox subscription (unread messages stay in the inbox
    topic until its retention; a new agent of the same id starts after them)."""
    async with agents.deciding(ctx, key):
        agent = await find(ctx, key)
        await delete_inbox(ctx, agent)
        now = now_ms()
        await agents.append(ctx, key, AgentRecord(kind="deleted", at=now))
        await heartbeats.append(ctx, key, HeartbeatRecord(kind="reset", at=now))
        drop(key)
        await publish_event(
            ctx, agent, AgentEvent(type="agent.deleted", agent=key, from_=agent.state, at=now)
        )
        return agent


# -- the inbox subscription ---------------------------------------------------------------


def inbox_key(namespace: str, tenant: str, agent_id: str) -> str:
    return subscription_key(namespace, tenant, inbox_subscription_id(agent_id))


async def create_inbox(ctx: BusContext, agent: Agent) -> Subscription:
    """The agent's inbox: a subscription of its partition of the shared inbox topic,
    delivering only its records, from the end of that partition as of now."""
    key = inbox_key(agent.namespace, agent.tenant, agent.id)
    await delete_inbox(ctx, agent)  # one left by a registration or deletion that died midway
    await ensure_topic(ctx, agent.namespace, agent.tenant, DEAD_LETTERS_TOPIC, "Inbox messages never acked")
    s = ctx.settings
    created = datetime.now(UTC)
    sub = Subscription(
        namespace=agent.namespace,
        tenant=agent.tenant,
        id=inbox_subscription_id(agent.id),
        topic=INBOX_TOPIC,
        start="latest",
        start_offsets=await ctx.gateway.resolve_offsets(inbox_kafka_topic(s), s.state_partitions, "latest"),
        ack_mode="manual",
        ack_deadline_ms=agent.inbox.ack_deadline_ms,
        max_deliveries=agent.inbox.max_deliveries,
        redelivery_backoff_ms=agent.inbox.redelivery_backoff_ms,
        redelivery_backoff_max_ms=max(60_000, agent.inbox.redelivery_backoff_ms),
        dead_letter_topic=DEAD_LETTERS_TOPIC,
        description=f"Inbox of agent {agent.key}",
        consumer_group=f"{s.prefix}.inbox.{agent.key.replace('/', '.')}.{int(created.timestamp() * 1000)}",
        inbox_of=agent.key,
        created_at=created,
    )
    await send_command(ctx, SubscriptionCommand(op="create", key=key, subscription=sub))
    return sub


async def delete_inbox(ctx: BusContext, agent: Agent) -> None:
    key = inbox_key(agent.namespace, agent.tenant, agent.id)
    try:
        await require_subscription(ctx, key)
    except SubscriptionNotFound:
        return
    await send_command(ctx, SubscriptionCommand(op="delete", key=key))


# -- heartbeats and liveness (owner only) -------------------------------------------------


async def heartbeat(ctx: BusContext, key: str, body: HeartbeatRequest) -> HeartbeatReceipt:
    """Append a beat to the heartbeats log; answered once Kafka has it, not once applied."""
    agent = await find(ctx, key)
    received = now_ms()
    beat = HeartbeatRecord(
        kind="beat", at=received, status=body.status, coalesce_ms=agent.heartbeat_interval_ms // COALESCE
    )
    record = heartbeats.outgoing(key, beat)
    await ctx.gateway.produce([record], [owner_partition(key)])
    _last_beat[key] = max(_last_beat.get(key, 0), received)
    SCHEDULE.touch(key)
    return HeartbeatReceipt(
        agent=key,
        received_at=received,
        liveness=agent.liveness,
        state=agent.state,
        heartbeat_interval_ms=agent.heartbeat_interval_ms,
    )


def liveness_of(agent: Agent, beat: int | None, now: int) -> Liveness:
    interval = agent.heartbeat_interval_ms
    if beat is None:
        waited = now - int(agent.created_at.timestamp() * 1000)
        return "unknown" if waited < DEAD_AFTER * interval else "dead"
    elapsed = now - beat
    if elapsed < LATE_AFTER * interval:
        return "alive"
    return "late" if elapsed < DEAD_AFTER * interval else "dead"


def next_change(agent: Agent, beat: int | None, now: int) -> int | None:
    """When liveness_of the agent changes next if no beat comes (None: not without one)."""
    interval = agent.heartbeat_interval_ms
    if beat is None:
        dead_at = int(agent.created_at.timestamp() * 1000) + DEAD_AFTER * interval
        return dead_at if now < dead_at else None
    for after in (LATE_AFTER, DEAD_AFTER):
        if now < beat + after * interval:
            return beat + after * interval
    return None


async def evaluate_liveness(ctx: BusContext) -> None:
    """Record (and announce) every liveness change among the agents this worker owns: a tick
    looks at the agents SCHEDULE says are due or touched, a full pass at every agent.

    Partitions whose views are not caught up yet (just assigned) are caught up first, once
    each, and their agents wait for the next tick: the first decisions after a rebalance
    never rest on a view that lags the log."""
    now, mine = now_ms(), owned_partitions(agents.topic)
    full_pass = SCHEDULE.wants_full_pass(now, mine)
    if full_pass:
        looked_at = owned()
    else:
        found = (PARSED.agent(key) for key in SCHEDULE.take(now))
        looked_at = [a for a in found if a is not None and PARSED.partition_of(a.key) in mine]
    caught_up = agents.caught_up_partitions() & heartbeats.caught_up_partitions()
    behind = {PARSED.partition_of(a.key) for a in looked_at} - caught_up
    if behind:
        await asyncio.gather(*(catch_up(ctx, p) for p in behind), return_exceptions=True)
        SCHEDULE.pass_again()
        return
    if full_pass:
        SCHEDULE.full_pass_done(now, mine)
    due = []
    for agent in looked_at:
        SCHEDULE.seen(agent.key)
        beats = PARSED.beats_of(agent.key)
        beat = last_beat(agent.key, beats)
        if liveness_of(agent, beat, now) != announced(agent.key, beats)[0]:
            due.append(agent.key)
            SCHEDULE.at(agent.key, now)  # looked at again next tick: decided by then, or retried
        else:
            SCHEDULE.at(agent.key, next_change(agent, beat, now))
    await decide_due(ctx, due)


async def decide_due(ctx: BusContext, due: list[str]) -> None:
    room = asyncio.Semaphore(DECISIONS_AT_ONCE)

    async def decide(key: str) -> None:
        async with room:
            await decide_liveness(ctx, key)

    outcomes = await asyncio.gather(*(decide(key) for key in due), return_exceptions=True)
    for key, outcome in zip(due, outcomes, strict=True):
        if isinstance(outcome, OwnerMoved):
            log.debug("liveness of %s: the partition moved", key)
        elif isinstance(outcome, BaseException):
            log.warning("liveness of %s not evaluated: %r", key, outcome)


async def flush_heartbeats(ctx: BusContext, partition: int) -> None:
    """A barrier record on the heartbeats log: its processor writes its batch of beats then."""
    record = OutgoingRecord(heartbeats.kafka_topic, b"{}", BARRIER.encode(), [(KIND_HEADER, BARRIER_KIND)])
    await ctx.gateway.produce([record], [partition])


async def catch_up(ctx: BusContext, partition: int) -> None:
    await agents.catch_up(ctx, partition)
    await heartbeats.catch_up(ctx, partition)


async def decide_liveness(ctx: BusContext, key: str) -> None:
    """Announce the agent's new liveness, then record it (not waiting for the view: this
    owner remembers what it announced)."""
    async with heartbeats.deciding(ctx, key):
        await agents.catch_up(ctx, owner_partition(key))
        agent = agents.get(key, Agent)
        if agent is None:
            return  # deleted meanwhile
        beats = heartbeats.get(key, HeartbeatView) or HeartbeatView()
        beat, now = last_beat(key, beats), now_ms()
        to, (previous, _) = liveness_of(agent, beat, now), announced(key, beats)
        if to == previous:
            return
        event = AgentEvent(
            type="agent.liveness", agent=key, from_=previous, to=to, at=now, last_heartbeat_at=beat
        )
        await publish_event(ctx, agent, event)  # first: a crash before the record announces it again
        record = heartbeats.outgoing(key, HeartbeatRecord(kind="transition", at=now, liveness=to))
        await ctx.gateway.produce([record], [owner_partition(key)])
        _announced[key] = (to, now)
        metrics.AGENT_LIVENESS_CHANGES.labels(to).inc()


# -- messages ----------------------------------------------------------------------------


def resolve_ref(namespace: str, tenant: str, ref: str, field: str) -> str:
    """An agent reference of this tenant as a key; TenantForbidden (403) for another tenant's."""
    parts = ref.split("/")
    if len(parts) == 3 and (parts[0], parts[1]) != (namespace, tenant):
        raise TenantForbidden(f"'{field}' names an agent of another tenant", {"field": field, "agent": ref})
    return agent_key(namespace, tenant, parts[-1])


def check_message(ctx: BusContext, namespace: str, tenant: str, spec: AgentMessageSpec) -> bytes:
    """Everything about a message that needs no agent: 4xx before anything else; the payload."""
    limits = ctx.settings.limits
    forged = sorted(k for k in spec.headers if h.is_reserved(k))
    if forged:
        raise ReservedHeader("Headers starting with 'bus.' are set by the bus", {"headers": forged})
    if len(spec.headers) > limits.max_headers:
        raise Unprocessable("Too many headers", {"limit": limits.max_headers})
    for field, ref in (("from", spec.from_), ("reply_to", spec.reply_to)):
        if ref is not None:
            resolve_ref(namespace, tenant, ref, field)
    if spec.content_type.startswith("text/") and isinstance(spec.payload, str):
        value = spec.payload.encode()
    else:
        value = to_json(spec.payload)
    if len(value) > limits.max_payload_bytes:
        raise PayloadTooLarge(
            "The payload is over the size limit", {"size": len(value), "limit": limits.max_payload_bytes}
        )
    return value


async def send_message(ctx: BusContext, key: str, spec: AgentMessageSpec) -> SendReceipt:
    """Put a message in the agent's inbox. AgentNotFound (404); AgentDisabled (409) when an
    operator disabled it (a draining agent still receives: answers to its work in flight)."""
    agent = await find(ctx, key)
    value = check_message(ctx, agent.namespace, agent.tenant, spec)
    if agent.state == "disabled":
        raise AgentDisabled(f"Agent {key} is disabled", {"agent": key, "state": agent.state})
    message_id = spec.message_id or os.urandom(16).hex()
    stamped = {
        **spec.headers,
        h.KIND: "message",
        h.MESSAGE_ID: message_id,
        h.NAMESPACE: agent.namespace,
        h.TENANT: agent.tenant,
        h.PUBLISHED_AT: str(now_ms()),
        h.CONTENT_TYPE: spec.content_type,
        h.TO: key,
    }
    for name, ref in ((h.FROM, spec.from_), (h.REPLY_TO, spec.reply_to)):
        if ref is not None:
            stamped[name] = resolve_ref(agent.namespace, agent.tenant, ref, name)
    if spec.correlation_id is not None:
        stamped[h.CORRELATION_ID] = spec.correlation_id
    record = OutgoingRecord(inbox_kafka_topic(ctx.settings), value, key.encode(), h.to_kafka(stamped))
    [produced] = await ctx.gateway.produce([record], [owner_partition(key)])
    return SendReceipt(
        agent=key,
        message_id=message_id,
        partition=produced.partition,
        offset=produced.offset,
        timestamp=produced.timestamp,
    )


# -- the tenant's topics -----------------------------------------------------------------


ENSURE_ATTEMPTS = 3


async def ensure_topic(ctx: BusContext, namespace: str, tenant: str, name: str, description: str) -> Topic:
    """A bus topic of the tenant, created if missing (a concurrent create is fine).

    The bus needs these topics, so a topic this worker's copy of the table does not show
    (a create that lost a race against one this copy has not applied, or a copy that lost
    an entry in a rebalance) is never the caller's 404: the create is tried again (it
    adopts the Kafka topic and its command lands on the copy), and NotReady (503,
    retriable) if the topic still does not show."""
    tid = topic_id(namespace, tenant, name)
    spec = TopicSpec(namespace=namespace, tenant=tenant, name=name, description=description)
    for _ in range(ENSURE_ATTEMPTS):
        found = await find_topic(ctx, tid)
        if found is not None:
            return found
        try:
            return await create_topic(ctx, spec)
        except TopicExists:
            found = get_topic(tid)
            if found is not None:
                return found
            log.warning("topic %s was created but this worker does not show it; creating it again", tid)
    raise NotReady(f"Topic {tid} is not visible on this worker yet; retry", {"topic": tid})


async def publish_event(ctx: BusContext, agent: Agent, event: AgentEvent, topic: Topic | None = None) -> None:
    """An event on the tenant's agent-events topic (the one given, else looked up or created),
    keyed by agent id (in order per agent)."""
    if topic is None:
        topic = await ensure_topic(
            ctx, agent.namespace, agent.tenant, EVENTS_TOPIC, "Agent lifecycle and liveness"
        )
    stamped = {
        h.KIND: event.type,
        h.MESSAGE_ID: os.urandom(16).hex(),
        h.NAMESPACE: agent.namespace,
        h.TENANT: agent.tenant,
        h.PUBLISHED_AT: str(now_ms()),
        h.CONTENT_TYPE: "application/json",
    }
    value = event.model_dump_json(by_alias=True, exclude_none=True).encode()
    await ctx.gateway.produce(
        [OutgoingRecord(topic.kafka_topic, value, agent.id.encode(), h.to_kafka(stamped))]
    )
