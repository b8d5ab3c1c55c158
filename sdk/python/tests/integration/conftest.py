from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a fleet to talk to, the integration tier is deselected (not skipped)."""
    if os.environ.get("AGENTBUS_URLS"):
        return
    kept = [i for i in items if "integration" not in i.keywords]
    config.hook.pytest_deselected(items=[i for i in items if "integration" in i.keywords])
    items[:] = kept


@pytest.fixture(scope="session")
def fleet_urls() -> list[str]:
    return [u.strip() for u in os.environ["AGENTBUS_URLS"].split(",") if u.strip()]


@pytest.fixture(scope="session")
def admin_key() -> str:
    return os.environ["AGENTBUS_ADMIN_KEY"]
