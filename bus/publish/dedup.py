"""Idempotent publish: a record with a caller-given message id is written at most once
per tenant within the duplicate window (AGENTBUS_PUBLISH_DUPLICATE_WINDOW, 120 s).

The id's owner (the worker holding namespace/tenant/message_id's partition of the
publish-ids log) decides under the key's lock: a receipt it finds (its own, or in the
view) comes back as the answer and nothing is written; otherwise the record and its
receipt commit in one transaction under the partition's producer (bus.state.keyed), so a
receipt exists exactly when the record does, and a stalled former owner writes neither.

A batch (producing_each_once) is decided the same way, record by record, grouped per
owner: the records whose ids one owner holds are decided there together (each id's
receipt, or its record and receipt, the group's new ones in one transaction); records
without an id go through the shared producer. Groups of different owners commit
independently: a batch cut off midway may have written some groups and not others, and
its retry writes exactly the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from bus.clock import now_ms
from bus.cluster.forwarding import FORWARDER
from bus.cluster.ownership import is_owner, owner_partition
from bus.errors import from_answer
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, Produced
from bus.publish.models import Envelope, Expired, PublishedOnce, PublishResult
from bus.settings import Settings
from bus.state.keyed import write_decided
from tables.publish_ids import publish_ids

__all__ = [
    "Outcome",
    "Produce",
    "dedup_key",
    "first_receipt",
    "forget",
    "in_waves",
    "producing_each_once",
    "producing_once",
    "sweep",
]

KEY_PREFIX = "pub:"  # message ids may hold ':', so the view's keys all carry a prefix
# What became of a record: where the broker put it, or a receipt to answer as it is (the
# first receipt of a repeated id; another owner's answer for a record it wrote).
Outcome = Produced | PublishResult
# How a publish's records are produced: the indexes of their envelopes, the records, their
# partitions; the outcome of each.
Produce = Callable[[Sequence[int], Sequence[OutgoingRecord], Sequence[int]], Awaitable[Sequence[Outcome]]]
# Receipts this owner committed, until its view has them too: key -> (receipt, at).
_committed: dict[str, PublishedOnce] = {}


def dedup_key(settings: Settings, envelope: Envelope) -> str | None:
    """The publish-ids key of an envelope; None when it is not deduplicated (no message id
    of the caller's, or the window is 0)."""
    if envelope.message_id is None or settings.timing.publish_duplicate_window <= 0:
        return None
    namespace, tenant, _ = envelope.topic.split("/")
    return f"{KEY_PREFIX}{namespace}/{tenant}/{envelope.message_id}"


def first_receipt(settings: Settings, key: str) -> PublishResult | None:
    """The receipt of the record published with this key within the window, if any.
    The caller decides under publish_ids.deciding(key)."""
    found = _committed.get(key) or publish_ids.get(key, PublishedOnce)
    window_ms = settings.timing.publish_duplicate_window * 1000
    return found.receipt if found is not None and now_ms() - found.at < window_ms else None


def producing_once(key: str, envelope: Envelope) -> Produce:
    """How the record of envelope is produced: with its receipt, in one transaction."""

    async def produce(
        _indexes: Sequence[int], records: Sequence[OutgoingRecord], partitions: Sequence[int]
    ) -> Sequence[Outcome]:
        return await _write_with_receipts([key], [envelope], records, partitions)

    return produce


async def _write_with_receipts(
    keys: Sequence[str],
    envelopes: Sequence[Envelope],
    records: Sequence[OutgoingRecord],
    partitions: Sequence[int],
) -> list[Produced]:
    """Write records and their receipts in one transaction on their keys' owner partition
    (one for all), as decided under publish_ids.deciding of every key."""
    partition = owner_partition(keys[0])
    written: list[tuple[str, PublishedOnce]] = []

    def receipts_of(produced: list[Produced]) -> list[tuple[OutgoingRecord, int]]:
        at = now_ms()
        for key, envelope, where in zip(keys, envelopes, produced, strict=True):
            assert envelope.message_id is not None
            receipt = PublishResult(
                topic=envelope.topic,
                partition=where.partition,
                offset=where.offset,
                message_id=envelope.message_id,
                timestamp=where.timestamp,
            )
            written.append((key, PublishedOnce(receipt=receipt, at=at)))
        return [(publish_ids.outgoing(k, once, {"bus.kind": "published"}), partition) for k, once in written]

    produced = await write_decided(partition, list(zip(records, partitions, strict=True)), then=receipts_of)
    _committed.update(written)  # committed: until the view has them
    return produced


def producing_each_once(ctx: BusContext, envelopes: Sequence[Envelope], auth: str | None) -> Produce:
    """How a batch's records are produced when some carry message ids: each id decided by
    its owner, grouped per owner (see the module docstring). Groups run in waves
    (in_waves), so records of one Kafka key keep their request order. auth: the caller's
    Authorization, to hand other owners their groups; None when this request was handed
    over by another worker (every id is then decided here, or 503 owner_moved)."""
    keys = [dedup_key(ctx.settings, e) for e in envelopes]

    async def produce(
        indexes: Sequence[int], records: Sequence[OutgoingRecord], partitions: Sequence[int]
    ) -> Sequence[Outcome]:
        owners = [None if keys[i] is None else owner_partition(keys[i] or "") for i in indexes]
        order = [None if r.key is None else (r.topic, r.key) for r in records]

        async def group(owner: int | None, at: list[int]) -> Sequence[Outcome]:
            if owner is None:
                return await ctx.gateway.produce([records[p] for p in at], [partitions[p] for p in at])
            ids = [keys[indexes[p]] or "" for p in at]
            if auth is not None and not is_owner(ids[0], publish_ids.topic):
                return await _at_other_owner(ids[0], auth, [envelopes[indexes[p]] for p in at])
            chosen = [envelopes[indexes[p]] for p in at]
            return await _decide_here(ctx, ids, chosen, [records[p] for p in at], [partitions[p] for p in at])

        placed: dict[int, Outcome] = {}
        for wave in in_waves(owners, order):
            answers = await asyncio.gather(*(group(owner, at) for owner, at in wave.items()))
            for at, places in zip(wave.values(), answers, strict=True):
                placed.update(zip(at, places, strict=True))
        return [placed[p] for p in range(len(records))]

    return produce


def in_waves(
    owners: Sequence[int | None], order: Sequence[tuple[str, bytes] | None]
) -> list[dict[int | None, list[int]]]:
    """Positions of a batch's records in waves, each wave one group per owner (None: no
    id), in request order within a group. Waves run one after the other and a wave's
    groups at once, so a record waits for the next wave when the record before it with the
    same Kafka key (order: topic and key; None: unkeyed, no order promised) has another owner."""
    waves: list[dict[int | None, list[int]]] = []
    last: dict[tuple[str, bytes], tuple[int, int | None]] = {}  # key -> (wave, owner) of its latest record
    for position, (owner, key) in enumerate(zip(owners, order, strict=True)):
        wave = 0
        if key is not None and key in last:
            before, its_owner = last[key]
            wave = before if its_owner == owner else before + 1
        if key is not None:
            last[key] = (wave, owner)
        while len(waves) <= wave:
            waves.append({})
        waves[wave].setdefault(owner, []).append(position)
    return waves


async def _decide_here(
    ctx: BusContext,
    keys: Sequence[str],
    envelopes: Sequence[Envelope],
    records: Sequence[OutgoingRecord],
    partitions: Sequence[int],
) -> list[Outcome]:
    """Records whose ids this worker owns (one owner partition): under every id's lock
    (taken in key order, so two batches never wait on each other), an id with a receipt is
    answered with that receipt and not written; the first record of each other id is
    written with its receipt, all in one transaction."""
    async with AsyncExitStack() as held:
        for key in sorted(set(keys)):
            await held.enter_async_context(publish_ids.deciding(ctx, key))
        places: dict[str, Outcome] = {}
        for key in set(keys):
            earlier = first_receipt(ctx.settings, key)
            if earlier is not None:
                places[key] = earlier
        fresh: dict[str, int] = {}  # id -> its first position here, for ids not written before
        for position, key in enumerate(keys):
            if key not in places:
                fresh.setdefault(key, position)
        if fresh:
            at = list(fresh.values())
            written = await _write_with_receipts(
                list(fresh), [envelopes[p] for p in at], [records[p] for p in at], [partitions[p] for p in at]
            )
            places.update(zip(fresh, written, strict=True))
    return [places[key] for key in keys]


async def _at_other_owner(key: str, auth: str, envelopes: Sequence[Envelope]) -> list[Outcome]:
    """Hand records whose ids another worker owns to it, as a batch of their own; its
    receipts. The whole batch was checked and metered here."""
    body = {"records": [e.model_dump(mode="json") for e in envelopes]}
    status, answer = await FORWARDER.call(
        key, "POST", "/v1/publish/batch", auth, body, topic=publish_ids.topic
    )
    if status != 200:
        raise from_answer(status, answer)
    return [PublishResult.model_validate(r) for r in answer["results"]]


async def sweep(ctx: BusContext) -> None:
    """Forget own receipts the view has by now, and have the view drop the receipts of
    its owned keys that are past the window (a timer; the view's processor removes them)."""
    cutoff = now_ms() - int(ctx.settings.timing.publish_duplicate_window * 1000)
    for key, once in list(_committed.items()):
        if once.at < cutoff or publish_ids.get(key, PublishedOnce) is not None:
            del _committed[key]
    past = [key for key, once in publish_ids.owned_items(PublishedOnce, KEY_PREFIX) if once.at < cutoff]
    if past:
        expiry = Expired(before=cutoff)
        records = [publish_ids.outgoing(key, expiry, {"bus.kind": "expired"}) for key in past]
        await ctx.gateway.produce(records, [owner_partition(key) for key in past])


def forget(partitions: set[int]) -> None:
    """Partitions this worker lost: their next owner reads the receipts from the view."""
    for key in [k for k in _committed if owner_partition(k) in partitions]:
        del _committed[key]
