"""A Faust app with one agent written with bus.sdk.faust_agent, for tests/integration/test_agent_sdk.py.

Run as `faust -A tests.sdk_app worker`; everything it needs comes from the environment:
KAFKA_BOOTSTRAP, SDK_APP_ID, SDK_DATA_DIR, AGENTBUS_URL, AGENTBUS_KEY, SDK_TENANT, SDK_AGENT_ID.
"""

from __future__ import annotations

import os

import faust
from agentbus_client.models import InboxMessage
from pydantic import JsonValue

from bus.sdk.faust_agent import bus_agent

env = os.environ
app = faust.App(
    env["SDK_APP_ID"],
    broker=f"kafka://{env['KAFKA_BOOTSTRAP']}",
    datadir=env["SDK_DATA_DIR"],
    store="memory://",
)


@bus_agent(
    app,
    url=env["AGENTBUS_URL"],
    key=env["AGENTBUS_KEY"],
    namespace="it",
    tenant=env["SDK_TENANT"],
    agent_id=env["SDK_AGENT_ID"],
    capabilities=[{"name": "echo", "input_schema": {}, "output_schema": {"type": "object"}}],
    heartbeat_interval_ms=500,
    inbox={"redelivery_backoff_ms": 100},
)
async def echo(message: InboxMessage) -> JsonValue | None:
    """Echoes the payload; fails the first delivery of {"fail": "once"}; answers "silent" with nothing."""
    if message.payload == {"fail": "once"} and message.delivery_count == 1:
        raise RuntimeError("failing the first delivery on purpose")
    if message.payload == "silent":
        return None
    return {"echo": message.payload, "delivery_count": message.delivery_count}
