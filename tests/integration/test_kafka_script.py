"""scripts/kafka start brings a stopped cluster back on its data: a record written before
`down` is there after `start` (`up` on a stopped cluster would format empty storage).
Its own single-node cluster, in a temporary KAFKA_HOME on ports of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.fleet import KafkaCluster, free_kafka_port

pytestmark = pytest.mark.integration


async def test_start_brings_a_stopped_cluster_back_on_its_data(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path / "kafka", free_kafka_port(1), nodes=1)
    bootstrap = cluster.up()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("kept", 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait("kept", b"before the stop", partition=0)
        finally:
            await producer.stop()
        cluster.down()
        bootstrap = cluster.start()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition("kept", 0)
            consumer.assign([tp])
            consumer.seek(tp, sent.offset)
            found = await consumer.getmany(tp, timeout_ms=30_000, max_records=1)
            assert [r.value for r in found[tp]] == [b"before the stop"]
        finally:
            await consumer.stop()
    finally:
        cluster.down()
