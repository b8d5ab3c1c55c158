"""What every primitive shares on the wire: the shapes of names and ids, the error body."""

from __future__ import annotations

import re

from agentbus_client.models.common import (
    NAME_PATTERN,
    NAME_RE,
    ErrorBody,
    Labels,
    Name,
    StrictModel,
)

__all__ = [
    "CALL_ID_PATTERN",
    "INT64_MAX",
    "NAME_PATTERN",
    "NAME_RE",
    "OPAQUE_ID_PATTERN",
    "PATH_PARAMETERS",
    "STREAM_ID_PATTERN",
    "SUBJECT_PATTERN",
    "VERSION_PATTERN",
    "ErrorBody",
    "Labels",
    "Name",
    "StrictModel",
    "parse_whole",
]

SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a schema subject
CALL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"  # a tool call
STREAM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"  # a token stream
OPAQUE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # ids the bus makes: keys, approvals
VERSION_PATTERN = r"^(?:latest|[1-9][0-9]{0,8})$"  # a schema version

INT64_MAX = 2**63 - 1  # Kafka offsets and timestamps are int64
_WHOLE = re.compile(r"[0-9]{1,19}")


def parse_whole(text: str | None, maximum: int = INT64_MAX) -> int | None:
    """A whole number in ASCII digits, at most maximum; None for anything else. (str.isdigit
    takes '²' and int() takes Arabic-Indic digits: neither is a number on this wire.)"""
    if text is None or not _WHOLE.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


# Every path parameter of the API and the pattern it must match: a request whose path
# does not is refused (400 invalid_parameter) before it is routed on or forwarded.
PATH_PARAMETERS = {
    "namespace": NAME_PATTERN,
    "tenant": NAME_PATTERN,
    "name": NAME_PATTERN,
    # a name; the subscription behind an agent's inbox is inbox.<agent> (never served, 404)
    "id": r"^(?:inbox\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
    "conversation_id": NAME_PATTERN,
    "agent_id": NAME_PATTERN,
    "subject": SUBJECT_PATTERN,
    "call_id": CALL_ID_PATTERN,
    "stream_id": STREAM_ID_PATTERN,
    "key_id": OPAQUE_ID_PATTERN,
    "approval_id": OPAQUE_ID_PATTERN,
    "version": VERSION_PATTERN,
}
