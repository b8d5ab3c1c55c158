"""Conversations: create, transition, append and read back, on the conversation's owner.

Every change is a record on the conversations log, appended by the owner of the
conversation's key while it holds the key's lock on a caught-up view (bus.state.keyed): so
checks (exists, state, participant) and the sequence number a message gets are decided
one at a time, and sequence numbers have no gaps. A message does not wait for the view:
the owner remembers the next number itself, so appends to one conversation are paced by
Kafka's acknowledgement, not by the processor; reads wait for the view instead. Nor does
the next decision wait for Kafka: a message's record is queued for the partition's next
transaction (bus.kafka.transactions, group commit) and the key's lock let go, and its
caller is answered once it commits. Records commit in decision order; when one cannot,
neither can any decided after it under the same producer generation, so a number is
never skipped, and the next owner (or the next generation) decides from the log.
Messages are never copied into the table: a replay reads them back from Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import JsonValue

from bus import headers as h
from bus.clock import now_ms
from bus.cluster.ownership import owner_partition
from bus.conversations.models import (
    ACCEPTS_MESSAGES,
    INDEX_EVERY,
    RECENT_IDS,
    TRANSITIONS,
    Conversation,
    ConversationRecord,
    ConversationSpec,
    ConversationView,
    EnvelopeKind,
    Message,
    MessageSpec,
    TransitionRequest,
    conversation_key,
    index_key,
    message_id_key,
)
from bus.errors import (
    ConversationExists,
    ConversationNotFound,
    ConversationNotOpen,
    IllegalTransition,
    NotAParticipant,
)
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, Produced, guarded, partition_for
from bus.state.keyed import decided_under, enqueue_decided
from bus.state.waits import wait_until
from tables.conversations import conversations

__all__ = [
    "Envelope",
    "append_envelope",
    "append_message",
    "count_unseen",
    "create",
    "current_view",
    "delete",
    "envelope_record",
    "forget",
    "new_id",
    "note_appended",
    "open_view",
    "read_messages",
    "settle",
    "start_offset",
    "transition",
    "view_of",
]

# The owner's own count of sequence numbers handed out, ahead of its view while records
# are on their way to Kafka and the processor: key -> (producer generation, next number).
# It counts only under the generation it was taken under (when a record of it fails to
# commit, so does every later one of that generation, and the next one starts from the
# log); dropped with the partition.
log = logging.getLogger(__name__)
UNSEEN_LIMIT = 1_000_000  # messages read past the view at most (it is near the log's end)

_next_seq: dict[str, tuple[int, int]] = {}
_last_appended: dict[int, int] = {}  # partition -> offset of the owner's last message
_recent_ids: dict[str, dict[str, int]] = {}  # key -> message id -> seq, of the owner's own appends
_in_flight: dict[tuple[str, str], asyncio.Future[Message]] = {}  # (key, message id) -> its append
_tail_read: dict[str, int] = {}  # key -> the producer generation its log tail was read under


def new_id() -> str:
    return uuid.uuid4().hex


async def view_of(ctx: BusContext, key: str) -> ConversationView:
    """The owner's view of a conversation, reflecting every append so far; 404 if none."""
    await conversations.catch_up(ctx, owner_partition(key))
    await settle(ctx, key)
    view = conversations.get(key, ConversationView)
    if view is None:
        raise ConversationNotFound(f"Conversation {key} does not exist", {"conversation": key})
    return view


async def create(ctx: BusContext, spec: ConversationSpec) -> Conversation:
    conversation_id = spec.id or new_id()
    key = conversation_key(spec.namespace, spec.tenant, conversation_id)
    now = datetime.fromtimestamp(now_ms() / 1000, UTC)
    view = ConversationView(
        namespace=spec.namespace,
        tenant=spec.tenant,
        id=conversation_id,
        participants=list(dict.fromkeys(spec.participants)),
        title=spec.title,
        state="open",
        metadata=spec.metadata,
        labels=spec.labels,
        created_at=now,
        last_activity_at=now,
        message_count=0,
    )
    async with conversations.deciding(ctx, key):
        await settle(ctx, key)
        if conversations.get(key, ConversationView) is not None:
            raise ConversationExists(f"Conversation {key} already exists", {"conversation": key})
        record = ConversationRecord(kind="created", conversation=view, at=now_ms())
        await conversations.append(ctx, key, record, {"bus.kind": "conversation.created"})
        _next_seq[key] = (decided_under(owner_partition(key)), 1)
    return view.public()


