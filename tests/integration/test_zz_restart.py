"""Topic metadata survives a restart of every worker, even with their disks wiped.

Named to run last: it restarts the session's fleet.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import unique

pytestmark = pytest.mark.integration


async def test_topics_survive_a_full_fleet_restart_from_kafka_alone(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    names = [unique("keep") for _ in range(3)]
    for name in names:
        async with http.post(
            f"{fleet.urls[0]}/v1/topics", json={"namespace": "rs", "tenant": "acme", "name": name}
        ) as r:
            assert r.status == 201
    async with http.delete(f"{fleet.urls[0]}/v1/topics/rs/acme/{names[2]}") as r:
        assert r.status == 200
    schema = {"type": "object", "required": ["n"]}
    async with http.post(f"{fleet.urls[0]}/v1/schemas/rs/acme/counts/versions", json={"schema": schema}) as r:
        assert r.status == 201
        schema_id = (await r.json())["schema_id"]
    async with http.put(
        f"{fleet.urls[0]}/v1/topics/rs/acme/{names[0]}/schema", json={"subject": "counts"}
    ) as r:
        assert r.status == 200

    fleet.stop()
    fleet.start(fresh_data=True)  # RocksDB gone: state must come back from the changelog

    for url in fleet.urls:
        async with http.get(f"{url}/v1/topics", params={"namespace": "rs"}) as r:
            listed = sorted(t["name"] for t in (await r.json())["topics"])
        assert listed == sorted(names[:2])
    # The registry and the binding came back too: validation works the same on both workers.
    for url in fleet.urls:
        async with http.get(f"{url}/v1/schemas/rs/acme/counts/versions/latest") as r:
            assert (await r.json())["schema_id"] == schema_id
        bad = {"topic": f"rs/acme/{names[0]}", "payload": {"m": 1}}
        async with http.post(f"{url}/v1/publish", json=bad) as r:
            assert r.status == 422
        good = {"topic": f"rs/acme/{names[0]}", "payload": {"n": 1}}
        async with http.post(f"{url}/v1/publish", json=good) as r:
            assert r.status == 200
