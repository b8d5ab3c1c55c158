"""scripts/kafka start brings a stopped cluster back on its data: a record written before
`down` is there after `start` (`up` on a stopped cluster would format empty storage).
Its own single-node cluster, in a temporary KAFKA_HOME on ports of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.fleet import REPO, free_port

pytestmark = pytest.mark.integration


def kafka(home: Path, port: int, *args: str) -> str:
    env = {**os.environ, "KAFKA_HOME": str(home), "KAFKA_PORT": str(port)}
    env.pop("KAFKA_BOOTSTRAP", None)
    done = subprocess.run(
        [str(REPO / "scripts" / "kafka"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def free_pair() -> int:
    """A free port whose next one is free too (the node's controller listens there)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


async def test_start_brings_a_stopped_cluster_back_on_its_data(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    home.mkdir()
    libs = REPO / ".kafka" / "libs"
    if libs.is_dir():  # the jars the session's broker fetched (else the script fetches them)
        shutil.copytree(libs, home / "libs")
    port = free_pair()
    bootstrap = kafka(home, port, "up")
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
        kafka(home, port, "down")
        bootstrap = kafka(home, port, "start")
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
        kafka(home, port, "down")
