"""The reserved 'bus.' record headers: stamped by the bus, never taken from a caller."""

from __future__ import annotations

__all__ = [
    "APPROVAL_ID",
    "CALL_ID",
    "CONTENT_TYPE",
    "CONVERSATION",
    "CORRELATION_ID",
    "FROM",
    "KIND",
    "MESSAGE_ID",
    "NAMESPACE",
    "PUBLISHED_AT",
    "REPLY_TO",
    "SCHEMA_ID",
    "SCHEMA_SUBJECT",
    "SCHEMA_VERSION",
    "SEQ",
    "TENANT",
    "TO",
    "from_kafka",
    "is_reserved",
    "to_kafka",
]

RESERVED_PREFIX = "bus."
MESSAGE_ID = "bus.message_id"
NAMESPACE = "bus.namespace"
TENANT = "bus.tenant"
PUBLISHED_AT = "bus.published_at"  # unix milliseconds, when the bus accepted the record
CONTENT_TYPE = "bus.content_type"
SCHEMA_SUBJECT = "bus.schema_subject"  # set on records of a topic bound to a schema
SCHEMA_VERSION = "bus.schema_version"
SCHEMA_ID = "bus.schema_id"
KIND = "bus.kind"  # what a record the bus writes itself is: message, agent.liveness, ...
FROM = "bus.from"  # an agent message: the sending agent's key, if any
TO = "bus.to"  # an agent message: the receiving agent's key
CORRELATION_ID = "bus.correlation_id"
APPROVAL_ID = "bus.approval_id"  # on an envelope published by an approval
CALL_ID = "bus.call_id"  # a tool call, its result or its cancellation
CONVERSATION = "bus.conversation"  # the conversation key of an envelope
SEQ = "bus.seq"  # the envelope's sequence number in its conversation
REPLY_TO = "bus.reply_to"  # an agent message: where the answer should go (an agent key)


def is_reserved(name: str) -> bool:
    return name.lower().startswith(RESERVED_PREFIX)


def to_kafka(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items()]


def from_kafka(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    return {k: v.decode("utf-8", errors="replace") for k, v in headers}
