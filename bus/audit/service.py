"""The audit trail: a Kafka topic is the source of truth, searched by reading it back.

Every admin action (a successful POST, PUT or DELETE outside the data plane) and every
denied request (401, 403, 429) becomes one record on '{prefix}-audit'. There is no index
to drift from it: a search seeks to its start time and reads forward, at most
MAX_SCAN records. Records carry the key's id, never its secret.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.audit.models import AuditPage, AuditRecord
from bus.cluster.forwarding import PRINCIPAL
from bus.errors import BusError
from bus.http.routes import AUDIT_TARGET, CONTEXT, Route
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, guarded

__all__ = ["DENIALS", "DenialWindow", "ensure_audit_topic", "record_request", "search", "summarize_denials"]

log = logging.getLogger(__name__)

BACKWARD_WINDOW = 1000  # records read at a time when searching newest first
MAX_SCAN = 200_000

RETENTION = timedelta(days=30)


def audit_topic_name(ctx: BusContext) -> str:
    return f"{ctx.settings.prefix}-audit"


async def ensure_audit_topic(ctx: BusContext) -> None:
    """Create the audit topic if it is missing: one partition, so a search reads one ordered trail."""
    configs = {"retention.ms": str(int(RETENTION.total_seconds() * 1000))}
    await ctx.gateway.create_topic(audit_topic_name(ctx), 1, ctx.settings.replication_factor, configs)


async def record(ctx: BusContext, entry: AuditRecord) -> None:
    """Write one record (acks=all). A failure is logged, never turned into the caller's error."""
    value = entry.model_dump_json().encode()
    key = f"{entry.namespace}/{entry.tenant}".encode() if entry.tenant else None
    try:
        await ctx.gateway.produce([OutgoingRecord(audit_topic_name(ctx), value, key, [])])
    except BusError as exc:
        log.error("audit record lost (%s): %s", exc.code, entry.model_dump_json())


def now() -> datetime:
    return datetime.now(UTC)


async def search(
    ctx: BusContext,
    *,
    namespace: str | None,
    tenant: str | None,
    key_id: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    newest_first: bool = False,
) -> AuditPage:
    """Records matching every given filter, oldest first from since (default: the start),
    or newest first back from until (default: now) down to since."""
    tp = TopicPartition(audit_topic_name(ctx), 0)
    reader = ctx.gateway.new_reader()
    await guarded(reader.start())
    try:
        reader.assign([tp])
        end = (await guarded(reader.end_offsets([tp])))[tp]
        if newest_first:
            return await search_backwards(
                reader, tp, end, (namespace, tenant, key_id, action), since, until, limit
            )
        await seek_since(reader, tp, since)
        found: list[AuditRecord] = []
        scanned = 0
        while scanned < MAX_SCAN and len(found) < limit and await guarded(reader.position(tp)) < end:
            batch = await guarded(reader.getmany(tp, timeout_ms=1000, max_records=1000))
            for message in batch.get(tp, []):
                scanned += 1
                entry = AuditRecord.model_validate_json(message.value or b"{}")
                if until is not None and entry.at > until:
                    return AuditPage(records=found, scanned=scanned, truncated=False)
                if matches(entry, namespace, tenant, key_id, action):
                    found.append(entry)
                    if len(found) >= limit:
                        break
        truncated = len(found) >= limit or scanned >= MAX_SCAN
        return AuditPage(records=found, scanned=scanned, truncated=truncated)
    finally:
        await reader.stop()


