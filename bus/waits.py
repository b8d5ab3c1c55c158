"""Waiting for local state to catch up with a command this worker sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bus.errors import Timeout


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll condition every few ms until it holds; Timeout (504, retriable) if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Timeout(f"Timed out waiting for {what}", {"timeout_s": timeout})
        await asyncio.sleep(0.005)
