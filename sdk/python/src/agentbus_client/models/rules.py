"""Publish-edge rules: an ordered list per tenant, applied to every record before it is produced.

A rule is {id, match, action}. The match is an AND of a glob on the topic name, exact
caller headers and conditions on the payload (JSON pointers); the action denies the
record, tags it with headers, or reroutes it to another topic of the tenant. Only the
first matching rule of the list applies (see bus.rules).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue, field_validator, model_validator

from agentbus_client.models.common import HeaderName, Name, StrictModel
from agentbus_client.models.keys import TOPIC_GLOB

RESERVED_HEADER_PREFIX = "bus."  # headers the bus stamps itself
MAX_RULES = 100  # per tenant
MAX_POINTER_CHARS = 256
MAX_CONDITIONS = 32  # payload conditions of one rule
MAX_RULE_HEADERS = 32  # headers one rule matches on, or tags with
MAX_IN_VALUES = 100
MAX_RULE_SET_BYTES = 262_144  # the stored set is one table record

RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# RFC 6901: '' is the whole document; otherwise '/'-prefixed tokens where '~' is only
# ever '~0' ('~') or '~1' ('/').
POINTER_RE = re.compile(r"^(?:/(?:[^~/]|~[01])*)*$")

Op = Literal["eq", "ne", "exists", "not_exists", "in", "gt", "lt"]
HeaderValue = Annotated[str, Field(max_length=1024)]
RuleHeaders = Annotated[dict[HeaderName, HeaderValue], Field(max_length=MAX_RULE_HEADERS)]


class PayloadCondition(StrictModel):
    """One test of the value a JSON pointer selects in the payload.

    eq / ne: equal (JSON equality: 1 == 1.0, but true != 1) / not equal, where a missing
    value counts as not equal. exists / not_exists: take no value. in: value is a list,
    matches when the selected value equals one item. gt / lt: value is a number or a
    string; matches only a selected value of the same kind that is greater / less.
    """

    pointer: str = Field(max_length=MAX_POINTER_CHARS, description="RFC 6901 JSON pointer, e.g. /order/total")
    op: Op
    value: JsonValue = None

    @field_validator("pointer")
    @classmethod
    def well_formed_pointer(cls, pointer: str) -> str:
        if not POINTER_RE.match(pointer):
            raise ValueError("a JSON pointer is '' or starts with '/', and '~' is only used as '~0' or '~1'")
        return pointer

    @model_validator(mode="after")
    def value_fits_op(self) -> PayloadCondition:
        v = self.value
        if self.op in ("exists", "not_exists") and v is not None:
            raise ValueError(f"'{self.op}' takes no value")
        if self.op in ("eq", "ne") and "value" not in self.model_fields_set:
            raise ValueError(f"'{self.op}' needs a value")
        if self.op == "in" and not (isinstance(v, list) and 1 <= len(v) <= MAX_IN_VALUES):
            raise ValueError(f"'in' needs a list of 1 to {MAX_IN_VALUES} values")
        if self.op in ("gt", "lt") and (isinstance(v, bool) or not isinstance(v, int | float | str)):
            raise ValueError(f"'{self.op}' needs a number or a string")
        return self


class RuleMatch(StrictModel):
    """Every part must hold (an empty match matches every record)."""

    topics: str = Field("*", pattern=TOPIC_GLOB, description="Glob (* and ?) on the topic name")
    headers: RuleHeaders = Field(default_factory=dict, description="Caller headers that must equal these")
    payload: list[PayloadCondition] = Field(default_factory=list, max_length=MAX_CONDITIONS)


class DenyAction(StrictModel):
    """Refuse the whole request with 403 rule_denied."""

    type: Literal["deny"]
    reason: str = Field(min_length=1, max_length=512)


class TagAction(StrictModel):
    """Add headers to the record; they overwrite caller headers of the same name."""

    type: Literal["tag"]
    headers: RuleHeaders = Field(min_length=1)

    @field_validator("headers")
    @classmethod
    def not_reserved(cls, headers: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in headers if k.lower().startswith(RESERVED_HEADER_PREFIX))
        if reserved:
            raise ValueError(f"headers starting with 'bus.' are set by the bus: {', '.join(reserved)}")
        return headers


class RerouteAction(StrictModel):
    """Produce the record to another topic of the same tenant instead."""

    type: Literal["reroute"]
    topic: Name = Field(description="Name of the target topic, in the rule set's namespace and tenant")


class RequireApprovalAction(StrictModel):
    """Park the record until a human approves it (docs/approvals.md); nothing is produced before."""

    type: Literal["require_approval"]
    reason: str = Field("", max_length=512, description="Shown on the approval")
    ttl_ms: int = Field(3_600_000, ge=1_000, le=30 * 86_400_000, description="Undecided by then: expired")


RuleAction = Annotated[
    DenyAction | TagAction | RerouteAction | RequireApprovalAction, Field(discriminator="type")
]


class Rule(StrictModel):
    id: str = Field(pattern=RULE_ID_PATTERN, description="Unique in the rule set")
    match: RuleMatch = Field(default_factory=RuleMatch)
    action: RuleAction

    @model_validator(mode="after")
    def not_to_itself(self) -> Rule:
        if isinstance(self.action, RerouteAction) and self.match.topics == self.action.topic:
            raise ValueError("a rule cannot reroute a topic to itself")
        return self


class RuleSetSpec(StrictModel):
    """The body of PUT /v1/rules/{namespace}/{tenant}: the whole ordered list."""

    rules: list[Rule] = Field(max_length=MAX_RULES)


class RuleSet(BaseModel):
    """A tenant's rules as the bus keeps (and returns) them; first match wins."""

    namespace: str
    tenant: str
    rules: list[Rule] = Field(default_factory=list)
    updated_at: datetime | None = Field(None, description="Last PUT or DELETE; null when never set")
