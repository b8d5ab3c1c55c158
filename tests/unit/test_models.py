"""Wire models, names and cursors: no Kafka needed."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from bus.errors import InvalidParameter
from bus.models.publish import Envelope
from bus.models.topics import TopicSpec, kafka_topic_name
from bus.publish import encode_payload
from bus.subscribe import decode_cursor, encode_cursor, parse_start


@pytest.mark.parametrize("name", ["a", "orders", "a-b", "x1", "0", "a" * 63])
def test_good_names(name: str) -> None:
    assert TopicSpec(namespace=name, tenant=name, name=name).topic_id == f"{name}/{name}/{name}"


@pytest.mark.parametrize("name", ["", "A", "a_b", "a.b", "-a", "a-", "a b", "é", "a" * 64])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValidationError):
        TopicSpec(namespace="ns", tenant="t", name=name)


def test_kafka_names_never_collide() -> None:
    parts = ["a", "b", "a-b", "b-a", "ab"]
    names = {kafka_topic_name("bus", *combo): combo for combo in itertools.product(parts, repeat=3)}
    assert len(names) == len(parts) ** 3
    # Kafka also treats '.' and '_' alike in metric names; the bus uses no '_' at all.
    assert len({n.replace(".", "_") for n in names}) == len(names)


def test_topic_spec_rejects_unknown_fields_and_bounds() -> None:
    with pytest.raises(ValidationError):
        TopicSpec.model_validate({"namespace": "a", "tenant": "b", "name": "c", "extra": 1})
    with pytest.raises(ValidationError):
        TopicSpec(namespace="a", tenant="b", name="c", partitions=0)
    with pytest.raises(ValidationError):
        TopicSpec(namespace="a", tenant="b", name="c", labels={str(i): "v" for i in range(33)})


def test_envelope_defaults_and_checks() -> None:
    e = Envelope.model_validate({"topic": "a/b/c", "payload": {"x": [1, 2]}})
    assert e.content_type == "application/json" and e.headers == {} and e.message_id is None
    for bad in (
        {"topic": "a/b", "payload": 1},
        {"topic": "a/b/c"},
        {"topic": "a/b/c", "payload": 1, "message_id": "has space"},
        {"topic": "a/b/c", "payload": 1, "headers": {"k": 1}},
    ):
        with pytest.raises(ValidationError):
            Envelope.model_validate(bad)


def test_payload_encoding() -> None:
    assert encode_payload(Envelope(topic="a/b/c", payload={"a": "é"})) == '{"a":"é"}'.encode()
    text = Envelope(topic="a/b/c", payload="hi", content_type="text/plain")
    assert encode_payload(text) == b"hi"
    assert encode_payload(Envelope(topic="a/b/c", payload="hi")) == b'"hi"'


def test_cursor_round_trip() -> None:
    cursor = {2: 7, 0: 15, 1: 0}
    assert encode_cursor(cursor) == "0:15,1:0,2:7"
    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize("text", ["x", "0:", "0:1:2", ":5", "0:-1", "-1:3", ","])
def test_bad_cursors(text: str) -> None:
    with pytest.raises(InvalidParameter):
        decode_cursor(text)


def test_start_positions() -> None:
    assert parse_start(None, None) == "latest"
    assert parse_start("earliest", None) == "earliest"
    assert parse_start("1700000000000", None) == 1700000000000
    assert parse_start("earliest", "0:4,1:2") == {0: 4, 1: 2}
    with pytest.raises(InvalidParameter):
        parse_start("-5", None)


def test_batch_partitioning_matches_kafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from bus.kafka import partition_for

    default = DefaultPartitioner()
    for n in (1, 3, 7):
        for i in range(200):
            key = f"key-{i}".encode()
            assert partition_for(key, n, 0) == default(key, list(range(n)), list(range(n)))
    assert {partition_for(None, 3, spread) for spread in range(6)} == {0, 1, 2}
