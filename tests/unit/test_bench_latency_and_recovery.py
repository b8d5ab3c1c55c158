"""The pure parts of bench/sse_latency.py and bench/recovery.py, without a broker or fleet:
what counts as lost or repeated, the per-rate verdict, percentiles of the latencies, and
how a restart finds its way back (the worker's data dir, a reaped child)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from publish import BusTopic
from recovery import Worker, alive, is_changelog, port_of
from sse_latency import Tally, check, paced, parse_args, read_sse, summarise, verdict

LOAD = (0.5, 0.4, 0.3)


def tally_of(
    expected: int, indexes: list[int], sent_at: float = 100.0, received_at: float = 100.010
) -> Tally:
    tally = Tally(expected=expected, sent=len(indexes), first_sent=sent_at, last_sent=sent_at + 1.0)
    for i in indexes:
        tally.received({"i": i, "t": sent_at}, received_at)
    return tally


def test_every_record_once_is_sound() -> None:
    tally = tally_of(3, [0, 1, 2])
    assert tally.complete.is_set()
    assert check("bus", 1000, tally) == []
    result = summarise("bus", 1000, 3, tally, LOAD)
    assert (result.missing, result.repeated, result.problems) == (0, 0, [])
    assert result.p50_ms == pytest.approx(10.0, abs=0.01)
    assert result.achieved_per_s == 3.0 and result.load == LOAD


def test_lost_and_repeated_records_are_problems() -> None:
    tally = tally_of(4, [0, 1, 1, 3])
    assert not tally.complete.is_set()
    tally.send_errors.append("TimeoutError: ")
    assert check("bus", 2500, tally) == [
        "bus at 2500/s: 1 sends failed, the first ones:",
        "bus at 2500/s:   TimeoutError: ",
        "bus at 2500/s: 1 of 4 records never reached the reader",
        "bus at 2500/s: 1 records reached the reader more than once",
    ]


def test_a_mode_that_received_nothing_has_no_latency() -> None:
    result = summarise("raw", 100, 5, Tally(expected=5), LOAD)
    assert math.isnan(result.p50_ms) and math.isnan(result.achieved_per_s)
    assert result.missing == 5


def test_the_verdict_at_one_rate() -> None:
    raw = summarise("raw", 1000, 1, tally_of(1, [0], received_at=100.005), LOAD)
    near = summarise("bus", 1000, 1, tally_of(1, [0], received_at=100.0059), LOAD)
    assert verdict(raw, near) == (True, "p50 +0.9 ms, p99 1.18x raw")
    far = summarise("bus", 1000, 1, tally_of(1, [0], received_at=100.0065), LOAD)
    assert verdict(raw, far)[0] is False
    lost = summarise("bus", 1000, 2, tally_of(2, [0], received_at=100.005), LOAD)
    assert verdict(raw, lost)[0] is False  # as fast as raw, but a record is missing


def test_rates_are_read_as_a_list() -> None:
    assert parse_args(["--rates", "1000,2500"]).rates == [1000, 2500]
    with pytest.raises(SystemExit):
        parse_args(["--rates", "fast"])


def test_changelogs_are_the_fleets_own() -> None:
    assert is_changelog("bench7-conversations-view-changelog", "bench7")
    assert not is_changelog("bench77-conversations-view-changelog", "bench7")
    assert not is_changelog("bench7-conversations", "bench7")


def test_the_data_dir_is_read_from_the_workers_environment() -> None:
    worker = Worker(
        1, "http://127.0.0.1:6067", [], {"AGENTBUS_DATA_DIR": ".data/fleet/worker-6067"}, "/srv", None
    )
    assert worker.data_dir == Path("/srv/.data/fleet/worker-6067")
    assert Worker(1, "http://x:1", [], {}, "/srv", None).data_dir is None
    assert port_of("http://127.0.0.1:6067/") == "6067"


def test_an_exited_child_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert not alive(child.pid)  # reaps it
    child.returncode = 0  # so Popen does not wait for it again


async def test_cancelled_pacing_leaves_no_send_in_flight() -> None:
    """bench/growth.py runs heartbeats and a trickle with paced() until it cancels them."""
    started: list[int] = []
    cancelled: list[int] = []

    async def send(index: int) -> None:
        started.append(index)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(index)
            raise

    pacing = asyncio.create_task(paced(send, rate=1000, count=10**9, in_flight=2, tally=Tally(expected=1)))
    while len(started) < 2:
        await asyncio.sleep(0.01)
    pacing.cancel()
    await asyncio.gather(pacing, return_exceptions=True)
    await asyncio.sleep(0)  # a cancelled send runs its except clause
    assert sorted(cancelled) == sorted(started) == [0, 1]


async def test_a_reader_keeps_the_records_that_came_with_its_subscribed_comment() -> None:
    """bench/growth.py's readers join a topic with records in it: the first chunk of the
    stream may hold the ": subscribed" comment and records after it."""
    records = "".join(f'event: record\ndata: {{"payload": {{"i": {i}, "t": 0}}}}\n\n' for i in range(3))

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(f": subscribed at 0:0\n\n{records}".encode())  # one write, one chunk
        return resp

    app = web.Application()
    app.router.add_get("/v1/subscribe/{ref:.*}", stream)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        tally, ready = Tally(expected=3), asyncio.Event()
        url = str(server.make_url("")).rstrip("/")
        await read_sse(session, url, BusTopic("bench/t1/x", "p.bench.t1.x", 1), tally, ready)
    assert ready.is_set() and tally.seen == {0, 1, 2}
