"""The little the async and sync clients do differently besides awaiting (not generated)."""

from __future__ import annotations

import asyncio


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
