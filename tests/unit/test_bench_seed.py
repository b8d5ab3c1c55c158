"""The pure parts of bench/seed.py, without a broker or fleet: records derived from a
template the bus wrote differ from it in the conversation's id only, and the last offset
per partition is what the wait for the processors compares with."""

from __future__ import annotations

import json
from typing import Any

from aiokafka.structs import RecordMetadata, TopicPartition
from seed import Template, note_last

CREATED: dict[str, Any] = {
    "kind": "created",
    "conversation": {"namespace": "bench", "tenant": "t1", "id": "seed-1", "state": "open", "next_seq": 1},
    "state": None,
    "at": 1796488991350,
}
HEADERS = [("bus.kind", b"conversation.created")]


def test_a_created_record_differs_from_its_template_in_the_id_only() -> None:
    template = Template("bench/t1/seed-1", CREATED, HEADERS)
    assert template.key_of("c7") == b"bench/t1/c7"
    derived = json.loads(template.value_of("c7"))
    assert derived["conversation"]["id"] == "c7"
    assert {**derived, "conversation": {**derived["conversation"], "id": "seed-1"}} == CREATED
    assert CREATED["conversation"]["id"] == "seed-1"  # the template is left as it was


def test_a_deleted_record_names_its_conversation_by_key_only() -> None:
    deleted = {"kind": "deleted", "conversation": None, "at": 1}
    template = Template("bench/t1/seed-1", deleted, [])
    assert json.loads(template.value_of("c7")) == deleted
    assert template.key_of("c7") == b"bench/t1/c7"


def test_the_last_offset_of_each_partition_is_kept() -> None:
    def acked(partition: int, offset: int) -> RecordMetadata:
        return RecordMetadata("t", partition, TopicPartition("t", partition), offset, 0, 0, 0)

    last = {0: 5}
    assert note_last(last, [acked(0, 3), acked(1, 9), acked(1, 7), acked(0, 8)]) == 4
    assert last == {0: 8, 1: 9}
