"""The standing work of bench/growth.py: four kinds, each grown step by step, probed, checked
and removed again.

Each kind keeps what its earlier steps made (`grow_to` adds the difference), gives the
probe its sender (one record per call, raising on anything but success), says after the
probe whether its work was really there (`check`), and removes everything it made
(`close`, also after a failure). Setup requests go through conversations.lanes, so a
failed one is counted, not fatal: the step reports it and fails.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from aiokafka import AIOKafkaConsumer

# bench/publish.py and the others: found next to this file when run as a script.
from conversations import lanes, request
from publish import (
    NAMESPACE,
    TENANT,
    BenchError,
    BusTopic,
    create_topic,
    delete_topic,
    http_sender,
    stored_records,
)
from seed import Seeder, conversation_path
from sse_latency import Tally, paced, read_sse, stamped

# Sends probe record `index`; returns once the bus accepted it, raises otherwise.
Send = Callable[[int], Awaitable[None]]

TOPIC_PARTITIONS = 1  # a thousand topics stay a thousand partitions on the one local broker
READERS_PER_KEY = 60  # per worker: a key may hold 64 streams on one worker (AGENTBUS_MAX_SSE_CLIENTS_PER_KEY)
BEATS_IN_FLIGHT = 64
SUSTAINED = 0.9  # heartbeats must reach this share of N/I, or the step lacks its work
BEAT_SAMPLE = 20  # agents whose last beat is read back after each step
VIEW_WAIT_S = 10.0  # for a view (last_heartbeat_at) or the readers to catch up
CONNECT_TIMEOUT_S = 20.0  # for one reader to be in place
POLL_S = 0.2
FOREVER = 10**12  # records a background sender may send: it runs until cancelled
MAX_ERRORS_SHOWN = 5


class Work(Protocol):
    name: str
    # Its setup leaves the workers background work after its requests (seeded records: the
    # standby replicas apply their changelog records later): wait for quiet before measuring.
    seeded: bool

    async def grow_to(self, amount: int) -> list[str]:
        """Add standing work up to `amount`; the problems met."""
        ...

    def probe(self) -> Send: ...

    def mark(self) -> None:
        """The measured windows start now."""
        ...

    async def check(self) -> list[str]:
        """After the probe: the problems that show the work was not (all) there."""
        ...

    async def close(self) -> None: ...


@dataclass
class Bus:
    """The fleet as the bench drives it: an admin session and the workers, taken in turn."""

    session: aiohttp.ClientSession
    workers: list[str]
    suffix: str  # of every name this run makes, so reruns never collide
    concurrency: int  # setup requests in flight

    def worker(self, index: int) -> str:
        return self.workers[index % len(self.workers)]

    def publisher(self, topic_of: Callable[[int], BusTopic]) -> Send:
        """POST /v1/publish of record `index` to `topic_of(index)`, the workers in turn."""

        def body(start: int, count: int) -> dict[str, Any]:
            return {"topic": topic_of(start).ref, "key": f"k{start}", "payload": {"i": start}}

        send = http_sender(self.session, self.workers, "/v1/publish", body)
        return lambda index: send(index, 1)

    async def in_lanes(self, count: int, one: Callable[[int], Awaitable[None]]) -> list[str]:
        """one(i) for i in [0, count), `concurrency` at a time; the errors, the first few."""
        _, _, errors = await lanes(self.concurrency, count, lambda lane, i: one(i))
        return errors[:MAX_ERRORS_SHOWN] + (
            [f"... {len(errors)} in all"] if len(errors) > MAX_ERRORS_SHOWN else []
        )

    async def topic(self, name: str) -> BusTopic:
        return await create_topic(self.session, self.workers[0], f"{self.suffix}-{name}", TOPIC_PARTITIONS)

    async def delete(self, path: str, index: int) -> None:
        status, answer = await request(self.session, "DELETE", self.worker(index) + path)
        if status != 200:
            raise BenchError(f"DELETE {path}: HTTP {status}: {answer}")


def failed(what: str, errors: Sequence[str]) -> list[str]:
    return [f"{what}: {e}" for e in errors]


# --- topics ------------------------------------------------------------------------------


class Topics:
    """N topics, each touched with one record when made; the probe publishes over all of them."""

    name = "topics"
    seeded = False

    def __init__(self, bus: Bus, bootstrap: str) -> None:
        self.bus = bus
        self.bootstrap = bootstrap
        self.topics: list[BusTopic] = []
        self.written: dict[str, int] = {}  # records the bus accepted, per topic ref

    async def grow_to(self, amount: int) -> list[str]:
        first = len(self.topics)

        async def one(i: int) -> None:
            topic = await self.bus.topic(f"t{first + i}")
            self.topics.append(topic)
            self.written[topic.ref] = 0
            await self.bus.publisher(lambda _: topic)(first + i)
            self.written[topic.ref] += 1

        return failed("creating or touching a topic", await self.bus.in_lanes(amount - first, one))

    def probe(self) -> Send:
        topics = list(self.topics)
        send = self.bus.publisher(lambda index: topics[index % len(topics)])

        async def one(index: int) -> None:
            await send(index)
            self.written[topics[index % len(topics)].ref] += 1

        return one

    def mark(self) -> None:
        pass

    async def check(self) -> list[str]:
        """Every topic is in Kafka and holds exactly the records the bus accepted for it."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            wrong = []
            for topic in self.topics:
                stored = await stored_records(consumer, topic)
                if stored != self.written[topic.ref]:
                    wrong.append(f"{topic.ref} holds {stored}, accepted {self.written[topic.ref]}")
        finally:
            await consumer.stop()
        return failed(f"{len(wrong)} of {len(self.topics)} topics", wrong[:MAX_ERRORS_SHOWN])

    async def close(self) -> None:
        for topic in self.topics:
            await delete_topic(self.bus.session, self.bus.workers[0], topic)


