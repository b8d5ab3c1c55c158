"""Fleet-wide quotas: fixed one-second windows, usage shared through a Kafka topic.

Each worker keeps to its allowance of a limit: the limit split among the workers in
proportion to what each was asked for in the two previous windows (admitted or refused).
Two workers that take equal traffic for a key get half its limit each; a worker alone
gets all of it; a worker asked for the first time gets the limit divided by the fleet's
size. Every worker also checks the fleet's reported usage in the current window. Reports
go to '{prefix}-quota-usage' every REPORT_INTERVAL (and once a second when idle, so every
worker knows how many workers there are). No worker waits on another's report to decide,
so a late report cannot let two workers spend the same remainder.

The overshoot is bounded: one request per worker per window (a request larger than its
worker's allowance passes when it is the worker's first in that window, or it could never
pass), and the allowance a new worker takes in its first window on a subject.

Over a limit, publish answers 429 quota_exceeded with Retry-After (the seconds to the next
window) and writes nothing; delivery over SSE pauses until the next window instead.

Subjects: 'key:<id>' for a key's own quota, 'tenant:<ns>/<tenant>' for a tenant's.
Dimensions: publish_records, publish_bytes, deliver_records, deliver_bytes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from bus import metrics
from bus.errors import BusError, QuotaExceeded
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, guarded
from bus.keys.quota_models import Quota, UsageReport

__all__ = [
    "LEDGER",
    "Limit",
    "QuotaLedger",
    "deliver_within_quota",
    "ensure_usage_topic",
    "follow_usage",
    "limits_for",
    "report_usage",
]

log = logging.getLogger(__name__)

REPORT_INTERVAL = 0.1  # seconds between usage reports
DEMAND_WINDOWS = 2  # allowances follow what each worker was asked in this many past seconds
KEEP_WINDOWS = 3  # seconds of fleet usage kept in memory; a worker silent longer is gone

Usage = dict[tuple[int, str], int]  # (window, "subject|dimension") -> amount
Asked = dict[tuple[int, str], dict[str, int]]  # (window, slot) -> worker -> amount asked


def usage_topic_name(ctx: BusContext) -> str:
    return f"{ctx.settings.prefix}-quota-usage"


@dataclass
class Limit:
    subject: str
    dimension: str
    per_second: int
    amount: int

    @property
    def slot(self) -> str:
        return f"{self.subject}|{self.dimension}"


@dataclass
class QuotaLedger:
    """This worker's view of the fleet's usage and demand in the last few seconds."""

    worker: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    fleet: Usage = field(default_factory=lambda: defaultdict(int))  # everyone's admitted, as reported
    pending: Usage = field(default_factory=lambda: defaultdict(int))  # ours admitted, not reported yet
    mine: Usage = field(default_factory=lambda: defaultdict(int))  # ours admitted, reported or not
    asked: Asked = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    pending_asked: Usage = field(default_factory=lambda: defaultdict(int))  # ours asked, not reported
    alive: dict[str, int] = field(default_factory=dict)  # worker -> last window it reported in
    last_report: int = 0  # the window of our last report

    def used(self, window: int, slot: str) -> int:
        return self.fleet[(window, slot)] + self.pending[(window, slot)]

    def fleet_size(self, window: int) -> int:
        others = {w for w, last in self.alive.items() if last >= window - KEEP_WINDOWS}
        return len(others | {self.worker})

    def allowance(self, slot: str, limit: int, window: int) -> int:
        """This worker's part of a limit: split by what each worker was asked recently."""
        demand: dict[str, int] = defaultdict(int)
        for past in range(window - DEMAND_WINDOWS, window):
            for worker, amount in self.asked.get((past, slot), {}).items():
                demand[worker] += amount
        ours, total = demand.get(self.worker, 0), sum(demand.values())
        if ours == 0:  # new to this subject: a fair share of the fleet, until demand is known
            return max(1, limit // self.fleet_size(window))
        return max(1, limit * ours // total)

    def over(self, lim: Limit, window: int) -> bool:
        if self.used(window, lim.slot) + lim.amount > lim.per_second:
            return True
        spent = self.mine[(window, lim.slot)]
        return spent > 0 and spent + lim.amount > self.allowance(lim.slot, lim.per_second, window)

    def admit(self, limits: list[Limit], now: float | None = None) -> None:
        """Count every limit's amount, or none of them and raise QuotaExceeded (429)."""
        now = time.time() if now is None else now
        window = int(now)
        for lim in limits:
            self.pending_asked[(window, lim.slot)] += lim.amount
            self.asked[(window, lim.slot)][self.worker] += lim.amount
        for lim in limits:
            if self.over(lim, window):
                metrics.QUOTA_REJECTIONS.labels(lim.dimension).inc()
                retry = max(1, math.ceil(window + 1 - now))
                raise QuotaExceeded(
                    f"Over the {lim.dimension} quota of {lim.subject.split(':')[0]}",
                    {"subject": lim.subject, "dimension": lim.dimension, "limit_per_s": lim.per_second},
                    retry_after=retry,
                )
        for lim in limits:
            self.pending[(window, lim.slot)] += lim.amount
            self.mine[(window, lim.slot)] += lim.amount

    def take_report(self, now: float | None = None) -> list[UsageReport]:
        """What to send: our usage and demand since the last report, or, once a second,
        an empty report so the others count us in the fleet."""
        window = int(time.time() if now is None else now)
        by_window: dict[int, UsageReport] = {}
        for (w, slot), amount in self.pending_asked.items():
            report = by_window.setdefault(w, UsageReport(worker=self.worker, window=w, usage={}, asked={}))
            report.asked[slot] = amount
            report.usage[slot] = self.pending.get((w, slot), 0)
        # What we report comes back through the topic; count it as fleet usage now, so it is
        # never missing in between, and skip our own reports when they arrive.
        for (w, slot), amount in self.pending.items():
            self.fleet[(w, slot)] += amount
        self.pending.clear()
        self.pending_asked.clear()
        if not by_window and self.last_report < window:
            by_window[window] = UsageReport(worker=self.worker, window=window, usage={}, asked={})
        if by_window:
            self.last_report = max(self.last_report, *by_window)
        return list(by_window.values())

    def add(self, report: UsageReport) -> None:
        """Another worker's report."""
        for slot, amount in report.usage.items():
            self.fleet[(report.window, slot)] += amount
        for slot, amount in report.asked.items():
            self.asked[(report.window, slot)][report.worker] += amount
        self.alive[report.worker] = max(report.window, self.alive.get(report.worker, 0))

    def forget_old(self, now: float | None = None) -> None:
        oldest = int(time.time() if now is None else now) - KEEP_WINDOWS
        for usage in (self.fleet, self.mine, self.asked):
            for key in [k for k in usage if k[0] < oldest]:
                del usage[key]
        for worker in [w for w, last in self.alive.items() if last < oldest]:
            del self.alive[worker]


def limits_for(quotas: list[tuple[str, Quota | None]], records: int, size: int, kind: str) -> list[Limit]:
    """The limits a request of `records` records and `size` bytes runs into (kind: publish|deliver)."""
    found: list[Limit] = []
    for subject, quota in quotas:
        if quota is None:
            continue
        per_records = getattr(quota, f"{kind}_records_per_s")
        per_bytes = getattr(quota, f"{kind}_bytes_per_s")
        if per_records is not None:
            found.append(Limit(subject, f"{kind}_records", per_records, records))
        if per_bytes is not None:
            found.append(Limit(subject, f"{kind}_bytes", per_bytes, size))
    return found


async def ensure_usage_topic(ctx: BusContext) -> None:
    configs = {"retention.ms": "60000"}  # usage older than a minute is worthless
    await ctx.gateway.create_topic(usage_topic_name(ctx), 1, ctx.settings.replication_factor, configs)


async def report_usage(ctx: BusContext, ledger: QuotaLedger) -> None:
    """Every REPORT_INTERVAL: send what this worker admitted since the last report."""
    topic = usage_topic_name(ctx)
    while True:
        await asyncio.sleep(REPORT_INTERVAL)
        reports = ledger.take_report()
        if not reports:
            continue
        records = [OutgoingRecord(topic, r.model_dump_json().encode(), None, []) for r in reports]
        try:
            await ctx.gateway.produce(records)
        except BusError as exc:
            log.warning("quota usage report not sent (%s); other workers see it late", exc.code)


async def follow_usage(ctx: BusContext, ledger: QuotaLedger) -> None:
    """Read every worker's reports as they arrive, starting from now."""
    tp = TopicPartition(usage_topic_name(ctx), 0)
    reader = ctx.gateway.new_reader()
    await guarded(reader.start())
    try:
        reader.assign([tp])
        reader.seek(tp, (await guarded(reader.end_offsets([tp])))[tp])
        while True:
            batch = await guarded(reader.getmany(tp, timeout_ms=500, max_records=1000))
            for message in batch.get(tp, []):
                report = UsageReport.model_validate_json(message.value or b"{}")
                if report.worker != ledger.worker:
                    ledger.add(report)
            ledger.forget_old()
    finally:
        await reader.stop()


LEDGER = QuotaLedger()  # one per worker process


def quotas_of(
    key_quota: Quota | None, key_id: str, tenants: dict[tuple[str, str], Quota | None]
) -> list[tuple[str, Quota | None]]:
    return [(f"key:{key_id}", key_quota)] + [(f"tenant:{ns}/{t}", q) for (ns, t), q in tenants.items()]


async def deliver_within_quota(subjects: list[tuple[str, Quota | None]], records: int, size: int) -> None:
    """Wait until the fleet's delivery quotas admit this batch (SSE pauses, never drops)."""
    limits = limits_for(subjects, records, size, "deliver")
    while True:
        try:
            LEDGER.admit(limits)
            return
        except QuotaExceeded as exc:
            await asyncio.sleep(exc.retry_after)
