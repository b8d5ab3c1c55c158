"""An agent written with bus.sdk.faust_agent, run as its own Faust worker against the fleet:
it registers, heartbeats while it runs, answers its inbox in order, and acks only what it
handled (a failing message comes back)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agent_calls import agent_key, drain_inbox, register, send, wait_for_liveness
from tests.fleet import REPO, Fleet, free_port
from tests.helpers import unique

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk_agent(fleet: Fleet, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The agent tests/sdk_app.py defines, running in a worker of its own."""
    agent = {"namespace": "it", "tenant": unique("sdk"), "id": "echo"}
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": fleet.bootstrap,
        "SDK_APP_ID": unique("sdk-app"),
        "SDK_DATA_DIR": str(tmp_path / "data"),
        "AGENTBUS_URL": fleet.urls[1],
        "AGENTBUS_KEY": fleet.admin_key,
        "SDK_TENANT": agent["tenant"],
        "SDK_AGENT_ID": agent["id"],
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "sdk-app.log"
    command = [sys.executable, "-m", "faust", "-A", "tests.sdk_app", "worker", "-l", "info"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--web-port", str(free_port()), "--web-host", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield {**agent, "process": process, "log": log_path}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_an_sdk_agent_registers_beats_answers_and_acks(
    fleet: Fleet, http: aiohttp.ClientSession, sdk_agent: dict[str, Any]
) -> None:
    url0, url1 = fleet.urls
    try:
        found = await wait_for_liveness(http, url0, sdk_agent, "alive", timeout=120)
    except AssertionError:
        raise AssertionError(sdk_agent["log"].read_text(errors="replace")[-4000:]) from None
    assert [c["name"] for c in found["capabilities"]] == ["echo"]
    caller = await register(http, url0, tenant=sdk_agent["tenant"])

    for i in range(5):
        await send(http, fleet.urls[i % 2], sdk_agent, {"n": i}, **{"from": caller["id"]}, message_id=f"m{i}")
    await send(http, url1, sdk_agent, "silent", **{"from": caller["id"]})
    await send(http, url0, sdk_agent, {"fail": "once"}, reply_to=caller["id"], correlation_id="c-fail")
    answers = await drain_inbox(http, url1, caller, 6, timeout=60)
    assert [a["payload"] for a in answers] == [
        *({"echo": {"n": i}, "delivery_count": 1} for i in range(5)),
        {"echo": {"fail": "once"}, "delivery_count": 2},  # nacked, redelivered, answered
    ], "in inbox order, nothing for 'silent'"
    assert [a["headers"]["bus.correlation_id"] for a in answers] == [*(f"m{i}" for i in range(5)), "c-fail"]
    assert {a["headers"]["bus.from"] for a in answers} == {agent_key(sdk_agent)}

    sdk_agent["process"].send_signal(signal.SIGTERM)  # no more beats: it goes late, then dead
    sdk_agent["process"].wait(timeout=30)
    # What it held unacked it released when it stopped: nothing is left, all was acked.
    assert await drain_inbox(http, url0, sdk_agent, 1, timeout=2) == []
    await wait_for_liveness(http, url1, sdk_agent, "dead", timeout=30)
