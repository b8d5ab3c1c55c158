"""Waiting for local state to catch up with a command this worker sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bus.errors import Timeout

__all__ = ["Waiters", "wait_for_wake", "wait_until", "wake"]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll condition every few ms until it holds; Timeout (504, retriable) if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Timeout(f"Timed out waiting for {what}", {"timeout_s": timeout})
        await asyncio.sleep(0.005)


Waiters = dict[str, list[asyncio.Future[None]]]


async def wait_for_wake(waiters: Waiters, key: str, seconds: float) -> None:
    """Wait until someone wakes key's waiters (wake()) or seconds pass; no polling."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.setdefault(key, []).append(waiter)
    try:
        await asyncio.wait_for(waiter, seconds)
    except TimeoutError:
        pass
    finally:
        if waiter in waiters.get(key, []):
            waiters[key].remove(waiter)


def wake(waiters: Waiters, key: str) -> None:
    for waiter in waiters.pop(key, []):
        if not waiter.done():
            waiter.set_result(None)