# --- conversations --------------------------------------------------------------------------


class Conversations:
    """N conversations seeded through the conversations log (bench/seed.py), not made through
    the API; the probe appends to them in turn (to as many of them as it sends records,
    chosen at random). The ones the probe will use that never had a message get one before
    the windows: an owner's first append to a conversation under its producer generation
    reads the conversation's log from its last message to the end, once (bus.conversations
    .service.count_unseen), and the windows measure appends, not that. Removed through the
    log too."""

    name = "conversations"
    seeded = True

    def __init__(self, bus: Bus, seeder: Seeder, probe_records: int) -> None:
        self.bus = bus
        self.seeder = seeder
        self.probe_records = probe_records
        self.ids: list[str] = []
        self.chosen: list[str] = []  # the probe's, this step
        self.seqs: dict[str, list[int]] = {}  # conversation id -> sequence numbers its appends got
        self.appended: set[str] = set()  # conversations appended to since the last check

    async def grow_to(self, amount: int) -> list[str]:
        ids = [f"{self.bus.suffix}-c{i}" for i in range(len(self.ids), amount)]
        print(f"  {(await self.seeder.create(ids)).describe()}", flush=True)
        self.ids += ids
        self.chosen = random.sample(self.ids, min(len(self.ids), self.probe_records))
        untouched = [c for c in self.chosen if c not in self.seqs]
        began = time.monotonic()
        errors = await self.bus.in_lanes(
            len(untouched), lambda i: self.append(untouched[i], i, {"touch": True})
        )
        print(
            f"  touched {len(untouched):,} of the probe's conversations in {time.monotonic() - began:.1f} s"
        )
        return failed("touching a conversation", errors)

    async def append(self, conversation_id: str, index: int, payload: dict[str, Any]) -> None:
        path = conversation_path(conversation_id)
        body = {"sender": "bench", "payload": payload}
        async with self.bus.session.post(f"{self.bus.worker(index)}{path}/messages", json=body) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 201:
                raise BenchError(f"append to {path}: HTTP {resp.status}: {answer}")
        self.seqs.setdefault(conversation_id, []).append(int(answer["seq"]))
        self.appended.add(conversation_id)

    def probe(self) -> Send:
        chosen = list(self.chosen)
        return lambda index: self.append(chosen[index % len(chosen)], index, {"i": index})

    def mark(self) -> None:
        pass

    async def check(self) -> list[str]:
        """Every conversation appended to since the last check got sequence numbers 1, 2, ...
        n over all its appends so far, each once: a seeded conversation starts at 1, and no
        number was handed out twice or skipped (a failed append is a problem of its own)."""
        appended, self.appended = self.appended, set()
        wrong = [c for c in appended if sorted(self.seqs[c]) != list(range(1, len(self.seqs[c]) + 1))]
        if not wrong:
            return []
        seqs = sorted(self.seqs[wrong[0]])
        shown = ", ".join(map(str, seqs[:10])) + (", ..." if len(seqs) > 10 else "")
        return [
            f"{len(wrong)} of {len(appended)} conversations appended to were not numbered 1..n, "
            f"e.g. {wrong[0]}: {shown}"
        ]

    async def close(self) -> None:
        if self.ids:
            print(f"  {(await self.seeder.delete(self.ids)).describe()}", flush=True)


