"""Load and check, written once for the fault tests and scripts/soak.

`Load` drives a fleet as careful clients would while a scenario breaks things:

- publishers: each sends one message after another (`POST /v1/publish`, a `message_id` of
  its own, a key of its own, the topics in turn), and retries a message that got no
  answer, a 5xx or a 429 with the same id, on the next worker, until it is acknowledged
  or `give_up_s` passed (well inside the bus's 120 s duplicate window, so a retry can
  never write a second record);
- a poller: asks every worker for a topic (`GET /v1/topics/...`) with the same valid
  tenant key, to catch a worker that answers 401, 403 or 404 where it should answer
  200 (or 503 not_ready while it cannot answer yet).

Every request is recorded: the worker asked, when it ended, its status or why there was
none, its error code, its latency. At the end `verify` reads every topic to its end
with a read_committed consumer and compares the log with the receipts: a message is
lost when it was acknowledged but is not in the log, duplicated when its id is in the
log more than once, misplaced when the log does not hold it where its receipt said.

A message id is decided by the owner of its partition of the publish-ids log, so the
acknowledgements, grouped by that partition, say how long each partition went unserved
and whether every one is served at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

NAMESPACE = "faults"
WRONG_STATUSES = (401, 403, 404)  # a valid key on an existing topic never earns these
RETRIED_STATUSES = (429, 500, 502, 503, 504)  # a careful client retries these (and no answer)
RETRIED_ERRORS = ("503", "504", "timeout", "connection")  # what a healthy fleet may answer under faults
MAX_BACKOFF_S = 1.0
LOG_SETTLE_S = 120.0  # an open transaction of a killed owner ends within the transaction timeout
SERVED_AT_END_S = 10.0  # every publish-ids partition has an acknowledgement this close to the end


@dataclass(frozen=True)
class LoadConfig:
    publishers: int = 6
    topics: int = 3
    partitions: int = 3
    replication_factor: int = 3
    request_timeout_s: float = 10.0
    give_up_s: float = 90.0  # a message's retries stop this long after its first attempt
    poll_interval_s: float = 0.1
    state_partitions: int = 12  # the fleet's AGENTBUS_STATE_PARTITIONS: the publish-ids log's


@dataclass(frozen=True)
class Outcome:
    """One request and how it ended."""

    worker: str
    ended: float  # time.monotonic()
    latency_s: float
    status: int | None  # None: no HTTP answer
    code: str  # "ok", the bus's error code, "timeout", "connection"


@dataclass(frozen=True)
class Receipt:
    topic: str  # the Kafka topic
    partition: int
    offset: int


class Targets:
    """The workers clients send to, in turn; a scenario adds and removes them as a load
    balancer would."""

    def __init__(self, urls: Iterable[str]) -> None:
        self.urls = list(urls)
        self._turn = itertools.count()

    def next(self) -> str:
        urls = self.urls
        return urls[next(self._turn) % len(urls)]

    def add(self, url: str) -> None:
        if url not in self.urls:
            self.urls.append(url)

    def remove(self, url: str) -> None:
        if url in self.urls and len(self.urls) > 1:
            self.urls.remove(url)


@dataclass
class Report:
    """What one scenario's load saw."""

    scenario: str
    seconds: float
    requests: int
    errors: Counter[str]  # "status code" (or "timeout", "connection") -> count, successes left out
    messages: int
    acknowledged: int
    abandoned: int  # given up on after give_up_s, or refused with a 4xx
    lost: int
    duplicated: int
    misplaced: int
    out_of_order: int  # a publisher's messages on one topic whose log order is not its send order
    longest_gap_s: float  # longest time during the load with no publish acknowledged fleet-wide
    longest_gap_at: float  # seconds into the load where that gap began
    worker_gaps_s: dict[str, float]  # the same, per worker asked, while it was a target
    slowest_message_s: float  # a message's first attempt until its acknowledgement
    partition_gaps_s: dict[int, float]  # publish-ids partition -> its longest time without an ack
    partition_gaps_at: dict[int, float]  # ... and seconds into the load where it began
    unserved_at_end: list[int]  # publish-ids partitions with no ack in the load's last seconds
    p99_latency_s: float
    polls: Counter[str]
    wrong_answers: int  # 401/403/404 to the valid key, from a publish or a poll
    load_average: tuple[float, float, float]
    events: list[str] = field(default_factory=list)  # what the scenario did, and when
    examples: list[str] = field(default_factory=list)  # ids and positions of what went wrong

    def problems(self) -> list[str]:
        """What went wrong: a message lost, doubled, misplaced or reordered, a wrong answer to
        the valid key, a message given up on (a partition left unserved for give_up_s shows
        here), an error a client would not retry (anything but 503, 504 and no answer).
        Empty when clean. (unserved_at_end is reported, not judged: a fault shortly before
        the end leaves partitions that are only slow to move.)"""
        found = [
            f"{name} {count}"
            for name, count in (
                ("lost", self.lost),
                ("duplicated", self.duplicated),
                ("misplaced", self.misplaced),
                ("out of order", self.out_of_order),
                ("wrong 401/403/404", self.wrong_answers),
                ("abandoned", self.abandoned),
            )
            if count
        ]
        if self.acknowledged == 0:
            found.append("nothing acknowledged")
        unexpected = {c: n for c, n in self.errors.items() if c.split()[0] not in RETRIED_ERRORS}
        if unexpected:
            found.append(f"errors a client does not retry: {unexpected}")
        return found


