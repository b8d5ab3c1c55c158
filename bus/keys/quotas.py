"""Fleet-wide quotas: fixed one-second windows, usage shared through a Kafka topic.

Each worker admits a request against what the whole fleet used in the current second:
the usage other workers reported on '{prefix}-quota-usage' (every REPORT_INTERVAL) plus
what this worker admitted itself. Early in a window, before the other workers' reports
can have arrived, a worker also keeps to its fair share: the limit divided by the number
of workers that recently served this subject. So a key served by N workers gets its
limit, not N times it; the overshoot is bounded by what races through one report
interval. Over a limit, publish answers 429 quota_exceeded with Retry-After
(the seconds to the next window) and writes nothing; delivery over SSE pauses until the
next window instead.

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
UNHEARD_S = 0.5  # into a window: a worker that has not reported by then is taken as idle
KEEP_WINDOWS = 3  # seconds of fleet usage kept in memory

Usage = dict[tuple[int, str], int]  # (window, "subject|dimension") -> amount


def usage_topic_name(ctx: BusContext) -> str:
    return f"{ctx.settings.prefix}-quota-usage"


@dataclass
class Limit:
    subject: str
    dimension: str
    per_second: int
    amount: int


@dataclass
class QuotaLedger:
    """This worker's view of the fleet's usage in the last few seconds."""

    worker: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    fleet: Usage = field(default_factory=lambda: defaultdict(int))  # everyone's reported usage
    pending: Usage = field(default_factory=lambda: defaultdict(int))  # ours, not reported yet
    mine: Usage = field(default_factory=lambda: defaultdict(int))  # ours, reported or not
    active: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # slot -> worker -> window

    def used(self, window: int, slot: str) -> int:
        return self.fleet[(window, slot)] + self.pending[(window, slot)]

    def share(self, slot: str, limit: int, window: int) -> int:
        """This worker's fair share of a limit: split among the workers recently serving it."""
        workers = {w for w, last in self.active[slot].items() if last >= window - KEEP_WINDOWS}
        workers.add(self.worker)
        return max(1, limit // len(workers))

    def over(self, lim: Limit, window: int, into_window: float) -> bool:
        slot = f"{lim.subject}|{lim.dimension}"
        if self.used(window, slot) + lim.amount > lim.per_second:
            return True
        # Until every other worker serving this subject has reported for this window, their
        # usage may not have reached us: keep to our share. A worker that stays silent is
        # taken as idle after UNHEARD_S (its reports may be late under load, not lost).
        early = into_window < UNHEARD_S and not self.heard_all(slot, window)
        return early and self.mine[(window, slot)] + lim.amount > self.share(slot, lim.per_second, window)

    def heard_all(self, slot: str, window: int) -> bool:
        """Whether every other worker recently serving slot has reported this window."""
        return all(
            last >= window
            for w, last in self.active[slot].items()
            if w != self.worker and last >= window - KEEP_WINDOWS
        )

    def admit(self, limits: list[Limit], now: float | None = None) -> None:
        """Count every limit's amount, or none of them and raise QuotaExceeded (429)."""
        now = time.time() if now is None else now
        window = int(now)
        for lim in limits:
            if self.over(lim, window, now - window):
                metrics.QUOTA_REJECTIONS.labels(lim.dimension).inc()
                retry = max(1, math.ceil(window + 1 - now))
                raise QuotaExceeded(
                    f"Over the {lim.dimension} quota of {lim.subject.split(':')[0]}",
                    {"subject": lim.subject, "dimension": lim.dimension, "limit_per_s": lim.per_second},
                    retry_after=retry,
                )
        for lim in limits:
            slot = f"{lim.subject}|{lim.dimension}"
            self.pending[(window, slot)] += lim.amount
            self.mine[(window, slot)] += lim.amount
            self.active[slot][self.worker] = window

    def take_report(self) -> list[UsageReport]:
        by_window: dict[int, dict[str, int]] = defaultdict(dict)
        for (window, slot), amount in self.pending.items():
            by_window[window][slot] = amount
        self.pending.clear()
        reports = [UsageReport(worker=self.worker, window=w, usage=u) for w, u in by_window.items()]
        # What we report comes back through the topic; count it as fleet usage now, so it is
        # never missing in between, and skip our own reports when they arrive.
        for report in reports:
            self.add(report)
        return reports

    def add(self, report: UsageReport) -> None:
        for slot, amount in report.usage.items():
            self.fleet[(report.window, slot)] += amount
            self.active[slot][report.worker] = report.window

    def forget_old(self) -> None:
        oldest = int(time.time()) - KEEP_WINDOWS
        for usage in (self.fleet, self.mine):
            for key in [k for k in usage if k[0] < oldest]:
                del usage[key]


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