# --- agents ---------------------------------------------------------------------------------


class Agents:
    """N agents registered with interval I, each beaten once per I by the bench (N/I beats/s,
    the workers in turn); the probe publishes to a topic of its own."""

    name = "agents"
    seeded = False

    def __init__(self, bus: Bus, interval_ms: int) -> None:
        self.bus = bus
        self.interval_s = interval_ms / 1000
        self.paths: list[str] = []  # /v1/agents/NAMESPACE/TENANT/ID
        self.sent_at: dict[int, float] = {}  # agent index -> time.time() its last accepted beat was sent
        self.beats = Tally(expected=FOREVER)
        self.beating: asyncio.Task[None] | None = None
        self.marked = (0.0, 0)  # time.monotonic() and beats accepted, at mark()
        self.probe_topic: BusTopic | None = None

    async def grow_to(self, amount: int) -> list[str]:
        if self.probe_topic is None:
            self.probe_topic = await self.bus.topic("agents-probe")
        first = len(self.paths)

        async def one(i: int) -> None:
            body = {
                "namespace": NAMESPACE,
                "tenant": TENANT,
                "id": f"{self.bus.suffix}-a{first + i}",
                "heartbeat_interval_ms": round(self.interval_s * 1000),
            }
            status, answer = await request(self.bus.session, "POST", f"{self.bus.worker(i)}/v1/agents", body)
            if status != 201:
                raise BenchError(f"registering an agent: HTTP {status}: {answer}")
            self.paths.append(f"/v1/agents/{NAMESPACE}/{TENANT}/{body['id']}")

        errors = await self.bus.in_lanes(amount - first, one)
        await self.beat_all()
        return failed("registering an agent", errors)

    async def beat_all(self) -> None:
        """(Re)start beating every agent once per interval."""
        await self.stop_beating()
        paths = list(self.paths)

        async def beat(index: int) -> None:
            agent = index % len(paths)
            sent_at = time.time()
            url = f"{self.bus.worker(index)}{paths[agent]}/heartbeat"
            async with self.bus.session.post(url) as resp:
                await resp.read()
                if resp.status != 202:
                    raise BenchError(f"heartbeat {paths[agent]}: HTTP {resp.status}")
            self.sent_at[agent] = sent_at

        rate = len(paths) / self.interval_s
        self.beating = asyncio.create_task(paced(beat, rate, FOREVER, BEATS_IN_FLIGHT, self.beats))

    async def stop_beating(self) -> None:
        if self.beating is not None:
            self.beating.cancel()
            await asyncio.gather(self.beating, return_exceptions=True)
            self.beating = None

    def probe(self) -> Send:
        topic = self.probe_topic
        assert topic is not None, "grow_to makes it"
        return self.bus.publisher(lambda _: topic)

    def mark(self) -> None:
        self.marked = (time.monotonic(), self.beats.sent)

    async def check(self) -> list[str]:
        """Every beat accepted, N/I reached over the windows, and sampled agents show their beat."""
        problems = failed("a heartbeat", self.beats.send_errors[:MAX_ERRORS_SHOWN])
        self.beats.send_errors.clear()
        began, sent = self.marked
        offered, seconds = len(self.paths) / self.interval_s, time.monotonic() - began
        if not sustained(self.beats.sent - sent, offered, seconds):
            reached = (self.beats.sent - sent) / seconds
            problems.append(f"heartbeats reached {reached:.1f}/s of the {offered:.1f}/s the agents need")
        return problems + await self.beats_shown()

    async def beats_shown(self) -> list[str]:
        """A sample of the agents beaten: each one's last_heartbeat_at shows its last beat (the
        view may skip a beat within a quarter interval of the one before, hence the slack)."""
        sample = random.sample(sorted(self.sent_at), min(BEAT_SAMPLE, len(self.sent_at)))
        deadline = time.monotonic() + VIEW_WAIT_S
        behind = sample
        while behind and time.monotonic() < deadline:
            behind = [a for a in behind if not await self.shows_beat(a)]
            if behind:
                await asyncio.sleep(POLL_S)
        if not behind and self.sent_at:
            return []
        if not self.sent_at and self.paths:
            return ["no heartbeat was accepted"]
        example = self.paths[behind[0]]
        return [f"{len(behind)} of {len(sample)} sampled agents do not show their beat, e.g. {example}"]

    async def shows_beat(self, agent: int) -> bool:
        status, found = await request(self.bus.session, "GET", self.bus.workers[0] + self.paths[agent])
        beat_at = found.get("last_heartbeat_at") if status == 200 else None
        slack = self.interval_s / 4 + 1.0
        return (
            beat_at is not None and datetime.fromisoformat(beat_at).timestamp() >= self.sent_at[agent] - slack
        )

    async def close(self) -> None:
        await self.stop_beating()
        errors = await self.bus.in_lanes(len(self.paths), lambda i: self.bus.delete(self.paths[i], i))
        for error in errors:
            print(f"warning: deleting an agent: {error}", flush=True)
        if self.probe_topic is not None:
            await delete_topic(self.bus.session, self.bus.workers[0], self.probe_topic)