@dataclass
class _Message:
    publisher: int
    seq: int
    topic: str  # the bus topic's ref
    message_id: str


class Load:
    """Publishers and a poller against a fleet; `verify` compares receipts with the log."""

    def __init__(self, targets: Targets, admin_key: str, config: LoadConfig = LoadConfig()) -> None:
        self.targets = targets
        self.admin_key = admin_key
        self.config = config
        self.run_id = uuid.uuid4().hex[:8]
        self.tenant = f"t-{self.run_id}"
        self.kafka_topics: dict[str, str] = {}  # bus ref -> Kafka topic
        self.key = ""
        self.outcomes: list[Outcome] = []
        self.polls: list[Outcome] = []
        self.receipts: dict[str, Receipt] = {}
        self.first_attempt: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self.abandoned: list[str] = []
        self.messages: list[_Message] = []
        self.events: list[str] = []
        self.membership: dict[str, list[tuple[float, float | None]]] = {}  # url -> target intervals
        self.started = 0.0
        self.stopped = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # --- set-up --------------------------------------------------------------------

    async def prepare(self) -> None:
        """Topics and a tenant key (read, write) that every worker accepts before the load starts."""
        url = self.targets.urls[0]
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        async with aiohttp.ClientSession(headers=admin, timeout=aiohttp.ClientTimeout(total=60)) as http:
            for i in range(self.config.topics):
                body = {
                    "namespace": NAMESPACE,
                    "tenant": self.tenant,
                    "name": f"load-{i}",
                    "partitions": self.config.partitions,
                    "replication_factor": self.config.replication_factor,
                }
                created = await _post_until_created(http, f"{url}/v1/topics", body)
                self.kafka_topics[f"{NAMESPACE}/{self.tenant}/load-{i}"] = created["kafka_topic"]
            spec = {
                "name": "load",
                "role": "tenant",
                "namespace": NAMESPACE,
                "tenant": self.tenant,
                "grants": [{"actions": ["read", "write"]}],
            }
            self.key = (await _post_until_created(http, f"{url}/v1/keys", spec))["secret"]
        await self._wait_until_every_worker_knows_the_key()

    async def _wait_until_every_worker_knows_the_key(self, timeout: float = 60.0) -> None:
        topic = next(iter(self.kafka_topics))
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(headers=self._auth()) as http:
            for url in self.targets.urls:
                while (await _status(http, f"{url}/v1/topics/{topic}")) != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url} never accepted the load's key")
                    await asyncio.sleep(0.1)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    # --- the load ------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers=self._auth(), timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        )
        self.started = time.monotonic()
        for url in self.targets.urls:
            self.membership[url] = [(self.started, None)]
        self._tasks = [asyncio.create_task(self._publisher(p)) for p in range(self.config.publishers)]
        self._tasks.append(asyncio.create_task(self._poller()))

    async def stop(self) -> None:
        """No new messages; the ones under way are retried to their end (give_up_s at most)."""
        self.stopped = time.monotonic()
        self._stop.set()
        await asyncio.gather(*self._tasks)
        if self._session is not None:
            await self._session.close()
        for url in self.membership:
            self._close_membership(url, self.stopped)

    def note(self, event: str) -> None:
        """Say what the scenario did, with the time into the load."""
        self.events.append(f"{time.monotonic() - self.started:6.1f}s {event}")

    def add_target(self, url: str) -> None:
        self.targets.add(url)
        self.membership.setdefault(url, []).append((time.monotonic(), None))

    def remove_target(self, url: str) -> None:
        self.targets.remove(url)
        self._close_membership(url, time.monotonic())

    def _close_membership(self, url: str, at: float) -> None:
        spans = self.membership.get(url, [])
        if spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], at)

    async def _publisher(self, publisher: int) -> None:
        topics = list(self.kafka_topics)
        for seq in itertools.count():
            if self._stop.is_set():
                return
            message = _Message(publisher, seq, topics[seq % len(topics)], f"{self.run_id}-{publisher}-{seq}")
            self.messages.append(message)
            await self._publish_until_settled(message)

    async def _publish_until_settled(self, message: _Message) -> None:
        body = {
            "topic": message.topic,
            "key": f"p{message.publisher}",
            "payload": {"publisher": message.publisher, "seq": message.seq},
            "message_id": message.message_id,
        }
        first = self.first_attempt[message.message_id] = time.monotonic()
        for attempt in itertools.count():
            outcome, answer, retry_after = await self._publish_once(body)
            self.outcomes.append(outcome)
            if outcome.code == "ok":
                self.receipts[message.message_id] = Receipt(
                    self.kafka_topics[message.topic], int(answer["partition"]), int(answer["offset"])
                )
                self.acked_at[message.message_id] = outcome.ended
                return
            final = outcome.status is not None and outcome.status not in RETRIED_STATUSES
            if final or time.monotonic() - first > self.config.give_up_s:
                self.abandoned.append(message.message_id)
                return
            await asyncio.sleep(retry_after or min(MAX_BACKOFF_S, 0.05 * 2**attempt))

    async def _publish_once(self, body: dict[str, Any]) -> tuple[Outcome, dict[str, Any], float]:
        """One attempt: how it ended, the answer's JSON and the Retry-After it asked for (capped)."""
        assert self._session is not None
        url = self.targets.next()
        began = time.monotonic()
        try:
            async with self._session.post(f"{url}/v1/publish", json=body) as r:
                answer = await r.json(content_type=None)
                retry_after = min(MAX_BACKOFF_S, float(r.headers.get("Retry-After", 0)))
                code = "ok" if r.status == 200 else _error_code(answer)
                return _outcome(url, began, r.status, code), answer, retry_after
        except TimeoutError:
            return _outcome(url, began, None, "timeout"), {}, 0.0
        except (aiohttp.ClientError, ValueError):  # refused, cut off, or a body that is not JSON
            return _outcome(url, began, None, "connection"), {}, 0.0

    async def _poller(self) -> None:
        """One polling loop per target, so a worker that hangs (paused) slows no other's."""
        loops: dict[str, asyncio.Task[None]] = {}
        while not self._stop.is_set():
            for url in self.targets.urls:
                if url not in loops or loops[url].done():
                    loops[url] = asyncio.create_task(self._poll_while_targeted(url))
            await asyncio.sleep(self.config.poll_interval_s)
        await asyncio.gather(*loops.values())

    async def _poll_while_targeted(self, url: str) -> None:
        assert self._session is not None
        topic = next(iter(self.kafka_topics))
        while not self._stop.is_set() and url in self.targets.urls:
            began = time.monotonic()
            status = await _status(self._session, f"{url}/v1/topics/{topic}")
            self.polls.append(_outcome(url, began, status, "no answer" if status is None else str(status)))
            await asyncio.sleep(self.config.poll_interval_s)

    # --- the check -----------------------------------------------------------------

    async def verify(self, bootstrap: str, scenario: str) -> Report:
        """Read every topic to its end (read_committed) and compare it with the receipts."""
        log = await read_message_ids(bootstrap, list(self.kafka_topics.values()))
        return self.report(scenario, log)

    def report(self, scenario: str, log: list[tuple[Receipt, str]]) -> Report:
        """The figures of the load, its receipts compared with the log: (position, message id)
        of every committed record of the load's topics."""
        by_id: dict[str, list[Receipt]] = defaultdict(list)
        for receipt, message_id in log:
            by_id[message_id].append(receipt)
        lost = [i for i in self.receipts if i not in by_id]
        duplicated = [i for i, places in by_id.items() if len(places) > 1]
        misplaced = [i for i, r in self.receipts.items() if i in by_id and r not in by_id[i]]
        examples = [f"lost {i} (receipt {self.receipts[i]})" for i in lost[:5]]
        examples += [f"duplicated {i} at {by_id[i]}" for i in duplicated[:5]]
        examples += [f"misplaced {i}: receipt {self.receipts[i]}, log {by_id[i]}" for i in misplaced[:5]]
        examples += [f"abandoned {i}" for i in self.abandoned[:5]]
        wrong = [o for o in self.outcomes + self.polls if o.status in WRONG_STATUSES]
        examples += [
            f"{o.status} {o.code} from {o.worker} at {o.ended - self.started:.1f}s" for o in wrong[:5]
        ]
        gap, gap_at = self._longest_gap(self.acked_at.values(), [(self.started, self.stopped)])
        partition_gaps = self._partition_gaps()  # (longest gap, when it began) per partition
        failed = [o for o in self.outcomes if o.code != "ok"]
        latencies = sorted(o.latency_s for o in self.outcomes)
        return Report(
            scenario=scenario,
            seconds=self.stopped - self.started,
            requests=len(self.outcomes),
            errors=Counter(f"{o.status or ''} {o.code}".strip() for o in failed),
            messages=len(self.messages),
            acknowledged=len(self.receipts),
            abandoned=len(self.abandoned),
            lost=len(lost),
            duplicated=len(duplicated),
            misplaced=len(misplaced),
            out_of_order=self._out_of_order(log),
            longest_gap_s=gap,
            longest_gap_at=gap_at - self.started,
            worker_gaps_s=self._worker_gaps(),
            partition_gaps_s={p: gap for p, (gap, _) in partition_gaps.items()},
            partition_gaps_at={p: at - self.started for p, (_, at) in partition_gaps.items()},
            unserved_at_end=self._unserved_at_end(),
            slowest_message_s=max(
                (self.acked_at[i] - self.first_attempt[i] for i in self.acked_at), default=0.0
            ),
            p99_latency_s=latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
            polls=Counter(o.code for o in self.polls),
            wrong_answers=len(wrong),
            load_average=os.getloadavg(),
            events=self.events,
            examples=examples,
        )

    def _worker_gaps(self) -> dict[str, float]:
        acked: dict[str, list[float]] = defaultdict(list)
        for o in self.outcomes:
            if o.code == "ok":
                acked[o.worker].append(o.ended)
        return {
            url: self._longest_gap(acked[url], [(a, b or self.stopped) for a, b in spans])[0]
            for url, spans in self.membership.items()
        }

    def state_partition(self, message_id: str) -> int:
        """The publish-ids partition whose owner decides this id (bus/publish/dedup.py's key,
        placed as bus/cluster/ownership.py places it: Kafka's murmur2)."""
        key = f"pub:{NAMESPACE}/{self.tenant}/{message_id}".encode()
        return int(murmur2(key) & 0x7FFFFFFF) % self.config.state_partitions

    def _acks_by_partition(self) -> dict[int, list[float]]:
        acked: dict[int, list[float]] = {p: [] for p in range(self.config.state_partitions)}
        for message_id, at in self.acked_at.items():
            acked[self.state_partition(message_id)].append(at)
        return acked

    def _partition_gaps(self) -> dict[int, tuple[float, float]]:
        span = [(self.started, self.stopped)]
        return {p: self._longest_gap(times, span) for p, times in self._acks_by_partition().items()}

    def _unserved_at_end(self) -> list[int]:
        since = self.stopped - SERVED_AT_END_S
        return [p for p, times in self._acks_by_partition().items() if not any(t >= since for t in times)]

    @staticmethod
    def _longest_gap(times: Iterable[float], spans: list[tuple[float, float]]) -> tuple[float, float]:
        """The longest stretch inside the spans with none of the times in it: (length, start)."""
        longest, at = 0.0, 0.0
        ordered = sorted(times)
        for begin, end in spans:
            marks = [begin, *(t for t in ordered if begin <= t <= end), end]
            for a, b in itertools.pairwise(marks):
                if b - a > longest:
                    longest, at = b - a, a
        return longest, at

    def _out_of_order(self, log: list[tuple[Receipt, str]]) -> int:
        """Messages of one publisher to one topic (one key: one partition) that the log holds
        before one the publisher sent earlier: each was sent only after the one before it was
        acknowledged."""
        last_seq: dict[tuple[str, str], int] = {}
        count = 0
        for receipt, message_id in sorted(log, key=lambda entry: (entry[0].topic, entry[0].offset)):
            run, publisher, seq = message_id.rsplit("-", 2)
            stream = (receipt.topic, publisher)
            if run == self.run_id and int(seq) < last_seq.get(stream, -1):
                count += 1
            last_seq[stream] = max(int(seq), last_seq.get(stream, -1))
        return count


