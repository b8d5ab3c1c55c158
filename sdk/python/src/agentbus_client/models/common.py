"""Models shared by every primitive: names, the error body."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Lowercase letters, digits and inner hyphens. No '.' and no '_': the bus joins the three
# parts with '.', and Kafka treats '.' and '_' as colliding in metric names, so
# forbidding both makes the mapping to Kafka topic names collision-free.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
NAME_RE = re.compile(NAME_PATTERN)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Labels = Annotated[
    dict[Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=255)]], Field(max_length=32)
]


class StrEnum(str, Enum):
    """An enum of strings that prints as its value (enum.StrEnum arrived in Python 3.11)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class StrictModel(BaseModel):
    """Base of every request model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. topic_not_found.")
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# A header name: at least one character (an empty name is no header), at most 255.
HeaderName = Annotated[str, Field(min_length=1, max_length=255)]