async def search_backwards(
    reader: AIOKafkaConsumer,
    tp: TopicPartition,
    end: int,
    filters: tuple[str | None, str | None, str | None, str | None],
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> AuditPage:
    """Newest first: read windows of the topic from its end backwards, each window forwards."""
    first = (await guarded(reader.beginning_offsets([tp])))[tp]
    found: list[AuditRecord] = []
    scanned, window_end = 0, end
    while window_end > first and scanned < MAX_SCAN and len(found) < limit:
        window_start = max(first, window_end - BACKWARD_WINDOW)
        window = await read_window(reader, tp, window_start, window_end)
        scanned += len(window)
        for entry in reversed(window):
            if since is not None and entry.at < since:
                return AuditPage(records=found, scanned=scanned, truncated=False)
            if (until is None or entry.at <= until) and matches(entry, *filters):
                found.append(entry)
                if len(found) >= limit:
                    break
        window_end = window_start
    truncated = len(found) >= limit or scanned >= MAX_SCAN
    return AuditPage(records=found, scanned=scanned, truncated=truncated)


async def read_window(
    reader: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> list[AuditRecord]:
    reader.seek(tp, start)
    window: list[AuditRecord] = []
    while await guarded(reader.position(tp)) < end:
        batch = await guarded(reader.getmany(tp, timeout_ms=1000, max_records=1000))
        for message in batch.get(tp, []):
            if message.offset < end:
                window.append(AuditRecord.model_validate_json(message.value or b"{}"))
    return window


async def seek_since(reader: AIOKafkaConsumer, tp: TopicPartition, since: datetime | None) -> None:
    if since is None:
        # An explicit seek: aiokafka's seek_to_beginning can lose a race with its own
        # reset to latest for a group-less reader and land at the end.
        start = await guarded(reader.beginning_offsets([tp]))
        reader.seek(tp, start[tp])
        return
    found = await guarded(reader.offsets_for_times({tp: int(since.timestamp() * 1000)}))
    hit = found.get(tp)
    if hit is None:
        reader.seek(tp, (await guarded(reader.end_offsets([tp])))[tp])
    else:
        reader.seek(tp, hit.offset)


def matches(
    entry: AuditRecord, namespace: str | None, tenant: str | None, key_id: str | None, action: str | None
) -> bool:
    return (
        (namespace is None or entry.namespace == namespace)
        and (tenant is None or entry.tenant == tenant)
        and (key_id is None or entry.key_id == key_id)
        and (action is None or entry.action == action)
    )


DENIED_STATUSES = frozenset({401, 403, 429})  # audited as refusals


DENIAL_WINDOW_S = 10.0  # denials of one kind from one source: the first now, the rest per window
MAX_DENIAL_KINDS = 10_000  # kinds counted in one window; past that, one overflow count


@dataclass
class DenialWindow:
    """Denials, counted so that a flood of bad requests costs one audit record per kind and
    window, not one Kafka write each: the first denial of a kind (source, key, code,
    action, target tenant) in a window is recorded at once, the ones after it together when the window
    closes, as one record whose count says how many."""

    repeats: dict[tuple[str | None, ...], AuditRecord] = field(default_factory=dict)
    seen: set[tuple[str | None, ...]] = field(default_factory=set)
    overflow: int = 0

    def admit(self, entry: AuditRecord) -> bool:
        """True when entry is the first of its kind in this window (record it now)."""
        kind = (entry.source, entry.key_id, entry.code, entry.action, entry.namespace, entry.tenant)
        if kind not in self.seen:
            if len(self.seen) >= MAX_DENIAL_KINDS:
                self.overflow += 1
                return False
            self.seen.add(kind)
            return True
        held = self.repeats.get(kind)
        self.repeats[kind] = (
            entry if held is None else held.model_copy(update={"count": held.count + 1, "at": entry.at})
        )
        return False

    def close(self) -> list[AuditRecord]:
        """The window's summaries (repeats and overflow); a new window begins."""
        closed = list(self.repeats.values())
        if self.overflow:
            closed.append(
                AuditRecord(
                    at=now(),
                    action="request.denied",
                    outcome="denied",
                    status=0,
                    method="*",
                    path="*",
                    count=self.overflow,
                )
            )
        self.repeats, self.seen, self.overflow = {}, set(), 0
        return closed


DENIALS = DenialWindow()


async def summarize_denials(ctx: BusContext) -> None:
    """Every DENIAL_WINDOW_S: write the window's repeated denials (a background loop)."""
    while True:
        await asyncio.sleep(DENIAL_WINDOW_S)
        for entry in DENIALS.close():
            await record(ctx, entry)


async def record_request(request: web.Request, declared: Route, status: int, error: BusError | None) -> None:
    """Record admin actions that succeeded (each one) and requests that were denied (the
    first of a kind per window, then one count per window: see DenialWindow)."""
    denied = status in DENIED_STATUSES
    admin_action = (
        status < 400 and declared.method != "GET" and declared.tag != "publish" and declared.audited
    )
    if not (denied or admin_action):
        return
    who = request.get(PRINCIPAL)
    m = request.match_info
    namespace, tenant = request.get(AUDIT_TARGET) or (m.get("namespace"), m.get("tenant"))
    entry = AuditRecord(
        at=now(),
        action=f"{declared.tag}.{declared.handler.__name__}",
        outcome="denied" if denied else "ok",
        status=status,
        code=error.code if error is not None else None,
        key_id=getattr(who, "key_id", None),
        namespace=namespace,
        tenant=tenant,
        method=request.method,
        path=request.path,
        source=request.remote if denied else None,
    )
    if denied and not DENIALS.admit(entry):
        return
    await record(request.app[CONTEXT], entry)
