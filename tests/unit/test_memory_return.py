"""Freed heap goes back to the system (bus/system/memory.py), and only when worth it."""

from __future__ import annotations

import asyncio

import pytest

from bus.system import memory


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_a_trim_gives_back_the_free_pages_that_malloc_kept() -> None:
    # 200 MiB in 2 KiB blocks (malloc's, not pymalloc's), one in a hundred kept: the
    # heap cannot shrink from its top, so glibc keeps the rest until trimmed.
    blocks = [bytes(2048) for _ in range(100_000)]
    kept = blocks[::100]
    del blocks
    held, free = rss_bytes(), memory.free_heap_bytes()
    assert free is not None, "the server's platform (Debian) has glibc >= 2.33"
    assert free > 150 * 1_048_576
    memory.trim_heap()
    assert held - rss_bytes() > 100 * 1_048_576
    assert len(kept) == 1_000


async def test_the_loop_trims_once_after_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """Free space falls while a burst holds memory and rises when it ends: one trim. After
    it glibc still counts the trimmed pages as free, which must not trim again."""
    free = iter([40, 10, 30, 100, 100, 100, 100, 90, None])
    trims: list[int] = []
    monkeypatch.setattr(memory, "trim_heap", lambda: trims.append(1))
    await asyncio.wait_for(memory.return_free_memory(every=0.001, above=50, free=lambda: next(free)), 5)
    assert trims == [1]
