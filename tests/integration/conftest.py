"""One broker and one two-worker fleet for the whole test session, always stopped; and a
fleet of a module's own for the modules that kill, pause or restart workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fleet import Broker, Fleet
from tests.helpers import unique


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = Broker.acquire()
    yield b
    b.release()


@pytest.fixture(scope="session")
def fleet(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet(
        broker.bootstrap,
        Path(tmp_path_factory.mktemp("fleet")),
        extra_env={
            "AGENTBUS_MAX_PAYLOAD_BYTES": "65536",
            "AGENTBUS_MAX_BATCH_RECORDS": "50",
            "AGENTBUS_MAX_REQUEST_BYTES": "1048576",
            "AGENTBUS_MAX_SSE_CLIENTS_PER_KEY": "12",
            "AGENTBUS_HEADER_TIMEOUT": "3",  # test_http_connections.py waits for it
        },
    ) as f:
        yield f


@pytest.fixture(scope="module")
def own_fleet(
    request: pytest.FixtureRequest, broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """A two-worker fleet for one test module, which may break it as it likes. The module
    may define `own_fleet_env(root: Path) -> dict[str, str]` for the workers' environment."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    root = Path(tmp_path_factory.mktemp(name))
    env_of = getattr(request.module, "own_fleet_env", None)
    with Fleet(broker.bootstrap, root, extra_env=env_of(root) if env_of is not None else {}) as f:
        yield f


@pytest.fixture(scope="module")
async def admin(own_fleet: Fleet) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of own_fleet that sends its admin key with every request."""
    headers = {"Authorization": f"Bearer {own_fleet.admin_key}"}
    timeout = aiohttp.ClientTimeout(total=90)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers, connector=connector) as session:
        yield session


@pytest.fixture(scope="session")
async def http(fleet: Fleet) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends the fleet's admin key with every request."""
    headers = {"Authorization": f"Bearer {fleet.admin_key}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:
        yield session


@pytest.fixture(scope="session")
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends no key."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture
async def topic(fleet: Fleet, http: aiohttp.ClientSession) -> dict[str, Any]:
    """A fresh topic with 3 partitions, created through worker 0."""
    body = {"namespace": "it", "tenant": "acme", "name": unique("t"), "partitions": 3}
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
    return created
