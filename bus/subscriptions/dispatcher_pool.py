"""The dispatchers this worker runs: started on the first request, stopped when it loses them.

A dispatcher runs only on the owner of its subscription (bus.cluster.ownership). Faust revokes
every partition at the start of a rebalance, and this worker then stops its dispatchers
(committing what is acked) before any other worker can take them over; until the new
assignment arrives, requests are answered 503 owner_moved and clients retry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agentbus_client.models.topics import Topic, topic_id

from bus import metrics
from bus.cluster.ownership import is_owner, owner_partition, owners_topic
from bus.errors import NotReady, OwnerMoved, SubscriptionNotFound
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.settings import Settings
from bus.subscriptions.dispatcher import Dispatcher
from bus.subscriptions.models import Subscription
from bus.subscriptions.store import get_subscription
from bus.topics.service import require_topic

__all__ = ["DISPATCHERS", "inbox_kafka_topic"]

log = logging.getLogger(__name__)
RECONCILE_S = 1.0
IDLE_STOP_S = 300.0  # a subscription nobody used this long stops (its consumer and producer close)


class Dispatchers:
    def __init__(self) -> None:
        self.running: dict[str, Dispatcher] = {}
        self.starting: dict[str, asyncio.Task[Dispatcher]] = {}
        self.rebalancing = True  # until the first assignment arrives
        self.ctx: BusContext | None = None

    async def get(self, ctx: BusContext, sub: Subscription) -> Dispatcher:
        """The running dispatcher of sub, started here if needed; OwnerMoved if not ours,
        NotReady (never a dispatcher started to fail) while this worker starts."""
        self.ctx = ctx
        if not ctx.started_up():  # its tables are catching up: a dispatcher started now would fail
            raise NotReady("This worker is starting (its tables are catching up); retry", None)
        if self.rebalancing or not is_owner(sub.key):
            raise OwnerMoved(
                "This worker does not run this subscription now; retry", {"subscription": sub.key}
            )
        current = get_subscription(sub.key)
        if current is None or current.consumer_group != sub.consumer_group:
            # A client (an open SSE stream) still holds a subscription deleted since.
            raise SubscriptionNotFound(f"Subscription {sub.key} was deleted", {"subscription": sub.key})
        found = self.running.get(sub.key)
        if found is not None and found.sub.consumer_group == sub.consumer_group and not found.stopped:
            return found
        if found is not None:  # the subscription was deleted and created again
            await self._stop(sub.key)
        task = self.starting.get(sub.key)
        if task is None:
            task = asyncio.create_task(self._start(ctx, sub))
            self.starting[sub.key] = task
            task.add_done_callback(lambda _: self.starting.pop(sub.key, None))
        return await asyncio.shield(task)

    async def _start(self, ctx: BusContext, sub: Subscription) -> Dispatcher:
        topic = (
            inbox_topic(ctx, sub)
            if sub.inbox_of
            else await require_topic(ctx, topic_id(sub.namespace, sub.tenant, sub.topic))
        )
        dispatcher = Dispatcher(ctx.settings, ctx.gateway, sub, topic, owner_partition(sub.key))
        try:
            await dispatcher.start()
        except BaseException as exc:
            log.warning("starting subscription %s failed: %r", sub.key, exc)
            await dispatcher.stop()
            raise
        self.running[sub.key] = dispatcher
        return dispatcher

    async def _stop(self, key: str) -> None:
        dispatcher = self.running.pop(key, None)
        if dispatcher is not None:
            await dispatcher.stop()

    async def stop_partitions(self, partitions: set[int] | None) -> None:
        """Stop the dispatchers of these owner partitions (all when None)."""
        keys = [k for k in self.running if partitions is None or owner_partition(k) in partitions]
        await asyncio.gather(*(self._stop(k) for k in keys))

    async def reconcile(self) -> None:
        """Stop what is no longer ours (deleted subscriptions, partitions moved elsewhere) and
        what nobody uses: the next request starts it again where it left off."""
        while True:
            await asyncio.sleep(RECONCILE_S)
            for key, dispatcher in list(self.running.items()):
                current = get_subscription(key)
                stale = current is None or current.consumer_group != dispatcher.sub.consumer_group
                idle = dispatcher.idle_for() > IDLE_STOP_S
                if stale or idle or not is_owner(key) or dispatcher.stopped:
                    await self._stop(key)


DISPATCHERS = Dispatchers()


def inbox_topic(ctx: BusContext, sub: Subscription) -> Topic:
    """The shared inbox topic, seen as the source of one agent's inbox subscription."""
    s = ctx.settings
    return Topic(
        namespace=sub.namespace,
        tenant=sub.tenant,
        name=sub.topic,
        kafka_topic=inbox_kafka_topic(s),
        partitions=s.state_partitions,
        replication_factor=s.replication_factor,
        created_at=sub.created_at,
    )


def inbox_kafka_topic(settings: Settings) -> str:
    """One topic for every agent's inbox, keyed by agent (namespace/tenant/id)."""
    return f"{settings.prefix}-inbox"


def subscription_gauges() -> list[metrics.Row]:
    """Lag, in flight and oldest unacked age of every subscription this worker runs: the
    MAX_SUBSCRIPTION_SERIES most lagging by name, the rest added up (oldest: the max) as OTHER."""
    found = sorted(
        ((key, *d.gauges()) for key, d in list(DISPATCHERS.running.items()) if not d.stopped),
        key=lambda row: -row[1],
    )
    named, rest = found[: metrics.MAX_SUBSCRIPTION_SERIES], found[metrics.MAX_SUBSCRIPTION_SERIES :]
    rows: list[metrics.Row] = [((key,), (lag, leased, age)) for key, lag, leased, age in named]
    if rest:
        ages = [age for *_, age in rest if age is not None]
        lag, leased = sum(r[1] for r in rest), sum(r[2] for r in rest)
        rows.append(((metrics.OTHER,), (lag, leased, max(ages, default=None))))
    return rows


metrics.SUBSCRIPTIONS.read_from(subscription_gauges)


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def stop_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
    name = owners_topic.get_topic_name()
    DISPATCHERS.rebalancing = True
    lost = {tp.partition for tp in revoked if tp.topic == name}
    if lost:
        log.info("owner partitions %s revoked; stopping their subscriptions", sorted(lost))
        await DISPATCHERS.stop_partitions(lost)


@app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
async def resume(sender: Any, assigned: set[Any], **_: Any) -> None:
    DISPATCHERS.rebalancing = False