async def read_message_ids(bootstrap: str, kafka_topics: list[str]) -> list[tuple[Receipt, str]]:
    """(position, bus.message_id) of every committed record of the topics, once every open
    transaction on them has ended (a killed owner's ends by its timeout, or when its
    successor fences it)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in kafka_topics for p in await _partitions(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await _settled_ends(bootstrap, consumer, tps)
        found: list[tuple[Receipt, str]] = []
        while await _behind(consumer, ends):
            batches = await consumer.getmany(*tps, timeout_ms=1000)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < ends[tp]:
                        message_id = dict(r.headers)["bus.message_id"].decode()
                        found.append((Receipt(tp.topic, tp.partition, r.offset), message_id))
        return found
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    return sorted(partitions)


async def _settled_ends(
    bootstrap: str, consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The last stable offsets once they have caught up with the high watermarks."""
    watermarks = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await watermarks.start()
    try:
        deadline = time.monotonic() + LOG_SETTLE_S
        while True:
            stable: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            high: dict[TopicPartition, int] = await watermarks.end_offsets(tps)
            if stable == high or time.monotonic() > deadline:
                return stable
            await asyncio.sleep(1.0)
    finally:
        await watermarks.stop()


async def _post_until_created(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST until 201, retrying what a client retries (the fleet may still be settling)."""
    for _ in range(20):
        async with http.post(url, json=body) as r:
            if r.status in RETRIED_STATUSES:
                await asyncio.sleep(1.0)
                continue
            if r.status != 201:
                raise RuntimeError(f"POST {url}: {r.status} {await r.text()}")
            created: dict[str, Any] = await r.json()
            return created
    raise RuntimeError(f"POST {url} never succeeded")


async def _status(http: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with http.get(url) as r:
            await r.read()
            return r.status
    except (TimeoutError, aiohttp.ClientError):
        return None


def _outcome(worker: str, began: float, status: int | None, code: str) -> Outcome:
    ended = time.monotonic()
    return Outcome(worker, ended, ended - began, status, code)


def _error_code(answer: Any) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error.get("code", "unknown")) if isinstance(error, dict) else "unknown"


def table(reports: list[Report]) -> str:
    """A row of figures per report, then each report's details."""
    head = (
        "scenario",
        "load s",
        "requests",
        "errors",
        "acked",
        "abandoned",
        "lost",
        "duplicated",
        "wrong 401/403/404",
        "no-ack window fleet",
        "worst worker",
        "worst partition",
        "slowest msg",
        "load avg",
    )
    rows = [head] + [
        (
            r.scenario,
            f"{r.seconds:.0f}",
            str(r.requests),
            str(sum(r.errors.values())),
            f"{r.acknowledged}/{r.messages}",
            str(r.abandoned),
            str(r.lost),
            str(r.duplicated),
            str(r.wrong_answers),
            f"{r.longest_gap_s:.1f}s",
            f"{max(r.worker_gaps_s.values(), default=0.0):.1f}s",
            f"{max(r.partition_gaps_s.values(), default=0.0):.1f}s",
            f"{r.slowest_message_s:.1f}s",
            f"{r.load_average[0]:.1f}",
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for r in reports:
        lines += ["", f"{r.scenario}:"]
        lines.append(
            "  errors by code: " + (", ".join(f"{c} {n}" for c, n in r.errors.most_common()) or "none")
        )
        lines.append(f"  longest no-ack window, fleet: {r.longest_gap_s:.1f}s from {r.longest_gap_at:.1f}s")
        gaps = ", ".join(f"{url} {gap:.1f}s" for url, gap in r.worker_gaps_s.items())
        lines.append(f"  longest no-ack window, per worker asked: {gaps}")
        worst = sorted(r.partition_gaps_s, key=lambda p: -r.partition_gaps_s[p])[:3]
        partitions = ", ".join(
            f"{p} {r.partition_gaps_s[p]:.1f}s from {r.partition_gaps_at[p]:.1f}s" for p in worst
        )
        lines.append(f"  longest no-ack window, worst publish-ids partitions: {partitions}")
        lines.append(
            f"  misplaced {r.misplaced}, out of order {r.out_of_order}, p99 request {r.p99_latency_s:.2f}s"
        )
        lines.append("  polls: " + ", ".join(f"{c} {n}" for c, n in sorted(r.polls.items())))
        lines.append("  load average 1/5/15 min: " + "/".join(f"{x:.2f}" for x in r.load_average))
        lines += [f"  {e}" for e in r.events]
        lines += [f"  ! {e}" for e in r.examples]
    return "\n".join(lines)
