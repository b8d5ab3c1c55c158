"""A delivered record's JSON is built from its fields with orjson, not through its wire
model: these hold the two to the same document, key order included, and the payload's
decoding to what json.loads reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from bus.http.event_stream import event, json_event
from bus.publish.models import DeliveredRecord
from bus.subscribe.service import decode_payload, delivered_fields, delivered_json
from bus.subscriptions.models import Delivery
from bus.topics.models import Topic

PAYLOADS = [
    b'{"text": "h\\u00e9llo \\"w\\"\\n", "n": -12, "f": 0.1, "big": 1e300, "xs": [true, null, {}]}',
    b'"\\u2603 snow"',
    b"123456789012345678901234567890",  # beyond 64 bits: orjson cannot write it
    b'{"deep": [[[[{"a": [1.5e-7]}]]]]}',
    b"[]",
]


def topic() -> Topic:
    return Topic.model_validate(
        {
            "namespace": "ns",
            "tenant": "t",
            "name": "orders",
            "kafka_topic": "agentbus.ns.t.orders",
            "partitions": 3,
            "replication_factor": 1,
            "created_at": "2026-12-05T00:00:00Z",
        }
    )


def record(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> ConsumerRecord[bytes, bytes]:
    found = headers if headers is not None else [("bus.message_id", b"m-1"), ("trace", "é".encode())]
    return ConsumerRecord(
        "k-orders", 2, 41, 1764892800000, 0, b"key-\xc3\xa9", value, None, 5, len(value), found
    )


def ordered(document: bytes) -> list[tuple[str, Any]]:
    return json.loads(document, object_pairs_hook=list)  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", PAYLOADS)
def test_a_records_json_is_its_models_json(value: bytes) -> None:
    fields = delivered_fields(topic(), record(value))
    assert ordered(delivered_json(fields)) == ordered(
        DeliveredRecord.model_construct(**fields).model_dump_json().encode()
    )


@pytest.mark.parametrize("value", PAYLOADS)
def test_a_deliverys_json_is_its_models_json(value: bytes) -> None:
    fields = {**delivered_fields(topic(), record(value)), "delivery_id": "k.1.2.41.1", "delivery_count": 1}
    written = delivered_json(fields)
    assert ordered(written) == ordered(Delivery.model_construct(**fields).model_dump_json().encode())
    assert Delivery.model_validate_json(written).payload == json.loads(value)


def test_payloads_decode_as_json_loads_reads_them() -> None:
    for value in [*PAYLOADS, b"NaN", b"[1e400]", b'"\\ud800"', b"\xff not json", b"", b"{broken"]:
        text = value.decode("utf-8", errors="replace")
        try:
            expected: Any = json.loads(text)
        except ValueError:
            expected = text
        found = decode_payload(value, "application/json")
        assert repr(found) == repr(expected), value  # repr: NaN != NaN
    assert decode_payload(b'{"a": 1}', "text/plain") == '{"a": 1}'


def test_a_json_event_is_the_event_of_its_text() -> None:
    data = delivered_json(delivered_fields(topic(), record(PAYLOADS[0])))
    assert b"\n" not in data
    assert json_event("delivery", data, "k.1.2.41.1") == event("delivery", data.decode(), "k.1.2.41.1")
    assert json_event("record", b"{}") == event("record", "{}")
