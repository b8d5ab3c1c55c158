"""Property-based API fuzzing (schemathesis) against a live fleet: generated requests
for every operation of /openapi.json, boundary values included; any 5xx but a retriable
503/504 fails the test. Bounded: a few examples per operation. Its own fleet, and last in
the run (the file name sorts after every other integration test): it leaves thousands of
keys, topics, quotas, rules and agents on the broker, which slowed the quota test after
it enough to fail (quota reports arrived late)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet import Fleet

pytestmark = pytest.mark.integration

# Event streams and WebSockets never end on their own: fuzzing them would only time out.
UNENDING = (
    r"(/stream$|/events$|/write$|/v1/watch|/v1/subscribe/|/inbox$"
    r"|/v1/streams/[^/]+/[^/]+/[^/]+/[^/]+$)"
)


def test_no_generated_request_gets_a_server_error(own_fleet: Fleet) -> None:
    fleet = own_fleet
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{fleet.urls[0]}/openapi.json",
            "--header",
            f"Authorization: Bearer {fleet.admin_key}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "5",
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-path-regex",
            UNENDING,
            "--request-timeout",
            "40",
            "--generation-deterministic",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert " passed" in run.stdout, run.stdout[-6000:] + run.stderr[-2000:]
    if run.returncode != 0:
        # A retriable 503/504 (a worker busy under CI's load) is an answer the API documents;
        # any other 5xx, or a failure without a status, is a bug.
        statuses = re.findall(r"^E?\s*\[(\d{3})\] ", run.stdout, re.MULTILINE)
        assert statuses and set(statuses) <= {"503", "504"}, run.stdout[-6000:] + run.stderr[-2000:]
