"""Audit records: who did what, or was refused, and when."""

from __future__ import annotations

from agentbus_client.models.audit import AuditPage, AuditRecord

__all__ = ["AuditPage", "AuditRecord"]
