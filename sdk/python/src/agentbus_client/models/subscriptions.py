"""Subscriptions: durable consumer groups with per-record ack, as the bus keeps and serves them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from agentbus_client.models.common import Labels, Name, StrictModel
from agentbus_client.models.publish import DeliveredRecord

# Ids are shorter than other names so that the default dead-letter topic, "{id}-dlq", is a name too.
SubscriptionName = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")]
StartPosition = Literal["earliest", "latest"] | Annotated[int, Field(ge=0)]
AckMode = Literal["auto", "manual"]
DeliveryId = Annotated[str, Field(min_length=1, max_length=128)]
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class HeaderFilter(StrictModel):
    """Deliver only records whose headers have every one of these exact values.

    Records that do not match are skipped (counted as acked): they never reach a client."""

    headers: dict[
        Annotated[str, Field(min_length=1, max_length=255)], Annotated[str, Field(max_length=1024)]
    ] = Field(min_length=1, max_length=16)


class SubscriptionSpec(StrictModel):
    """The body of POST /v1/subscriptions."""

    namespace: Name
    tenant: Name
    id: SubscriptionName
    topic: str = Field(
        min_length=1,
        max_length=200,
        description="A topic of the same namespace and tenant: its name, or namespace/tenant/name",
    )
    start: StartPosition = Field("latest", description="earliest, latest, or a unix time in ms")
    ack_mode: AckMode = Field("manual", description="manual: at least once; auto: at most once")
    ack_deadline_ms: int = Field(30_000, ge=500, le=3_600_000, description="Redeliver if not acked by then")
    max_deliveries: int = Field(5, ge=1, le=100, description="Then the record goes to the dead-letter topic")
    redelivery_backoff_ms: int = Field(
        1_000, ge=0, le=600_000, description="Wait before a redelivery; doubles with each delivery"
    )
    redelivery_backoff_max_ms: int = Field(60_000, ge=0, le=3_600_000, description="Cap of the backoff")
    dead_letter_topic: Name | None = Field(None, description="A topic of the same tenant; default {id}-dlq")
    filter: HeaderFilter | None = None
    labels: Labels = Field(default_factory=dict)
    description: str = Field("", max_length=1024)


class Subscription(BaseModel):
    """A subscription as the bus keeps it (and returns it)."""

    namespace: str
    tenant: str
    id: str
    topic: str = Field(description="The source topic's name (same namespace and tenant)")
    start: StartPosition
    start_offsets: dict[int, int] = Field(
        description="Where delivery began, per partition: `start` resolved when the subscription was created"
    )
    ack_mode: AckMode
    ack_deadline_ms: int
    max_deliveries: int
    redelivery_backoff_ms: int
    redelivery_backoff_max_ms: int
    dead_letter_topic: str
    filter: HeaderFilter | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    consumer_group: str = Field(description="The Kafka consumer group that holds the committed offsets")
    inbox_of: str | None = Field(
        None,
        description="Set on an agent's inbox: the agent (namespace/tenant/id) whose messages it delivers",
    )
    created_at: datetime

    @property
    def key(self) -> str:
        return subscription_key(self.namespace, self.tenant, self.id)


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class PullRequest(StrictModel):
    """The body of POST .../pull."""

    max_records: int = Field(100, ge=1, le=1000)
    wait_ms: int = Field(1_000, ge=0, le=30_000, description="Hold the request until a record arrives")
    session: SessionId | None = Field(
        None, description="Records delivered under a session are redelivered when the session is released"
    )


class Delivery(DeliveredRecord):
    """A record handed to one consumer of a subscription."""

    delivery_id: str = Field(description="Quote it to ack or nack this delivery")
    delivery_count: int = Field(description="1 on the first delivery, 2 on the first redelivery, ...")


class PullResponse(BaseModel):
    deliveries: list[Delivery]


class AckRequest(StrictModel):
    delivery_ids: list[DeliveryId] = Field(min_length=1, max_length=1000)


class AckResponse(BaseModel):
    acked: int


class NackRequest(StrictModel):
    delivery_ids: list[DeliveryId] = Field(min_length=1, max_length=1000)
    action: Literal["redeliver", "dead_letter"] = "redeliver"
    reason: str = Field("", max_length=1024)


class NackResponse(BaseModel):
    nacked: int
    dead_lettered: int


class ReleaseRequest(StrictModel):
    """Give back every record a session holds (an SSE client went away)."""

    session: SessionId


class ReleaseResponse(BaseModel):
    released: int


class PartitionLag(BaseModel):
    partition: int
    committed: int = Field(description="Next offset to consume: every record below it is acked")
    high_watermark: int
    lag: int = Field(description="high_watermark - committed")
    acked_ahead: int = Field(description="Records at or above committed that are acked already")


class LagReport(BaseModel):
    subscription: str
    partitions: list[PartitionLag]
    total_lag: int
    unacked: int = Field(description="total_lag minus the records acked ahead of the committed offsets")
    in_flight: int = Field(description="Records delivered and not yet acked, nacked or expired")
    oldest_unacked_age_ms: int | None = Field(description="Age of the oldest record still pending, if any")
    owner: str = Field("", description="The worker running the subscription now")


class SeekRequest(StrictModel):
    """Exactly one of position, timestamp_ms and offsets."""

    position: Literal["earliest", "latest"] | None = None
    timestamp_ms: int | None = Field(None, ge=0)
    offsets: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Partition (as a string) to offset; partitions left out keep their position"
    )

    @model_validator(mode="after")
    def exactly_one(self) -> SeekRequest:
        given = [x for x in (self.position, self.timestamp_ms, self.offsets) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of position, timestamp_ms and offsets")
        return self


class SeekResponse(BaseModel):
    committed: dict[int, int]


class DeadLetterOrigin(BaseModel):
    topic: str
    partition: int
    offset: int
    subscription: str
    reason: str
    delivery_count: int
    first_delivery_at: int | None
    last_delivery_at: int | None


class DeadLetter(BaseModel):
    dead_letter_id: str = Field(description="partition:offset in the dead-letter topic")
    origin: DeadLetterOrigin
    record: DeliveredRecord
    redriven: bool


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]


class RedriveRequest(StrictModel):
    """Which dead letters to send back: these ids, or all of them."""

    dead_letter_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=1000)
    all: bool = False

    @model_validator(mode="after")
    def one_choice(self) -> RedriveRequest:
        if (self.dead_letter_ids is None) == (not self.all):
            raise ValueError("give dead_letter_ids or all=true")
        return self


class RedriveResponse(BaseModel):
    redriven: list[str]
    skipped: list[str] = Field(description="Already redriven before: sent back once only")


def subscription_key(namespace: str, tenant: str, sub_id: str) -> str:
    return f"{namespace}/{tenant}/{sub_id}"
