"""One subscription's delivery engine, run by its owner worker.

A long-lived consumer reads the source topic (manual assignment, the subscription's own
consumer group for commits) into a bounded window of pending records. Clients pull from
the window: each record is leased to one of them at a time (competing consumers), with
a delivery id that names the record, the lease's delivery count and the seek epoch.

    fetched -> ready -> leased -> acked                  (the happy path)
                 ^        | deadline passed / nack / the client's session released
                 +--------+  after a backoff that doubles with each delivery, or, once
                             max_deliveries is reached, to the dead-letter topic (acked)

The committed offset of a partition is the offset of its first record that is not acked,
so it only moves over a contiguous run. Acks above it, and delivery counts, go to the
subscription log (bus.subscriptions.ack_log) before an ack is answered and before a delivery
is handed out, so a new owner redelivers only records nobody acked, and never issues a
delivery id a former owner issued. In auto mode (at most once) a record counts as acked when it is
handed out, and the offsets are committed before the client gets it.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from agentbus_client.models.topics import Topic
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from bus import headers as h
from bus import metrics, tracing
from bus.clock import now_ms
from bus.errors import (
    DeliveryNotFound,
    DeliveryStale,
    DeliverySuperseded,
    InvalidParameter,
    OwnerMoved,
    Unprocessable,
)
from bus.kafka.gateway import KafkaGateway, OutgoingRecord, guarded, partition_for
from bus.settings import Settings
from bus.state.waits import wait_until
from bus.subscribe.service import delivered_fields
from bus.subscriptions.ack_log import LogEvent, LogWriter, read_log
from bus.subscriptions.models import LagReport, PartitionLag, Subscription
from bus.topics.models import kafka_topic_name
from bus.wire import parse_whole

__all__ = [
    "DLQ_DELIVERY_COUNT",
    "DLQ_FIRST_DELIVERY",
    "DLQ_LAST_DELIVERY",
    "DLQ_OFFSET",
    "DLQ_PARTITION",
    "DLQ_PREFIX",
    "DLQ_REASON",
    "DLQ_SUBSCRIPTION",
    "DLQ_TOPIC",
    "DeliveryRef",
    "Dispatcher",
    "Leased",
    "format_delivery_id",
    "parse_delivery_id",
    "parse_metadata",
]

log = logging.getLogger(__name__)

Position = tuple[int, int]  # (partition, offset)
# A delivery's fields in the order of its wire model (Delivery), rendered by
# bus.subscribe.service.delivered_json: no model is built on the hot path.
Leased = dict[str, Any]
FETCH_MS = 200
TICK_S = 0.05
RELEASED_KEPT_S = 60.0  # longer than the longest pull wait (30 s)


class State(Enum):
    READY = "ready"
    LEASED = "leased"
    ACKED = "acked"


@dataclass
class Entry:
    record: ConsumerRecord[bytes, bytes]
    state: State = State.READY
    count: int = 0  # deliveries so far
    first_at: int | None = None  # unix ms of the first and the last delivery
    last_at: int | None = None
    deadline: float = 0.0  # monotonic: the lease ends
    session: str | None = None
    log_offset: int | None = None  # oldest log event a new owner needs for this record


@dataclass
class Logged:
    """What the subscription log says of a record a former owner delivered or acked, kept
    until the window fetches the record."""

    log_offset: int  # of the oldest event about it: needed until the record is committed
    count: int = 0
    first_at: int | None = None
    last_at: int | None = None
    acked: bool = False


@dataclass(order=True)
class Due:
    at: float
    position: Position = field(compare=False)
    count: int = field(compare=False)  # the delivery this timer belongs to


@dataclass(frozen=True)
class DeliveryRef:
    tag: str
    epoch: int
    partition: int
    offset: int
    count: int


def delivery_tag(sub: Subscription) -> str:
    """Short and per subscription (its consumer group is unique), so a foreign id is told apart."""
    return hashlib.sha256(sub.consumer_group.encode()).hexdigest()[:8]


def format_delivery_id(ref: DeliveryRef) -> str:
    return f"{ref.tag}.{ref.epoch}.{ref.partition}.{ref.offset}.{ref.count}"


def parse_delivery_id(text: str) -> DeliveryRef | None:
    parts = text.split(".")
    numbers = [parse_whole(p) for p in parts[1:]]
    if len(parts) != 5 or any(n is None for n in numbers):
        return None
    epoch, partition, offset, count = (n for n in numbers if n is not None)
    return DeliveryRef(parts[0], epoch, partition, offset, count)


class Dispatcher:
    def __init__(
        self, settings: Settings, gateway: KafkaGateway, sub: Subscription, topic: Topic, log_partition: int
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.sub = sub
        self.topic = topic
        self.tag = delivery_tag(sub)
        self.tps = [TopicPartition(topic.kafka_topic, p) for p in source_partitions(sub, topic)]
        # An inbox shares its topic with every agent: deliver only records keyed by its agent.
        self.only_key = sub.inbox_of.encode() if sub.inbox_of is not None else None
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=sub.consumer_group,
            enable_auto_commit=False,
            isolation_level="read_committed",  # redriven copies are written in transactions
            max_partition_fetch_bytes=settings.limits.max_payload_bytes * 2,
        )
        self.writer = LogWriter(settings, sub.key, log_partition)
        self.log_partition = log_partition
        self.epoch = 0
        self.window: dict[int, dict[int, Entry]] = {tp.partition: {} for tp in self.tps}
        self.fetched: dict[int, int] = {}  # partition -> next offset to fetch
        self.committed: dict[int, int] = {}
        self.ready: deque[Position] = deque()
        self.redeliveries: list[Due] = []  # heap: when a backed-off record is ready again
        self.leases: list[Due] = []  # heap: when a lease ends
        self.window_bytes = 0
        self.available = asyncio.Event()
        self.room = asyncio.Event()
        self.lock = asyncio.Lock()  # held while the window is rebuilt (start, seek)
        self.redrive_lock = asyncio.Lock()  # redrives run one at a time (see bus.subscriptions.dead_letters)
        self.released: dict[str, float] = {}  # session -> when it was released (monotonic)
        self.tasks: list[asyncio.Task[None]] = []
        self.stopped = False
        self.last_used = time.monotonic()
        # What the log says about records not fetched yet (filled once, at start).
        self.logged: dict[Position, Logged] = {}

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        await guarded(self.consumer.start())
        self.consumer.assign(self.tps)
        await self.writer.start()
        async with self.lock:
            await self._recover()
        self.tasks = [
            asyncio.create_task(self._fetch_loop(), name=f"fetch {self.sub.key}"),
            asyncio.create_task(self._timer_loop(), name=f"timers {self.sub.key}"),
            asyncio.create_task(self._commit_loop(), name=f"commits {self.sub.key}"),
        ]
        log.info(
            "subscription %s started at %s (epoch %d; the log had %d acks ahead, %d delivery counts)",
            self.sub.key,
            self.committed,
            self.epoch,
            sum(1 for k in self.logged.values() if k.acked),
            sum(1 for k in self.logged.values() if k.count),
        )

    async def stop(self) -> None:
        self.stopped = True
        self.available.set()  # wakes waiting pulls, which then see stopped
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await self._commit()
        except Exception as exc:  # the next owner recovers from the log either way
            log.warning("final commit of %s failed: %s", self.sub.key, exc)
        await self.writer.stop()
        await self.consumer.stop()
        log.info("subscription %s stopped", self.sub.key)

    async def _recover(self) -> None:
        """Committed offsets, then the log from the oldest event they still need."""
        committed = await self.gateway.committed_offsets(self.sub.consumer_group)
        start_log, epoch = None, 0
        positions: dict[int, int] = {}
        for tp in self.tps:
            found = committed.get(tp)
            if found is None:
                positions[tp.partition] = self.sub.start_offsets.get(tp.partition, 0)
                continue
            positions[tp.partition] = found.offset
            meta = parse_metadata(found.metadata)
            start_log = meta[0] if start_log is None else min(start_log, meta[0])
            epoch = max(epoch, meta[1])
        # Never committed means never started: the first start commits before any event.
        events, log_end = await read_log(self.settings, self.log_partition, start_log, self.sub.key)
        self.writer.end = log_end
        self.epoch = epoch
        logged: dict[Position, Logged] = {}
        for log_offset, event in events:
            if event.kind == "seek":
                self.epoch, positions = event.epoch, {**positions, **event.offsets}
                logged.clear()
                continue
            for item in event.items:
                known = logged.setdefault((item[0], item[1]), Logged(log_offset))
                if event.kind == "acked":
                    known.acked = True
                else:
                    known.count = max(known.count, item[2])
                    known.first_at, known.last_at = known.first_at or item[3], item[4]
        self._reset(positions)
        # Kept with the offset of its oldest event: the commits name it as still needed, so
        # the owner after this one learns it too, fetched by then or not.
        self.logged = {p: k for p, k in logged.items() if p[1] >= positions.get(p[0], p[1] + 1)}
        await self._commit(force=True)

    def _reset(self, positions: dict[int, int]) -> None:
        for tp in self.tps:
            self.consumer.seek(tp, positions[tp.partition])
        self.fetched = dict(positions)
        self.committed = dict(positions)
        self.window = {tp.partition: {} for tp in self.tps}
        self.ready.clear()
        self.redeliveries.clear()
        self.leases.clear()
        self.window_bytes = 0
        self.logged = {}

    # -- fetching ---------------------------------------------------------------------

    def _pending(self) -> int:
        return sum(len(w) for w in self.window.values())

    def _full(self) -> bool:
        limits = self.settings.limits
        return self._pending() >= limits.max_in_flight or self.window_bytes >= limits.max_in_flight_bytes

    async def _fetch_loop(self) -> None:
        while True:
            if self._full():
                self.room.clear()
                await self.room.wait()
                continue
            try:
                fetched = await self._fetch()
            except Exception as exc:  # e.g. the broker is away: keep the window, try again
                log.warning("fetching for %s failed: %s; retrying in 1 s", self.sub.key, exc)
                await asyncio.sleep(1)
                continue
            if fetched:
                self.available.set()

    async def _fetch(self) -> bool:
        async with self.lock:
            batches = await guarded(self.consumer.getmany(timeout_ms=FETCH_MS, max_records=500))
            for tp, records in batches.items():
                for record in records:
                    self._admit(tp.partition, record)
            for tp in self.tps:
                # The consumer's position, not only past the last record: a transaction's
                # commit marker takes an offset of its own, and a committed offset short of
                # it would report a lag of 1 that no record ever fills.
                self.fetched[tp.partition] = max(self.fetched[tp.partition], await self.consumer.position(tp))
        return bool(batches)

    def _admit(self, partition: int, record: ConsumerRecord[bytes, bytes]) -> None:
        position = (partition, record.offset)
        entry = Entry(record)
        self.window[partition][record.offset] = entry
        self.window_bytes += len(record.value or b"")
        known = self.logged.pop(position, None)
        if known is not None:
            entry.count, entry.first_at, entry.last_at = known.count, known.first_at, known.last_at
            entry.log_offset = known.log_offset
        if (known is not None and known.acked) or not self._matches(record):
            entry.state = State.ACKED
            return
        self.ready.append(position)

    def _matches(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        if self.only_key is not None and record.key != self.only_key:
            return False
        wanted = self.sub.filter
        if wanted is None:
            return True
        found = h.from_kafka(record.headers)
        return all(found.get(k) == v for k, v in wanted.headers.items())

    # -- delivering -------------------------------------------------------------------

    async def pull(self, max_records: int, wait_ms: int, session: str | None) -> list[Leased]:
        """Lease up to max_records ready records, waiting up to wait_ms for the first one.

        A pull whose session is released while it waits leases nothing: its client has gone
        (it stopped, or an HTTP request was abandoned mid-wait), and records leased to it
        would otherwise wait for their ack deadline."""
        started = time.monotonic()
        deadline = started + wait_ms / 1000
        while True:
            self._check_running()
            if session is not None and self.released.get(session, -1.0) >= started:
                return []
            taken = self._take(max_records)
            if taken:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self.available.clear()
            try:
                await asyncio.wait_for(self.available.wait(), left)
            except TimeoutError:
                pass
        return await self._lease(taken, session)

    def idle_for(self) -> float:
        """Seconds since a client last used this subscription; 0 while any delivery is leased."""
        if any(e.state is State.LEASED for w in self.window.values() for e in w.values()):
            return 0.0
        return time.monotonic() - self.last_used

    def _check_running(self) -> None:
        self.last_used = time.monotonic()
        if self.stopped:
            raise OwnerMoved("This subscription moved to another worker; retry", {"key": self.sub.key})

    def _take(self, limit: int) -> list[Position]:
        taken: list[Position] = []
        now = time.monotonic()
        while self.redeliveries and self.redeliveries[0].at <= now and len(taken) < limit:
            due = heapq.heappop(self.redeliveries)
            entry = self._entry(due.position)
            if entry is not None and entry.state is State.READY and entry.count == due.count:
                taken.append(due.position)
        while self.ready and len(taken) < limit:
            position = self.ready.popleft()
            entry = self._entry(position)
            if entry is not None and entry.state is State.READY:
                taken.append(position)
        return taken

    def _entry(self, position: Position) -> Entry | None:
        return self.window.get(position[0], {}).get(position[1])

    async def _lease(self, positions: list[Position], session: str | None) -> list[Leased]:
        stamp, now = now_ms(), time.monotonic()
        deadline = now + self.sub.ack_deadline_ms / 1000
        out, items = [], []
        before = [(e, e.count, e.first_at, e.last_at) for e in (self.window[p][o] for p, o in positions)]
        for position in positions:
            entry = self.window[position[0]][position[1]]
            entry.count += 1
            entry.first_at = entry.first_at or stamp
            entry.last_at = stamp
            entry.state, entry.session, entry.deadline = State.LEASED, session, deadline
            if self.sub.ack_mode == "auto":
                entry.state = State.ACKED
            else:
                heapq.heappush(self.leases, Due(deadline, position, entry.count))
                items.append([position[0], position[1], entry.count, entry.first_at, stamp])
            ref = DeliveryRef(self.tag, self.epoch, position[0], position[1], entry.count)
            fields = delivered_fields(self.topic, entry.record)
            if tracing.enabled():  # the client continues the trace from this delivery
                tracing.hand_over(fields["headers"], "deliver", self._span_attributes(entry))
            fields["delivery_id"], fields["delivery_count"] = format_delivery_id(ref), entry.count
            out.append(fields)
        if self.sub.ack_mode == "auto":
            await self._commit()  # at most once: the offsets move before the client has the records
        elif items:
            # Handed out only once the log has it: a new owner counts this delivery, so it
            # never issues its id again (and a fenced former owner hands out nothing).
            appended = self.writer.append([LogEvent.of_items(self.sub.key, "delivered", items)])
            self._note_log_offset(positions, appended)
            try:
                await asyncio.shield(appended)
            except Exception:
                self._unlease(before)
                raise
        return out

    def _unlease(self, before: list[tuple[Entry, int, int | None, int | None]]) -> None:
        """Deliveries that never went out: their records are ready again, first in line."""
        for entry, count, first_at, last_at in reversed(before):
            if entry.state is State.LEASED and entry.count == count + 1:
                entry.count, entry.first_at, entry.last_at = count, first_at, last_at
                entry.state, entry.session = State.READY, None
                self.ready.appendleft((entry.record.partition, entry.record.offset))

    def _span_attributes(self, entry: Entry) -> dict[str, str | int]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": self.topic.topic_id,
            "messaging.destination.partition.id": str(entry.record.partition),
            "messaging.kafka.offset": entry.record.offset,
            "agentbus.subscription": self.sub.key,
            "agentbus.delivery_count": entry.count,
        }

    def _note_log_offset(self, positions: list[Position], appended: asyncio.Future[int]) -> None:
        def record(done: asyncio.Future[int]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            for position in positions:
                entry = self._entry(position)
                if entry is not None and entry.log_offset is None:
                    entry.log_offset = done.result()

        appended.add_done_callback(record)

    # -- acks and nacks ---------------------------------------------------------------

    async def _resolve(self, delivery_ids: list[str]) -> list[tuple[str, Entry | None, DeliveryRef]]:
        """Check every id first: a request with one bad id changes nothing."""
        refs = [(text, parse_delivery_id(text)) for text in delivery_ids]
        await self._admitted([(r.partition, r.offset) for _, r in refs if r is not None])
        found: list[tuple[str, Entry | None, DeliveryRef]] = []
        failed: list[dict[str, str]] = []
        for text, ref in refs:
            if ref is None or ref.tag != self.tag:
                failed.append({"delivery_id": text, "code": DeliveryNotFound.code})
                continue
            if ref.epoch != self.epoch:
                failed.append({"delivery_id": text, "code": DeliveryStale.code})
                continue
            entry = self._entry((ref.partition, ref.offset))
            if entry is None:
                if ref.partition in self.committed and ref.offset < self.committed[ref.partition]:
                    found.append((text, None, ref))  # acked and committed already
                else:
                    failed.append({"delivery_id": text, "code": DeliveryNotFound.code})
                continue
            if entry.count > ref.count:  # delivered again since: that delivery's ack counts
                failed.append({"delivery_id": text, "code": DeliverySuperseded.code})
                continue
            if entry.count < ref.count:  # every delivery is logged before it goes out
                failed.append({"delivery_id": text, "code": DeliveryNotFound.code})
                continue
            found.append((text, entry, ref))
        if failed:
            raise _first_error(failed)
        return found

    async def _admitted(self, positions: list[Position]) -> None:
        """Wait until the window holds every position the log says a former owner delivered
        or acked: an id it issued is then decided like any other, not refused as unknown."""
        waiting = [p for p in positions if p in self.logged]
        if waiting:
            await wait_until(
                lambda: self.stopped or not any(p in self.logged for p in waiting),
                self.settings.timing.command_timeout,
                f"subscription {self.sub.key} to fetch the records its log names",
            )
            self._check_running()

    async def ack(self, delivery_ids: list[str]) -> int:
        self._check_running()
        found = await self._resolve(delivery_ids)
        fresh = [
            (ref, entry) for _, entry, ref in found if entry is not None and entry.state is not State.ACKED
        ]
        if not fresh:
            return len(found)
        previous = [(entry, entry.state) for _, entry in fresh]
        for _, entry in fresh:
            entry.state = State.ACKED  # no redelivery while the ack is being logged
        positions = [(ref.partition, ref.offset) for ref, _ in fresh]
        event = LogEvent.of_items(self.sub.key, "acked", [list(p) for p in positions])
        appended = self.writer.append([event])
        self._note_log_offset(positions, appended)
        try:
            await asyncio.shield(appended)
        except Exception:
            for entry, state in previous:  # not durable: the lease timers apply again
                entry.state = state
            raise
        self.room.set()
        return len(found)

    async def nack(self, delivery_ids: list[str], dead_letter: bool, reason: str) -> tuple[int, int]:
        self._check_running()
        found = await self._resolve(delivery_ids)
        live = [entry for _, entry, _ in found if entry is not None and entry.state is State.LEASED]
        doomed = [e for e in live if dead_letter or e.count >= self.sub.max_deliveries]
        for entry in live:
            if entry not in doomed:
                self._back_off(entry)
        if doomed:
            await self._dead_letter(doomed, reason or ("nacked" if dead_letter else "max_deliveries"))
        return len(found), len(doomed)

    async def release(self, session: str) -> int:
        now = time.monotonic()  # remembered for as long as a pull may wait (pull above)
        self.released = {s: at for s, at in self.released.items() if now - at < RELEASED_KEPT_S}
        self.released[session] = now
        held = [
            e
            for w in self.window.values()
            for e in w.values()
            if e.state is State.LEASED and e.session == session
        ]
        await self._expire(held, "released")
        return len(held)

    def _back_off(self, entry: Entry) -> None:
        sub = self.sub
        delay_ms = min(
            sub.redelivery_backoff_ms * 2 ** max(0, entry.count - 1), sub.redelivery_backoff_max_ms
        )
        entry.state, entry.session = State.READY, None
        position = (entry.record.partition, entry.record.offset)
        heapq.heappush(self.redeliveries, Due(time.monotonic() + delay_ms / 1000, position, entry.count))

    async def _expire(self, entries: list[Entry], reason: str) -> None:
        """Leases that ended unacked: back off, or dead-letter after max_deliveries."""
        doomed = [e for e in entries if e.count >= self.sub.max_deliveries]
        for entry in entries:
            if entry not in doomed:
                self._back_off(entry)
        if doomed:
            await self._dead_letter(doomed, f"max_deliveries ({reason})")

    async def _dead_letter(self, entries: list[Entry], reason: str) -> None:
        """The dead letters and the acks that retire their records, in one transaction."""
        for entry in entries:
            entry.state = State.ACKED
        copies = [self._dead_letter_record(e, reason) for e in entries]
        positions = [(e.record.partition, e.record.offset) for e in entries]
        event = LogEvent.of_items(self.sub.key, "acked", [list(p) for p in positions])
        try:
            await self.writer.append([event], copies)
        except Exception:
            for entry in entries:
                self._back_off(entry)  # try again later rather than lose the record
            raise
        log.info("subscription %s dead-lettered %d record(s): %s", self.sub.key, len(entries), reason)
        for entry in entries:  # one below max_deliveries was dead-lettered because a client asked
            metrics.DEAD_LETTERS.labels(
                "max_deliveries" if entry.count >= self.sub.max_deliveries else "nacked"
            ).inc()
        self.room.set()

    def _dead_letter_record(self, entry: Entry, reason: str) -> OutgoingRecord:
        r = entry.record
        origin = {
            DLQ_TOPIC: self.topic.topic_id,
            DLQ_PARTITION: str(r.partition),
            DLQ_OFFSET: str(r.offset),
            DLQ_SUBSCRIPTION: self.sub.key,
            DLQ_REASON: reason[:1024],
            DLQ_DELIVERY_COUNT: str(entry.count),
            DLQ_FIRST_DELIVERY: str(entry.first_at or ""),
            DLQ_LAST_DELIVERY: str(entry.last_at or ""),
        }
        headers = [(k, v) for k, v in r.headers if not k.startswith(DLQ_PREFIX)] + h.to_kafka(origin)
        sub = self.sub
        target = kafka_topic_name(self.settings.prefix, sub.namespace, sub.tenant, sub.dead_letter_topic)
        return OutgoingRecord(target, r.value or b"", r.key, headers)

    # -- timers and commits -----------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            ended = []
            while self.leases and self.leases[0].at <= now:
                due = heapq.heappop(self.leases)
                entry = self._entry(due.position)
                if entry is not None and entry.state is State.LEASED and entry.count == due.count:
                    ended.append(entry)
            if ended:
                try:
                    await self._expire(ended, "ack deadline")
                except Exception as exc:
                    log.warning("expiring leases of %s failed: %s", self.sub.key, exc)
            if self.redeliveries and self.redeliveries[0].at <= now:
                self.available.set()

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.timing.commit_interval)
            try:
                await self._commit()
            except Exception as exc:
                log.warning("commit of %s failed: %s", self.sub.key, exc)

    def _advance(self) -> bool:
        """Drop acked records from the front of each partition; True when an offset moved."""
        moved = False
        for partition, entries in self.window.items():
            while entries:
                offset, entry = next(iter(entries.items()))
                if entry.state is not State.ACKED:
                    break
                del entries[offset]
                self.window_bytes -= len(entry.record.value or b"")
            position = next(iter(entries), self.fetched[partition])
            if position != self.committed[partition]:
                self.committed[partition], moved = position, True
        if moved:
            self.room.set()
        return moved

    async def _commit(self, force: bool = False) -> None:
        if not self._advance() and not force:
            return
        needed = [e.log_offset for w in self.window.values() for e in w.values() if e.log_offset is not None]
        needed += [known.log_offset for known in self.logged.values()]
        metadata = json.dumps({"log": min(needed, default=self.writer.end), "epoch": self.epoch})
        offsets = {tp: OffsetAndMetadata(self.committed[tp.partition], metadata) for tp in self.tps}
        await guarded(self.consumer.commit(offsets))

    # -- position ---------------------------------------------------------------------

    async def seek(self, positions: dict[int, int]) -> dict[int, int]:
        """Start over from positions (partitions left out keep theirs); outstanding deliveries go stale."""
        self._check_running()
        await self._check_positions(positions)
        async with self.lock:
            target = {**self.committed, **positions}
            epoch = self.epoch + 1
            await self.writer.append([LogEvent(sub=self.sub.key, kind="seek", epoch=epoch, offsets=target)])
            self.epoch = epoch
            self._reset(target)
            await self._commit(force=True)
        self.room.set()
        return dict(self.committed)

    async def _check_positions(self, positions: dict[int, int]) -> None:
        """Unprocessable (422) for a partition the topic lacks or an offset beyond its end:
        a position past the end would only make lag report a high watermark that is not."""
        known = {tp.partition: tp for tp in self.tps}
        wanted = [known[p] for p in positions if p in known]
        ends = await guarded(self.consumer.end_offsets(wanted)) if wanted else {}
        for partition, offset in sorted(positions.items()):
            if partition not in known:
                raise Unprocessable("The topic has no such partition", {"partition": partition})
            end = int(ends[known[partition]])
            if offset > end:
                raise Unprocessable(
                    "The offset is past the partition's end",
                    {"partition": partition, "offset": offset, "end": end},
                )

    async def lag(self) -> LagReport:
        self._check_running()
        self._advance()
        ends = await guarded(self.consumer.end_offsets(self.tps))
        parts, in_flight, oldest = [], 0, None
        for tp in self.tps:
            entries = self.window[tp.partition]
            committed = self.committed[tp.partition]
            high = max(int(ends[tp]), committed)
            ahead = self._acked_ahead(tp.partition)
            in_flight += sum(1 for e in entries.values() if e.state is State.LEASED)
            first = next((e for e in entries.values() if e.state is not State.ACKED), None)
            if first is not None:
                oldest = min(oldest or first.record.timestamp, first.record.timestamp)
            parts.append(
                PartitionLag(
                    partition=tp.partition,
                    committed=committed,
                    high_watermark=high,
                    lag=high - committed,
                    acked_ahead=ahead,
                )
            )
        total = sum(p.lag for p in parts)
        return LagReport(
            subscription=self.sub.key,
            partitions=parts,
            total_lag=total,
            unacked=total - sum(p.acked_ahead for p in parts),
            in_flight=in_flight,
            oldest_unacked_age_ms=None if oldest is None else max(0, now_ms() - oldest),
        )

    def gauges(self) -> tuple[int, int, float | None]:
        """(records not acked, records leased, seconds since the oldest record not acked was
        written) from what this worker holds now: a scrape never waits for the broker. The
        end of each partition is the one its last fetch reported."""
        unacked, in_flight, oldest = 0, 0, None
        for tp in self.tps:
            entries = self.window[tp.partition]
            committed = self.committed[tp.partition]
            end = max(self._known_end(tp), self.fetched.get(tp.partition, committed), committed)
            unacked += end - committed - self._acked_ahead(tp.partition)
            in_flight += sum(1 for e in entries.values() if e.state is State.LEASED)
            first = next((e for e in entries.values() if e.state is not State.ACKED), None)
            if first is not None:
                oldest = min(oldest or first.record.timestamp, first.record.timestamp)
        return unacked, in_flight, None if oldest is None else max(0, now_ms() - oldest) / 1000

    def _acked_ahead(self, partition: int) -> int:
        """Acked records above the committed offset: in the window, or logged and not fetched yet."""
        fetched = sum(1 for e in self.window[partition].values() if e.state is State.ACKED)
        return fetched + sum(1 for (p, _), k in self.logged.items() if p == partition and k.acked)

    def _known_end(self, tp: TopicPartition) -> int:
        """The partition's end as last fetched: the last stable offset (read committed), else
        the high watermark; 0 before the first fetch answered."""
        stable = self.consumer.last_stable_offset(tp)
        if stable is not None and stable >= 0:
            return int(stable)
        return int(self.consumer.highwater(tp) or 0)


DLQ_PREFIX = "bus.dlq."
DLQ_TOPIC = "bus.dlq.topic"
DLQ_PARTITION = "bus.dlq.partition"
DLQ_OFFSET = "bus.dlq.offset"
DLQ_SUBSCRIPTION = "bus.dlq.subscription"
DLQ_REASON = "bus.dlq.reason"
DLQ_DELIVERY_COUNT = "bus.dlq.delivery_count"
DLQ_FIRST_DELIVERY = "bus.dlq.first_delivery_at"
DLQ_LAST_DELIVERY = "bus.dlq.last_delivery_at"


def source_partitions(sub: Subscription, topic: Topic) -> list[int]:
    """Every partition of the topic; for an inbox, the one its agent's key hashes to."""
    if sub.inbox_of is None:
        return list(range(topic.partitions))
    return [partition_for(sub.inbox_of.encode(), topic.partitions, 0)]


def parse_metadata(text: str | None) -> tuple[int, int]:
    """(oldest needed log offset, epoch) from a commit's metadata; (0, 0) if unreadable."""
    try:
        found = json.loads(text or "{}")
        return int(found.get("log", 0)), int(found.get("epoch", 0))
    except (ValueError, TypeError, AttributeError):
        return 0, 0


def _first_error(failed: list[dict[str, str]]) -> Exception:
    """One error for the request, with every failing id listed; the first failure sets the code."""
    details = {"failed": failed}
    code = failed[0]["code"]
    message = f"{len(failed)} delivery id(s) cannot be settled; nothing was changed"
    for cls in (DeliveryNotFound, DeliveryStale, DeliverySuperseded):
        if cls.code == code:
            return cls(message, details)
    return InvalidParameter(message, details)
