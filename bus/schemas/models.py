"""Schema registry: subjects, versions, compatibility modes and reports."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.schemas import (
    BreakingChange,
    CompatibilityCheck,
    CompatibilityMode,
    CompatibilityReport,
    JsonSchema,
    SchemaSubmission,
    SchemaVersion,
    SubjectConfig,
    SubjectList,
    SubjectSummary,
    VersionList,
    Violation,
)
from pydantic import BaseModel, Field

from bus.wire import SUBJECT_PATTERN

__all__ = [
    "SUBJECT_PATTERN",
    "BreakingChange",
    "CompatibilityCheck",
    "CompatibilityMode",
    "CompatibilityReport",
    "JsonSchema",
    "SchemaCommand",
    "SchemaSubmission",
    "SchemaVersion",
    "SubjectConfig",
    "SubjectList",
    "SubjectMeta",
    "SubjectSummary",
    "VersionList",
    "Violation",
]


class SubjectMeta(BaseModel):
    """What the registry keeps per subject, besides the versions themselves."""

    namespace: str
    tenant: str
    subject: str
    compatibility: CompatibilityMode = CompatibilityMode.BACKWARD
    versions: list[int] = Field(default_factory=list, description="Live versions, ascending")
    next_version: int = 1  # versions are never reused, also after a delete


class SchemaCommand(BaseModel):
    """A change to the registry, as a record on the schema-commands topic."""

    op: Literal["register", "configure", "delete_version"]
    namespace: str
    tenant: str
    subject: str
    candidate: SchemaVersion | None = None  # register: version is assigned when applied
    compatibility: CompatibilityMode | None = None  # configure
    version: int | None = None  # delete_version
