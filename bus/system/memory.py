"""Freed heap goes back to the operating system.

CPython hands every object larger than 512 bytes to glibc's malloc, which keeps freed
pages for reuse. After a burst (100 slow SSE readers of a backlog: bench/sse_memory.py)
a worker used 51 MiB again but its RSS stayed near 430 MiB, for good. glibc's
malloc_trim gives such pages back; it runs here only when the heap's free space rose by
TRIM_ABOVE_BYTES since the last look at its lowest (a burst has ended), in a thread (ctypes releases the GIL),
so a worker at steady state never pays for it. A full garbage collection goes first: a
burst's objects in reference cycles (a stopped Kafka reader with its fetched records) are
otherwise freed only by the next one, after the trim.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

__all__ = ["TRIM_ABOVE_BYTES", "TRIM_EVERY_S", "free_heap_bytes", "return_free_memory", "trim_heap"]

log = logging.getLogger(__name__)
TRIM_EVERY_S = 30.0  # a look costs up to ~15 ms of glibc time with a fragmented heap
TRIM_ABOVE_BYTES = 64 * 1_048_576


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallinfo2"):
        return None  # not glibc (musl, macOS), or older than 2.33
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


_LIBC = _glibc()


def free_heap_bytes() -> int | None:
    """Free space glibc holds in its heap (None without glibc)."""
    return None if _LIBC is None else int(_LIBC.mallinfo2().fordblks)


def trim_heap() -> None:
    """Give the heap's free pages back (blocking: call it from a thread)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


async def return_free_memory(
    every: float = TRIM_EVERY_S,
    above: int = TRIM_ABOVE_BYTES,
    free: Callable[[], int | None] = free_heap_bytes,
) -> None:
    """For the worker's life: every `every` seconds, trim when the heap's free space rose
    `above` bytes or more over its lowest since the last trim (a burst has ended). glibc
    still counts trimmed pages as free, so the free space alone would trim again and again."""
    low = free()
    while low is not None:
        await asyncio.sleep(every)
        now = await asyncio.to_thread(free)
        if now is None:
            return
        low = min(low, now)
        if now - low >= above:
            started = time.monotonic()
            gc.collect()
            collected = time.monotonic()
            await asyncio.to_thread(trim_heap)
            log.info(
                "gave the freed heap back to the system (%d MiB freed since the last time; a"
                " collection of %.2f s and a trim of %.2f s)",
                (now - low) // 1_048_576,
                collected - started,
                time.monotonic() - collected,
            )
            low = await asyncio.to_thread(free)