async def settle(ctx: BusContext, key: str) -> None:
    """Wait until the view has every message this owner appended to key's partition."""
    partition = owner_partition(key)
    appended = _last_appended.get(partition, -1)
    await wait_until(
        lambda: conversations.applied_offset(partition) >= appended,
        ctx.settings.timing.command_timeout,
        "the conversation view",
    )


async def transition(ctx: BusContext, key: str, request: TransitionRequest) -> Conversation:
    async with conversations.deciding(ctx, key):
        view = await view_of(ctx, key)
        allowed = TRANSITIONS[view.state]
        if request.to not in allowed:
            raise IllegalTransition(
                f"A conversation that is {view.state} cannot become {request.to}",
                {"from": view.state, "to": request.to, "allowed": list(allowed)},
            )
        record = ConversationRecord(kind="transition", state=request.to, reason=request.reason, at=now_ms())
        await conversations.append(ctx, key, record, {"bus.kind": "conversation.transition"})
        return (await view_of(ctx, key)).public()


async def delete(ctx: BusContext, key: str) -> Conversation:
    async with conversations.deciding(ctx, key):
        view = await view_of(ctx, key)
        await conversations.append(ctx, key, ConversationRecord(kind="deleted", at=now_ms()))
        _next_seq.pop(key, None)
        return view.public()


async def append_message(ctx: BusContext, key: str, spec: MessageSpec) -> tuple[Message, bool]:
    """Append a message with the conversation's next sequence number: (message, appended now).

    A message_id seen recently is not appended again: the first message comes back (once
    committed, when it is on its way still)."""
    async with conversations.deciding(ctx, key):
        view = await open_view(ctx, key, spec.sender)
        await count_unseen(ctx, key, view)  # first, so a retry of an unseen message is recognised
        if spec.message_id is not None:
            seen = recent_seq(key, view, spec.message_id)
            if seen is not None:
                return await message_at(ctx, key, seen), False
            earlier = _in_flight.get((key, spec.message_id))
            if earlier is not None:
                return await asyncio.shield(earlier), False
        envelope = Envelope(
            "message", spec.sender, spec.payload, spec.content_type, spec.metadata, spec.message_id
        )
        appended = await queue_envelope(ctx, key, view, envelope)
    return await asyncio.shield(appended), True


@dataclass(frozen=True)
class Envelope:
    kind: EnvelopeKind
    sender: str
    payload: JsonValue
    content_type: str = "application/json"
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    message_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


async def open_view(ctx: BusContext, key: str, sender: str) -> ConversationView:
    """The view of a conversation that takes envelopes from sender: 404, 409 or 403 if not."""
    view = await current_view(ctx, key)
    if view.state not in ACCEPTS_MESSAGES:
        raise ConversationNotOpen(
            f"Conversation {key} is {view.state} and takes no messages",
            {"state": view.state, "accepts_messages_when": list(ACCEPTS_MESSAGES)},
        )
    if view.participants and sender not in view.participants:
        raise NotAParticipant(
            f"{sender} is not a participant of {key}", {"sender": sender, "participants": view.participants}
        )
    return view


async def append_envelope(
    ctx: BusContext,
    key: str,
    view: ConversationView,
    envelope: Envelope,
    extra: Sequence[OutgoingRecord] = (),
) -> Message:
    """Give the envelope the next sequence number and append it (with extra records, e.g. an
    inbox copy, sent in the same request). The caller holds the key's lock."""
    return await (await queue_envelope(ctx, key, view, envelope, extra))


