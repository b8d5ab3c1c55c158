"""Idempotent publish: a record with a caller-given message id is written at most once
per tenant within the duplicate window (AGENTBUS_PUBLISH_DUPLICATE_WINDOW, 120 s).

The id's owner (the worker holding namespace/tenant/message_id's partition of the
publish-ids log) decides under the key's lock: a receipt it finds (its own, or in the
view) comes back as the answer and nothing is written; otherwise the record and its
receipt commit in one transaction under the partition's producer (bus.state.keyed), so a
receipt exists exactly when the record does, and a stalled former owner writes neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bus.clock import now_ms
from bus.cluster.ownership import owner_partition
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, Produced
from bus.publish.models import Envelope, Expired, PublishedOnce, PublishResult
from bus.settings import Settings
from bus.state.keyed import write_decided
from tables.publish_ids import publish_ids

__all__ = ["Produce", "dedup_key", "first_receipt", "forget", "producing_once", "sweep"]

KEY_PREFIX = "pub:"  # message ids may hold ':', so the view's keys all carry a prefix
Produce = Callable[[Sequence[OutgoingRecord], Sequence[int]], Awaitable[list[Produced]]]
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

    async def produce(records: Sequence[OutgoingRecord], partitions: Sequence[int]) -> list[Produced]:
        written: list[PublishedOnce] = []

        def receipt_of(produced: list[Produced]) -> list[tuple[OutgoingRecord, int]]:
            [where] = produced
            assert envelope.message_id is not None
            once = PublishedOnce(
                receipt=PublishResult(
                    topic=envelope.topic,
                    partition=where.partition,
                    offset=where.offset,
                    message_id=envelope.message_id,
                    timestamp=where.timestamp,
                ),
                at=now_ms(),
            )
            written.append(once)
            return [(publish_ids.outgoing(key, once, {"bus.kind": "published"}), owner_partition(key))]

        produced = await write_decided(
            owner_partition(key), list(zip(records, partitions, strict=True)), then=receipt_of
        )
        _committed[key] = written[0]  # committed: until the view has it
        return produced

    return produce


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
