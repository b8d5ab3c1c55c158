"""Pure parts of subscriptions and conversations: delivery ids, commit metadata, the
conversation view's bookkeeping and its transition table."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from bus.conversations.models import (
    INDEX_EVERY,
    RECENT_IDS,
    TRANSITIONS,
    ConversationView,
    Message,
    index_key,
    message_id_key,
)
from bus.errors import NotReady
from bus.kafka.context import BusContext
from bus.subscriptions.dispatcher import DeliveryRef, format_delivery_id, parse_delivery_id, parse_metadata
from bus.subscriptions.dispatcher_pool import Dispatchers
from bus.subscriptions.models import Subscription
from workers.conversations import forget_entries, note_entries, with_message


def test_delivery_ids_round_trip() -> None:
    ref = DeliveryRef("3f9c1a2b", 4, 2, 1234, 3)
    assert format_delivery_id(ref) == "3f9c1a2b.4.2.1234.3"
    assert parse_delivery_id(format_delivery_id(ref)) == ref


@pytest.mark.parametrize("text", ["", "x", "a.b.c.d.e", "t.1.2.3", "t.1.2.3.4.5", "t.-1.2.3.4", "t.1.2.3.x"])
def test_malformed_delivery_ids_are_not_parsed(text: str) -> None:
    assert parse_delivery_id(text) is None


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ('{"log": 17, "epoch": 2}', (17, 2)),
        ("", (0, 0)),
        (None, (0, 0)),
        ("not json", (0, 0)),
        ("[1]", (0, 0)),
    ],
)
def test_commit_metadata_falls_back_to_the_log_start(metadata: str | None, expected: tuple[int, int]) -> None:
    assert parse_metadata(metadata) == expected


def view() -> ConversationView:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ConversationView(
        namespace="n", tenant="t", id="c", participants=[], state="open",
        created_at=now, last_activity_at=now, message_count=0,
    )  # fmt: skip


def message(seq: int, message_id: str | None = None) -> Message:
    return Message(
        conversation="n/t/c", seq=seq, message_id=message_id or f"m{seq}", sender="a",
        payload=seq, content_type="application/json", sent_at=1_800_000_000_000 + seq,
    )  # fmt: skip


def test_applying_messages_counts_and_is_idempotent() -> None:
    v, entries = view(), dict[str, bytes]()
    for seq in range(1, 2 * INDEX_EVERY + 2):
        v = with_message(v, message(seq), offset=1000 + seq)
        note_entries(entries, "n/t/c", message(seq), offset=1000 + seq)
    assert (v.state, v.next_seq, v.message_count) == ("active", 2 * INDEX_EVERY + 2, 2 * INDEX_EVERY + 1)
    indexed = {k: int(v) for k, v in entries.items() if k.startswith("idx:")}
    assert indexed == {
        index_key("n/t/c", 1): 1001,
        index_key("n/t/c", INDEX_EVERY): 1000 + INDEX_EVERY,
        index_key("n/t/c", 2 * INDEX_EVERY): 1000 + 2 * INDEX_EVERY,
    }
    before = dict(entries)
    again = with_message(v, message(5), offset=1005)  # a record applied twice after a crash
    note_entries(entries, "n/t/c", message(5), offset=1005)
    assert (again.next_seq, again.message_count) == (v.next_seq, v.message_count)
    assert entries == before
    assert v.public().model_dump().keys().isdisjoint({"index", "next_seq", "recent_ids"})


def test_the_view_stays_the_same_size_however_long_the_conversation() -> None:
    v = view()
    sizes = []
    for seq in range(1, 3 * INDEX_EVERY):
        v = with_message(v, message(seq), offset=seq)
        sizes.append(len(v.model_dump_json()))
    assert max(sizes) - min(sizes) < 20  # the timestamp and counts only


def test_recent_message_ids_keep_the_newest() -> None:
    entries = dict[str, bytes]()
    for seq in range(1, RECENT_IDS + 11):
        note_entries(entries, "n/t/c", message(seq), offset=seq)
    ids = {k: int(v) for k, v in entries.items() if k.startswith("mid:")}
    assert len(ids) == RECENT_IDS
    assert message_id_key("n/t/c", "m10") not in ids and message_id_key("n/t/c", "m11") in ids
    assert ids[message_id_key("n/t/c", f"m{RECENT_IDS + 10}")] == RECENT_IDS + 10


def test_a_deleted_conversation_leaves_no_entries() -> None:
    entries = {"other": b"kept"}
    for seq in range(1, RECENT_IDS + 3 * INDEX_EVERY):
        note_entries(entries, "n/t/c", message(seq), offset=seq)
    forget_entries(entries, "n/t/c", RECENT_IDS + 3 * INDEX_EVERY)
    assert entries == {"other": b"kept"}


def test_every_state_can_end_and_archived_is_final() -> None:
    assert set(TRANSITIONS) == {"open", "active", "paused", "closed", "archived"}
    assert all(
        "closed" in targets for state, targets in TRANSITIONS.items() if state not in ("closed", "archived")
    )
    assert TRANSITIONS["archived"] == ()
    assert all(set(targets) <= set(TRANSITIONS) for targets in TRANSITIONS.values())


async def test_a_starting_worker_builds_no_dispatcher_it_would_tear_down() -> None:
    """Until its tables caught up a worker answers 503 not_ready for a subscription: it
    used to start a dispatcher (a consumer and a transactional producer) that failed and
    was built again on every retry."""
    pool = Dispatchers()
    starting = cast(BusContext, SimpleNamespace(started_up=lambda: False))
    with pytest.raises(NotReady):
        await pool.get(starting, cast(Subscription, SimpleNamespace(key="it/acme/s")))
    assert not pool.starting and not pool.running
