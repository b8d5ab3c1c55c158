"""KeyLocks: one decision per key at a time, and no lock left behind for a key nobody wants."""

from __future__ import annotations

import asyncio

from bus.state.key_locks import KeyLocks


async def test_a_lock_is_dropped_once_nobody_holds_or_waits_for_it() -> None:
    locks = KeyLocks()
    for n in range(1_000):  # a key per request, as publish-ids decides per message id
        async with locks.hold(f"id-{n}"):
            assert len(locks) == 1
    assert len(locks) == 0


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks, order = KeyLocks(), []
    first_in = asyncio.Event()

    async def hold(key: str, name: str, wait: float) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            first_in.set()
            await asyncio.sleep(wait)
            order.append(f"{name} out")

    first = asyncio.create_task(hold("k", "a", 0.05))
    await first_in.wait()
    second = asyncio.create_task(hold("k", "b", 0))
    other = asyncio.create_task(hold("other", "c", 0))
    await asyncio.gather(first, second, other)
    assert order.index("a out") < order.index("b in")  # b waited for a
    assert order.index("c in") < order.index("a out")  # c did not
    assert len(locks) == 0


async def test_a_waiter_that_is_cancelled_leaves_no_lock_behind() -> None:
    locks = KeyLocks()
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            held.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("k"):
            raise AssertionError("never gets the lock")

    first = asyncio.create_task(holder())
    await held.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    second.cancel()
    release.set()
    await first
    assert second.cancelled() and len(locks) == 0
