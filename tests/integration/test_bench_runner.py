"""scripts/bench end to end, cheaply: one bench at --quick sizes against the session's
broker and fleet (given, so the run neither starts nor stops any), written into a copy of
docs/benchmarks.md. Only what is between the summary markers changes. No figure is
asserted: they are a smoke check's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from suite.summary import END, START

from tests.fleet import REPO, Broker, Fleet

pytestmark = pytest.mark.integration


def test_a_quick_run_rewrites_only_the_summary(broker: Broker, fleet: Fleet, tmp_path: Path) -> None:
    page = (REPO / "docs" / "benchmarks.md").read_text()
    doc = tmp_path / "benchmarks.md"
    doc.write_text(page)
    command = [
        sys.executable,
        str(REPO / "bench" / "all.py"),
        "--quick",
        "--only",
        "publish",
        "--bootstrap",
        broker.bootstrap,
        "--workers",
        ",".join(fleet.urls),
        "--prefix",
        fleet.prefix,
        "--doc",
        str(doc),
        "--out",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "AGENTBUS_KEY": fleet.admin_key}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    written = doc.read_text()
    before, after = page.split(START)[0], page.split(END)[1]
    assert written.startswith(before + START) and written.endswith(END + after)
    region = written.split(START)[1].split(END)[0]
    assert "quick sizes: a smoke check" in region
    assert "Against the given broker" in region
    lines = {line.split(" | ")[0].lstrip("| "): line for line in region.splitlines() if line.startswith("| ")}
    assert re.search(
        r"\| \*\*(not )?met\*\* ",
        lines["single publish (32 clients, one record per request) vs raw aiokafka"],
    )
    assert lines["bound topic vs unbound, small schema"].endswith("| not run |")
    assert lines["worker restart with 1M keys in its tables"].endswith("| not run |")  # not in --only
    assert lines["publish"].endswith("| 0 |")  # the bench's own row: exit status 0

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["publish"]
    assert {r["mode"] for r in summary["runs"][0]["results"]["results"]} == {
        "raw",
        "raw-batch",
        "single",
        "batch",
    }
    assert (tmp_path / "out" / "publish.log").read_text()
