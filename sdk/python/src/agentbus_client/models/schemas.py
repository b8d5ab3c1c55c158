"""Schema registry: subjects, versions, compatibility modes and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentbus_client.models.common import StrEnum, StrictModel

SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
JsonSchema = dict[str, Any] | bool


class CompatibilityMode(StrEnum):
    """Which earlier versions a new version must stay compatible with, and how.

    BACKWARD: readers on the new version can read data written with the old one.
    FORWARD: readers on the old version can read data written with the new one.
    FULL: both. The plain forms compare with the latest version; *_TRANSITIVE with all.
    """

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


class BreakingChange(BaseModel):
    """One reason a candidate schema is incompatible with an earlier version."""

    pointer: str = Field(
        description="JSON pointer into the schema where the change is, e.g. /properties/total/type"
    )
    change: str = Field(description="Stable name of the kind of change, e.g. type_narrowed")
    message: str
    direction: Literal["backward", "forward"] = Field(
        description="backward: old data may fail the new schema; forward: new data may fail the old schema"
    )
    version: int | None = Field(None, description="The earlier version it breaks with")


class SchemaSubmission(StrictModel):
    """The body of POST .../versions and POST .../compatibility."""

    schema_: JsonSchema = Field(alias="schema", description="A JSON Schema (draft 2020-12)")
    description: str = Field("", max_length=1024)


class CompatibilityCheck(StrictModel):
    schema_: JsonSchema = Field(alias="schema")
    mode: CompatibilityMode | None = Field(None, description="Default: the subject's mode")


class SubjectConfig(StrictModel):
    compatibility: CompatibilityMode


class SchemaVersion(BaseModel):
    namespace: str
    tenant: str
    subject: str
    version: int
    schema_id: str = Field(description="sha256 of the schema's canonical JSON: equal schemas, equal ids")
    schema_: JsonSchema = Field(alias="schema", serialization_alias="schema")
    description: str = ""
    created_at: datetime

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class SubjectSummary(BaseModel):
    namespace: str
    tenant: str
    subject: str
    compatibility: CompatibilityMode
    versions: list[int]
    latest: int | None


class SubjectList(BaseModel):
    subjects: list[SubjectSummary]


class VersionList(BaseModel):
    subject: str
    versions: list[SchemaVersion]


class CompatibilityReport(BaseModel):
    compatible: bool
    mode: CompatibilityMode
    compared_with: list[int] = Field(description="The versions the candidate was checked against")
    breaking_changes: list[BreakingChange]


class Violation(BaseModel):
    """One way a payload breaks its topic's schema."""

    pointer: str = Field(description="JSON pointer into the payload")
    keyword: str = Field(description="The JSON Schema keyword that failed, e.g. required")
    message: str
