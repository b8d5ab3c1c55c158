"""Agents: registrations, heartbeats, liveness, the events about them and inbox messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from agentbus_client.models.common import HeaderName, Labels, Name, StrictModel
from agentbus_client.models.publish import JSON_CONTENT_TYPE
from agentbus_client.models.subscriptions import Delivery
from agentbus_client.models.tools import UsageTotals

OperatorState = Literal["enabled", "draining", "disabled"]
Liveness = Literal["unknown", "alive", "late", "dead"]
MAX_CAPABILITIES = 64
MAX_SCHEMA_BYTES = 65_536  # one capability's input or output schema
MAX_CARD_BYTES = 65_536
# Tool names as the common LLM tool-calling APIs accept them.
ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# An agent of the same tenant: its id, or namespace/tenant/id.
AgentRef = Annotated[
    str,
    Field(pattern=r"^(?:[a-z0-9-]{1,63}/[a-z0-9-]{1,63}/)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
]
JsonSchemaObject = dict[str, Any]


class Capability(StrictModel):
    """A tool the agent offers: its name and the JSON Schemas (draft 2020-12) of its input and output."""

    name: ToolName
    description: str = Field("", max_length=4096)
    input_schema: JsonSchemaObject = Field(default_factory=lambda: {"type": "object"})
    output_schema: JsonSchemaObject | None = None
    requires_approval: bool = Field(
        False, description="Calls wait for a human decision (see docs/approvals.md)"
    )


class AgentSkill(BaseModel):
    """An A2A AgentSkill. The fields below are checked; other A2A fields are kept as given."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    description: str = Field("", max_length=4096)
    tags: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=64)


class AgentCard(BaseModel):
    """An A2A AgentCard (name, description, version, skills are checked; other A2A fields,
    e.g. url, capabilities, defaultInputModes, are kept as given)."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(min_length=1, max_length=256)
    description: str = Field(max_length=4096)
    version: str = Field(min_length=1, max_length=64)
    skills: list[AgentSkill] = Field(default_factory=list, max_length=MAX_CAPABILITIES)

    @model_validator(mode="after")
    def bounded(self) -> AgentCard:
        if len(self.model_dump_json()) > MAX_CARD_BYTES:
            raise ValueError(f"the card is over {MAX_CARD_BYTES} bytes")
        return self


class InboxOptions(StrictModel):
    """How the agent's inbox redelivers (as a subscription's fields of the same names)."""

    ack_deadline_ms: int = Field(30_000, ge=500, le=3_600_000)
    max_deliveries: int = Field(5, ge=1, le=100, description="Then the message goes to inbox-dlq")
    redelivery_backoff_ms: int = Field(1_000, ge=0, le=600_000)


class AgentSpec(StrictModel):
    """The body of POST /v1/agents."""

    namespace: Name
    tenant: Name
    id: Name
    display_name: str = Field("", max_length=256, description="Default: the id")
    description: str = Field("", max_length=4096)
    capabilities: list[Capability] = Field(default_factory=list, max_length=MAX_CAPABILITIES)
    card: AgentCard | None = Field(None, description="An A2A agent card; default: made from the fields above")
    labels: Labels = Field(default_factory=dict)
    heartbeat_interval_ms: int = Field(
        10_000, ge=500, le=3_600_000, description="The agent beats at least this often"
    )
    state: OperatorState = "enabled"
    inbox: InboxOptions = Field(default_factory=InboxOptions)

    @field_validator("capabilities")
    @classmethod
    def unique_names(cls, capabilities: list[Capability]) -> list[Capability]:
        names = [c.name for c in capabilities]
        if len(names) != len(set(names)):
            raise ValueError("capability names must be unique")
        return capabilities


class Agent(BaseModel):
    """An agent as the bus keeps it; liveness fields come from the heartbeats view."""

    namespace: str
    tenant: str
    id: str
    display_name: str
    description: str
    capabilities: list[Capability]
    card: AgentCard
    labels: dict[str, str]
    heartbeat_interval_ms: int
    state: OperatorState
    inbox: InboxOptions
    created_at: datetime
    updated_at: datetime
    liveness: Liveness = Field("unknown", description="As last evaluated (and announced on agent-events)")
    liveness_since: datetime | None = None
    last_heartbeat_at: datetime | None = None
    status: str = Field("", description="What the agent said in its last heartbeat")
    usage: UsageTotals = Field(
        default_factory=UsageTotals, description="What its tool results and stream ends reported, added up"
    )

    @property
    def key(self) -> str:
        return agent_key(self.namespace, self.tenant, self.id)

    def has_capability(self, name: str) -> bool:
        return any(c.name == name for c in self.capabilities)


class AgentList(BaseModel):
    agents: list[Agent]


class StateChange(StrictModel):
    """The body of PUT .../state."""

    state: OperatorState
    reason: str = Field("", max_length=1024)


class HeartbeatRequest(StrictModel):
    """The body of POST .../heartbeat (optional)."""

    status: str = Field("", max_length=256, description="Free text, shown on the agent (e.g. 'busy')")


class HeartbeatReceipt(BaseModel):
    agent: str
    received_at: int = Field(description="unix ms")
    liveness: Liveness = Field(description="The agent's liveness as last announced (before this beat)")
    state: OperatorState = Field(description="The operator state: a draining agent should finish up")
    heartbeat_interval_ms: int


class AgentEvent(BaseModel):
    """A record on the tenant's agent-events topic (serialized with 'from', by alias)."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["agent.registered", "agent.state", "agent.liveness", "agent.deleted"]
    agent: str
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    at: int
    reason: str | None = None
    last_heartbeat_at: int | None = None