# --- SSE readers -------------------------------------------------------------------------------


@dataclass
class Reader:
    tally: Tally
    task: asyncio.Task[None]


@dataclass
class ReaderKey:
    id: str
    session: aiohttp.ClientSession


class Readers:
    """N SSE readers (from=earliest) of a topic that gets a trickle of records, spread over the
    workers and over tenant keys of their own; the probe publishes to a topic of its own."""

    name = "readers"
    seeded = False

    def __init__(self, bus: Bus, trickle_rate: float) -> None:
        self.bus = bus
        self.trickle_rate = trickle_rate
        self.readers: list[Reader] = []
        self.keys: list[ReaderKey] = []
        self.trickle = Tally(expected=FOREVER)  # its records are stamped(index), as read_sse reads them
        self.trickling: asyncio.Task[None] | None = None
        self.topic: BusTopic | None = None
        self.probe_topic: BusTopic | None = None

    async def grow_to(self, amount: int) -> list[str]:
        if self.topic is None:
            self.topic = await self.bus.topic("read")
            self.probe_topic = await self.bus.topic("readers-probe")
            # One record in flight at a time, so the records accepted are exactly 0..sent-1.
            trickle = paced(self.send_stamped, self.trickle_rate, FOREVER, 1, self.trickle)
            self.trickling = asyncio.create_task(trickle)
        await self.add_keys(math.ceil(amount / (READERS_PER_KEY * len(self.bus.workers))))
        first = len(self.readers)
        errors = await self.bus.in_lanes(amount - first, lambda i: self.open(first + i))
        return failed("opening a reader", errors)

    async def send_stamped(self, index: int) -> None:
        """Trickle record `index`, stamped as read_sse's tally reads it."""
        assert self.topic is not None
        body = {"topic": self.topic.ref, "payload": stamped(index)}
        async with self.bus.session.post(f"{self.bus.worker(index)}/v1/publish", json=body) as resp:
            if resp.status != 200:
                raise BenchError(f"trickle record {index}: HTTP {resp.status}: {await resp.text()}")
            await resp.read()

    async def add_keys(self, wanted: int) -> None:
        while len(self.keys) < wanted:
            body = {
                "name": f"{self.bus.suffix}-reader-{len(self.keys)}",
                "role": "tenant",
                "namespace": NAMESPACE,
                "tenant": TENANT,
                "grants": [{"topics": f"{self.bus.suffix}-*", "actions": ["read"]}],
            }
            status, key = await request(self.bus.session, "POST", f"{self.bus.workers[0]}/v1/keys", body)
            if status != 201:
                raise BenchError(f"creating a reader key: HTTP {status}: {key}")
            headers = {"Authorization": f"Bearer {key['secret']}"}
            connector = aiohttp.TCPConnector(limit=0)  # a connection per open stream
            self.keys.append(
                ReaderKey(key["id"], aiohttp.ClientSession(headers=headers, connector=connector))
            )
            await self.known_everywhere(self.keys[-1])

    async def known_everywhere(self, key: ReaderKey) -> None:
        """A new key replicates to the other workers within milliseconds: wait for it."""
        deadline = time.monotonic() + VIEW_WAIT_S
        for worker in self.bus.workers:
            while True:
                async with key.session.get(f"{worker}/v1/topics") as resp:
                    if resp.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchError(f"a new reader key is unknown to {worker} after {VIEW_WAIT_S:.0f} s")
                await asyncio.sleep(POLL_S)

    async def open(self, index: int) -> None:
        """Reader `index` on worker index % W, under key index // (READERS_PER_KEY * W): a key
        holds READERS_PER_KEY streams per worker at most. Returns once it is in place."""
        assert self.topic is not None
        worker = self.bus.worker(index)
        key = self.keys[index // (READERS_PER_KEY * len(self.bus.workers))]
        tally, ready = Tally(expected=FOREVER), asyncio.Event()
        task = asyncio.create_task(read_sse(key.session, worker, self.topic, tally, ready))
        self.readers.append(Reader(tally, task))
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiting], timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not ready.is_set():
            problem = ended(task) if task.done() else f"not in place after {CONNECT_TIMEOUT_S:.0f} s"
            raise BenchError(f"reader {index} on {worker}: {problem}")

    def probe(self) -> Send:
        topic = self.probe_topic
        assert topic is not None, "grow_to makes it"
        return self.bus.publisher(lambda _: topic)

    def mark(self) -> None:
        pass

    async def check(self) -> list[str]:
        """Every reader still open and holding every trickle record accepted so far, once."""
        problems = failed("a trickle record", self.trickle.send_errors[:MAX_ERRORS_SHOWN])
        self.trickle.send_errors.clear()
        accepted = self.trickle.sent
        deadline = time.monotonic() + VIEW_WAIT_S
        while time.monotonic() < deadline and any(lacking(r, accepted) for r in self.readers):
            await asyncio.sleep(POLL_S)
        short = [i for i, r in enumerate(self.readers) if lacking(r, accepted)]
        gone = [f"reader {i}: {ended(r.task)}" for i, r in enumerate(self.readers) if r.task.done()]
        if gone:
            problems.append(f"{len(gone)} of {len(self.readers)} readers closed, e.g. {gone[0]}")
        repeated = sum(r.tally.repeats for r in self.readers)
        if accepted == 0:
            problems.append("no trickle record was accepted: the readers got nothing to read")
        if short:
            problems.append(
                f"{len(short)} of {len(self.readers)} readers lack some of the {accepted} records, "
                f"e.g. reader {short[0]} lacks {missed(self.readers[short[0]], accepted)}"
            )
        if repeated:
            problems.append(f"{repeated} records reached a reader twice")
        return problems

    async def close(self) -> None:
        tasks = [t for t in [self.trickling, *(r.task for r in self.readers)] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for key in self.keys:
            await key.session.close()
            status, answer = await request(
                self.bus.session, "DELETE", f"{self.bus.workers[0]}/v1/keys/{key.id}"
            )
            if status != 200:
                print(f"warning: revoking reader key {key.id}: HTTP {status}: {answer}", flush=True)
        for topic in (self.topic, self.probe_topic):
            if topic is not None:
                await delete_topic(self.bus.session, self.bus.workers[0], topic)


def sustained(beats: int, offered_per_s: float, seconds: float) -> bool:
    """`beats` in `seconds` keep up with `offered_per_s`: SUSTAINED of it, less the one slot a
    window may miss by where it falls (ten agents beating every 30 s give 2 or 3 in 7 s)."""
    return beats >= math.floor(SUSTAINED * offered_per_s * seconds) - 1


def lacking(reader: Reader, accepted: int) -> bool:
    """The reader has not yet seen every one of records 0..accepted-1."""
    return sum(1 for i in reader.tally.seen if i < accepted) < accepted


def missed(reader: Reader, accepted: int) -> str:
    """Which of records 0..accepted-1 the reader lacks, the first few."""
    lacks = [i for i in range(accepted) if i not in reader.tally.seen]
    return ", ".join(map(str, lacks[:MAX_ERRORS_SHOWN])) + (f" ({len(lacks)} in all)" if lacks[5:] else "")


def ended(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    text = f"{type(exc).__name__}: {exc}" if exc else "the stream ended"
    if "too_many_subscribers" in text:
        text += " (more readers than AGENTBUS_MAX_SSE_CLIENTS allows the worker)"
    return text
