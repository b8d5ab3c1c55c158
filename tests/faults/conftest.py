"""A cluster of three brokers (RF 3, min.insync.replicas 2) and a two-worker fleet with
replication 3, of the fault tests' own: they kill its brokers and workers. The cluster's
first port is AGENTBUS_FAULTS_KAFKA_PORT (it takes that port and the next two for the
brokers, +100 to +102 for the controllers), else free ports; never KAFKA_BOOTSTRAP's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.scenarios import Rig, running_rig
from tests.fleet import free_kafka_port


@pytest.fixture(scope="package")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    port = int(os.environ.get("AGENTBUS_FAULTS_KAFKA_PORT") or free_kafka_port(3))
    with running_rig(
        tmp_path_factory.mktemp("faults-kafka"), port, tmp_path_factory.mktemp("faults-fleet")
    ) as r:
        yield r
