"""The Python client stands alone: installed in a virtualenv of its own (the oldest Python it
supports, when this machine has it) without the server's dependencies, its unit and
integration tests pass there against this session's fleet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet import Fleet

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "sdk" / "python"
SERVER_ONLY = ("faust", "aiokafka", "rocksdict", "aiohttp", "jsonschema")


def oldest_python() -> str:
    """Python 3.10 (the oldest the client supports) when this machine has one that runs."""
    found = [shutil.which("python3.10"), *map(str, Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for candidate in filter(None, found):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    return sys.executable


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = oldest_python()
    venv = tmp_path_factory.mktemp("client-venv")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, f"{CLIENT}[test]"], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def test_the_client_installs_without_the_server_dependencies(client_venv: Path) -> None:
    python = str(client_venv / "bin" / "python")
    imported = subprocess.run(
        [python, "-c", "import agentbus_client; print(agentbus_client.__version__)"],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    for module in SERVER_ONLY:
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
        assert probe.returncode != 0, f"{module} is importable next to the client"
        assert "ModuleNotFoundError" in probe.stderr


def test_the_client_tests_pass_against_the_fleet(client_venv: Path, fleet: Fleet) -> None:
    env = {
        **os.environ,
        "AGENTBUS_URLS": ",".join(fleet.urls),
        "AGENTBUS_ADMIN_KEY": fleet.admin_key,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTHONPATH", None)  # nothing of the server's tree
    run = subprocess.run(
        [str(client_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