class AgentMessageSpec(StrictModel):
    """The body of POST .../messages: one message for the agent's inbox."""

    model_config = ConfigDict(populate_by_name=True)

    from_: AgentRef | None = Field(None, alias="from", description="The sending agent (same tenant)")
    payload: JsonValue
    content_type: str = Field(JSON_CONTENT_TYPE, pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=127)
    headers: dict[HeaderName, str] = Field(
        default_factory=dict, description="Caller headers; 'bus.' is reserved"
    )
    message_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="Default: fresh")
    correlation_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    reply_to: AgentRef | None = Field(None, description="Where answers go (same tenant); default: from")


class SendReceipt(BaseModel):
    """A message the broker has acknowledged in the agent's inbox."""

    agent: str
    message_id: str
    partition: int
    offset: int
    timestamp: int


class InboxMessage(BaseModel):
    """A message as an agent receives it from its inbox (a delivery, unpacked)."""

    model_config = ConfigDict(populate_by_name=True)

    delivery_id: str
    delivery_count: int
    message_id: str
    kind: str = Field(
        "message", description="bus.kind: message, tool_call, tool_result, tool_cancel, stream_end, ..."
    )
    to: str
    from_: str | None = Field(None, alias="from")
    reply_to: str | None = None
    correlation_id: str | None = None
    content_type: str
    headers: dict[str, str] = Field(description="The sender's own headers (no bus.* ones)")
    payload: JsonValue
    sent_at: int

    @classmethod
    def from_delivery(cls, d: Delivery) -> InboxMessage:
        h = d.headers
        return cls(
            delivery_id=d.delivery_id,
            delivery_count=d.delivery_count,
            message_id=d.message_id or "",
            kind=h.get("bus.kind", "message"),
            to=h.get("bus.to", d.key or ""),
            from_=h.get("bus.from"),
            reply_to=h.get("bus.reply_to"),
            correlation_id=h.get("bus.correlation_id"),
            content_type=d.content_type,
            headers={k: v for k, v in h.items() if not k.startswith("bus.")},
            payload=d.payload,
            sent_at=int(h.get("bus.published_at", d.timestamp)),
        )

    @property
    def answer_to(self) -> str | None:
        """Where an answer goes: reply_to, else the sender."""
        return self.reply_to or self.from_


def agent_key(namespace: str, tenant: str, agent_id: str) -> str:
    return f"{namespace}/{tenant}/{agent_id}"
