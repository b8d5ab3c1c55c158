"""Health, metrics, the OpenAPI document and the error shape for unknown routes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bus.http.routes import ROUTES
from tests.fleet import Fleet

pytestmark = pytest.mark.integration


async def test_healthz_reports_broker_and_readiness(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    for url in fleet.urls:
        async with http.get(f"{url}/healthz") as r:
            assert r.status == 200
            assert await r.json() == {"status": "ok", "broker": True, "ready": True}


async def test_openapi_served_lists_every_route(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fleet.urls[0]}/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path], route.path


async def test_metrics_count_requests_publishes_and_errors(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fleet.urls[0]}/v1/topics/it/acme/not-there") as r:
        assert r.status == 404
    async with http.get(f"{fleet.urls[0]}/metrics") as r:
        text = await r.text()
    for name in (
        "agentbus_http_requests_total",
        "agentbus_publish_latency_seconds",
        "agentbus_records_published_total",
        "agentbus_records_delivered_total",
        'agentbus_errors_total{code="topic_not_found"}',
    ):
        assert name in text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/nothing", 404, "route_not_found"),
        ("PUT", "/v1/topics", 405, "method_not_allowed"),
        ("PATCH", "/v1/publish", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_use_the_error_shape(
    fleet: Fleet, http: aiohttp.ClientSession, method: str, path: str, status: int, code: str
) -> None:
    async with http.request(method, f"{fleet.urls[1]}{path}") as r:
        assert r.status == status
        assert (await r.json())["error"]["code"] == code


async def test_wrong_content_type_is_415(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{fleet.urls[0]}/v1/publish",
        data="a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as r:
        assert r.status == 415
        assert (await r.json())["error"]["code"] == "unsupported_media_type"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on port, from the kernel's TCP tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                address, _, hexport = local.partition(":")
                if state == "0A" and int(hexport, 16) == port and len(address) == width:  # 0A: LISTEN
                    found.add(address)
    return found


async def test_workers_listen_on_the_host_they_are_given_only(fleet: Fleet) -> None:
    # tests/fleet.py starts every worker with --web-host 127.0.0.1 (and no --web-bind)
    for worker in fleet.workers:
        assert listening_addresses(worker.port) == {"0100007F"}, worker.port  # 127.0.0.1, nothing else


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/it/acme/bad%0Aagent",
        "/v1/conversations/it/acme/tab%09id",
        "/v1/streams/it/acme/c1/bad%20stream",
        "/v1/schemas/it/acme/sub%00ject/versions",
        "/v1/tool-calls/it/acme/call%0D%0A",
        "/v1/topics/it/UPPER/t",
        "/v1/schemas/it/acme/s/versions/0",
    ],
)
async def test_path_ids_are_checked_before_routing_or_forwarding(
    fleet: Fleet, http: aiohttp.ClientSession, path: str
) -> None:
    for url in fleet.urls:  # the owner of the key and the other worker answer alike, at once
        async with http.get(f"{url}{path}") as r:
            body = await r.json()
            assert r.status == 400, (url, path, body)
            assert body["error"]["code"] == "invalid_parameter", body


def rocksdb_options(db: Path) -> dict[str, str]:
    """The options RocksDB wrote for the database at db when it last opened it."""
    latest = max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
    pairs = (line.strip().split("=", 1) for line in latest.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


async def test_every_table_partition_is_stored_with_bounded_memtables(fleet: Fleet) -> None:
    """RocksDB's defaults through faust (64 MiB memtables three deep, per table partition)
    let a worker's RSS grow with every write for hours: the keyed views and the global
    tables open with AGENTBUS_TABLE_WRITE_BUFFER_BYTES (4 MiB), two deep."""
    for worker in fleet.workers:
        dbs = sorted((worker.data_dir / "v1" / "tables").glob("*.db"))
        names = {db.name for db in dbs}
        assert "keys-0.db" in names and "conversations-view-0.db" in names, names
        for db in dbs:
            options = rocksdb_options(db)
            assert options["write_buffer_size"] == str(4 * 1024 * 1024), db
            assert options["max_write_buffer_number"] == "2", db
