"""Audit records: who did what, or was refused, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class AuditRecord(BaseModel):
    at: datetime
    action: str = Field(description="e.g. topics.create_topic, keys.revoke_key, request.denied")
    outcome: Literal["ok", "denied"]
    status: int
    code: str | None = Field(None, description="The error code of a denied request")
    key_id: str | None = Field(None, description="Who: the key's id (never its secret)")
    namespace: str | None = None
    tenant: str | None = None
    method: str
    path: str
    source: str | None = Field(None, description="The client's address (denials)")
    count: int = Field(
        1,
        description="How many requests this record stands for: denials of one kind from one source "
        "within one window after the first are written together",
    )


class AuditPage(BaseModel):
    records: list[AuditRecord]
    scanned: int = Field(description="Records read from the audit topic to answer")
    truncated: bool = Field(description="True when the limit or the scan bound cut the answer short")