async def queue_envelope(
    ctx: BusContext,
    key: str,
    view: ConversationView,
    envelope: Envelope,
    extra: Sequence[OutgoingRecord] = (),
) -> asyncio.Future[Message]:
    """Give the envelope the next sequence number and queue its record (with extra records)
    for the partition's next transaction; the future gives the message once it committed.
    The caller holds the key's lock, and may let go of it before then."""
    await count_unseen(ctx, key, view)
    message, record = envelope_record(key, view, envelope)
    partition = owner_partition(key)
    partitions = [partition] + [partition_for(r.key, ctx.settings.state_partitions, 0) for r in extra]
    # Fenced: a former owner that stalled and resumes cannot write this sequence number too.
    committed = enqueue_decided(partition, list(zip([record, *extra], partitions, strict=True)))
    appended = asyncio.ensure_future(_noted(key, message, committed))
    appended.add_done_callback(_outcome_seen)  # its caller may have gone away meanwhile
    if envelope.message_id is not None:
        _in_flight[(key, envelope.message_id)] = appended
        appended.add_done_callback(lambda _: _in_flight.pop((key, message.message_id), None))
    return appended


def _outcome_seen(appended: asyncio.Future[Message]) -> None:
    if not appended.cancelled():
        appended.exception()


async def _noted(key: str, message: Message, committed: Awaitable[list[Produced]]) -> Message:
    produced = await committed
    note_appended(key, message, produced[0].partition, produced[0].offset)
    return message


async def count_unseen(ctx: BusContext, key: str, view: ConversationView) -> None:
    """Before the first number handed out under a producer generation, read the
    conversation's log past what the view has, and count what is there: the view caught
    up with a barrier, but a view once missed a record across a hand-over (faust committed
    an offset before the view's changelog record left its producer buffer; fixed in
    bus.kafka.faust_patches), and a number must never be handed out twice, so the log is
    asked too. Mostly this reads nothing. The caller holds the lock."""
    generation = decided_under(owner_partition(key))
    if _tail_read.get(key) == generation:
        return
    unseen = await read_messages(ctx, view, view.next_seq, None, None, UNSEEN_LIMIT)
    if unseen:
        log.warning(
            "the view of %s lacked messages %d..%d: numbering goes on from the log",
            key,
            unseen[0].seq,
            unseen[-1].seq,
        )
        _next_seq[key] = (generation, max(counted(key, generation), max(m.seq for m in unseen) + 1))
        for message in unseen:
            remember(key, message)
    _tail_read[key] = generation


def counted(key: str, generation: int) -> int:
    """The next number by this owner's own count, if it was taken under generation (1 if not)."""
    counted_under, next_seq = _next_seq.get(key, (generation, 1))
    return next_seq if counted_under == generation else 1


def envelope_record(key: str, view: ConversationView, envelope: Envelope) -> tuple[Message, OutgoingRecord]:
    """The envelope with the next sequence number (taken: the next call gives the one
    after), and its record (not written yet: the caller writes it, then calls
    note_appended). The caller decides under the key's lock."""
    generation = decided_under(owner_partition(key))
    seq = max(view.next_seq, counted(key, generation))
    _next_seq[key] = (generation, seq + 1)
    message = Message(
        conversation=key,
        seq=seq,
        kind=envelope.kind,
        message_id=envelope.message_id or uuid.uuid4().hex,
        sender=envelope.sender,
        payload=envelope.payload,
        content_type=envelope.content_type,
        metadata=envelope.metadata,
        sent_at=now_ms(),
    )
    record = ConversationRecord(kind="message", message=message, at=message.sent_at)
    headers = {
        **envelope.headers,
        h.KIND: envelope.kind,
        h.SEQ: str(seq),
        h.MESSAGE_ID: message.message_id,
        h.CONVERSATION: key,
    }
    return message, conversations.outgoing(key, record, headers)


def note_appended(key: str, message: Message, partition: int, offset: int) -> None:
    """The message's record committed at offset."""
    _last_appended[partition] = max(_last_appended.get(partition, -1), offset)
    remember(key, message)


