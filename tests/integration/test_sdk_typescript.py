"""The TypeScript SDK's whole test run (scripts/test-typescript): npm ci, strict
typecheck, build, the unit tests over contract/, and the planner/solver example against
this session's fleet. A failing TypeScript test fails this test, so scripts/test covers it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.fleet import REPO, Fleet

pytestmark = pytest.mark.integration


def test_typescript_sdk_passes_its_unit_and_integration_tests(fleet: Fleet) -> None:
    assert shutil.which("node") and shutil.which("npm"), "the TypeScript SDK needs Node 20+ and npm"
    env = {**os.environ, "AGENTBUS_URLS": ",".join(fleet.urls), "AGENTBUS_ADMIN_KEY": fleet.admin_key}
    run = subprocess.run(
        [str(REPO / "scripts" / "test-typescript")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    failures = [line for line in run.stdout.splitlines() if line.lstrip().startswith("not ok")]
    assert run.returncode == 0, "\n".join([*failures, run.stdout[-3000:], run.stderr[-3000:]])
    assert "planner-solver: all checks passed" in run.stdout
    assert "# fail 0" in run.stdout
