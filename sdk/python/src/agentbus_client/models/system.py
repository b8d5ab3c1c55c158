"""System: the health answer of GET /healthz."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str
    broker: bool
    ready: bool