def recent_seq(key: str, view: ConversationView, message_id: str) -> int | None:
    """The sequence number of a recent message with this id: one of this owner's on their
    way to the view, or one the view has (beside it, or in it for older views)."""
    own = _recent_ids.get(key, {}).get(message_id)
    if own is not None:
        return own
    noted = conversations.raw(message_id_key(key, message_id))
    return int(noted) if noted is not None else view.recent_ids.get(message_id)


def remember(key: str, message: Message) -> None:
    """Ids of messages on their way to the view (the view keeps them once applied)."""
    recent = _recent_ids.setdefault(key, {})
    recent[message.message_id] = message.seq
    while len(recent) > RECENT_IDS:
        del recent[next(iter(recent))]


async def message_at(ctx: BusContext, key: str, seq: int) -> Message:
    view = await view_of(ctx, key)
    [found] = await read_messages(ctx, view, seq, seq, None, 1)
    return found


async def current_view(ctx: BusContext, key: str) -> ConversationView:
    """The view as far as the processor has got (messages of ours may still be on their way:
    they change only counts, which _next_seq covers); 404 if there is none."""
    await conversations.catch_up(ctx, owner_partition(key))
    view = conversations.get(key, ConversationView)
    if view is None:
        await settle(ctx, key)  # perhaps created a moment ago through this owner
        view = conversations.get(key, ConversationView)
    if view is None:
        raise ConversationNotFound(f"Conversation {key} does not exist", {"conversation": key})
    return view


def forget(partitions: set[int]) -> None:
    for key in [k for k in _tail_read if owner_partition(k) in partitions]:
        del _tail_read[key]
    for key in [k for k in _next_seq if owner_partition(k) in partitions]:
        del _next_seq[key]
    for key in [k for k in _recent_ids if owner_partition(k) in partitions]:
        del _recent_ids[key]
    for partition in partitions:
        _last_appended.pop(partition, None)


async def read_messages(
    ctx: BusContext,
    view: ConversationView,
    from_seq: int,
    to_seq: int | None,
    since_ms: int | None,
    limit: int,
) -> list[Message]:
    """Messages of the conversation from Kafka itself, seeking near from_seq by the index."""
    key = view.key
    tp = TopicPartition(conversations.kafka_topic, owner_partition(key))
    consumer = ctx.gateway.new_reader(isolation_level="read_committed")
    await guarded(consumer.start())
    try:
        consumer.assign([tp])
        end = (await guarded(consumer.end_offsets([tp])))[tp]
        consumer.seek(tp, await start_offset(consumer, tp, view, from_seq, since_ms))
        found: list[Message] = []
        wanted = key.encode()
        while len(found) < limit and await guarded(consumer.position(tp)) < end:
            batch = await guarded(consumer.getmany(tp, timeout_ms=500, max_records=1000))
            for record in batch.get(tp, []):
                if record.key != wanted or record.offset >= end:
                    continue
                message = ConversationRecord.model_validate_json(record.value or b"{}").message
                if message is None or message.seq < from_seq or (since_ms and message.sent_at < since_ms):
                    continue
                if (to_seq is not None and message.seq > to_seq) or len(found) >= limit:
                    return found
                found.append(message)
        return found
    finally:
        await consumer.stop()


def indexed_offset(view: ConversationView, from_seq: int) -> int:
    """The offset of the last indexed message at or before from_seq (the first offset of
    the conversation when there is none)."""
    entry = conversations.raw(index_key(view.key, from_seq - from_seq % INDEX_EVERY))
    if entry is not None:
        return int(entry)
    below = [seq for seq in view.index if seq <= from_seq]  # a view written before index_key
    return view.index[max(below)] if below else view.first_offset


async def start_offset(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    view: ConversationView,
    from_seq: int,
    since_ms: int | None,
) -> int:
    """Where to start reading: the index entry at or before from_seq, or the first record at
    or after since_ms when that is later."""
    offset = indexed_offset(view, from_seq)
    if since_ms:
        hit = (await guarded(consumer.offsets_for_times({tp: since_ms}))).get(tp)
        if hit is not None:
            offset = max(offset, hit.offset)
    return offset
