"""Wire models, names and cursors: no Kafka needed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bus.errors import InvalidParameter, TenantForbidden, Unprocessable
from bus.publish.models import Envelope
from bus.publish.service import encode_payload
from bus.subscribe.service import decode_cursor, encode_cursor, parse_start
from bus.subscriptions.models import SubscriptionSpec
from bus.subscriptions.service import consumer_group, dead_letter_name, source_topic_name
from bus.topics.models import TopicSpec, kafka_topic_name
from bus.wire import NAME_RE


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

    from bus.kafka.gateway import partition_for

    default = DefaultPartitioner()
    for n in (1, 3, 7):
        for i in range(200):
            key = f"key-{i}".encode()
            assert partition_for(key, n, 0) == default(key, list(range(n)), list(range(n)))
    assert {partition_for(None, 3, spread) for spread in range(6)} == {0, 1, 2}


def sub_spec(**extra: object) -> SubscriptionSpec:
    body = {"namespace": "ns", "tenant": "t", "id": "s", "topic": "x", **extra}
    return SubscriptionSpec.model_validate(body)


def test_subscription_spec_defaults() -> None:
    spec = sub_spec()
    assert (spec.start, spec.ack_mode) == ("latest", "manual")
    assert (spec.ack_deadline_ms, spec.max_deliveries) == (30_000, 5)
    assert spec.dead_letter_topic is None and spec.filter is None and spec.labels == {}
    assert sub_spec(start="earliest").start == "earliest" and sub_spec(start=0).start == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"id": "x" * 49},
        {"id": "A"},
        {"start": "now"},
        {"start": -1},
        {"start": "1700000000000"},  # strict: a time is a number, not a string
        {"ack_deadline_ms": 499},
        {"ack_mode": "sometimes"},
        {"filter": {"headers": {}}},
        {"dead_letter_topic": "Bad"},
        {"extra": 1},
    ],
)
def test_bad_subscription_specs(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        sub_spec(**extra)


def test_the_longest_id_still_names_a_default_dead_letter_topic() -> None:
    longest = "a" * 48
    assert NAME_RE.match(f"{sub_spec(id=longest).id}-dlq")


@pytest.mark.parametrize(("topic", "name"), [("x", "x"), ("ns/t/x", "x"), ("a-b", "a-b")])
def test_source_topic_names(topic: str, name: str) -> None:
    assert source_topic_name(sub_spec(topic=topic)) == name


def test_source_topics_of_other_tenants_are_forbidden() -> None:
    for topic in ("ns/other/x", "other/t/x"):
        with pytest.raises(TenantForbidden):
            source_topic_name(sub_spec(topic=topic))


@pytest.mark.parametrize("topic", ["a/b", "ns/t/x/y", "X", "ns/t/", "/x"])
def test_unreadable_source_topics_are_422(topic: str) -> None:
    with pytest.raises(Unprocessable):
        source_topic_name(sub_spec(topic=topic))


def test_dead_letter_names() -> None:
    assert dead_letter_name(sub_spec(), "x") == "s-dlq"
    assert dead_letter_name(sub_spec(dead_letter_topic="dead"), "x") == "dead"
    with pytest.raises(Unprocessable):
        dead_letter_name(sub_spec(dead_letter_topic="x"), "x")


def test_consumer_groups_differ_per_creation() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert consumer_group("bus", sub_spec(), at) == "bus.sub.ns.t.s.1704164645678"
    assert consumer_group("bus", sub_spec(), at + timedelta(milliseconds=1)) != consumer_group(
        "bus", sub_spec(), at
    )
