"""System: health (/livez, /readyz, /healthz), the caller's key, the fleet's workers, and
the snapshots of GET /v1/watch."""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue

from agentbus_client.models.keys import Grant


class Health(BaseModel):
    status: str
    broker: bool
    ready: bool


class WhoAmI(BaseModel):
    """The caller's key (GET /v1/whoami): its role, tenant and grants."""

    key_id: str
    admin: bool
    namespace: str | None
    tenant: str | None
    grants: list[Grant]


class WorkerStats(BaseModel):
    """One worker of the fleet as the answering worker saw it (a down one: up false, zeros)."""

    url: str
    up: bool
    ready: bool = False
    broker: bool = False
    partitions: list[int] = Field([], description="The state partitions it owns")
    records_published: float = 0
    records_delivered: float = 0
    sse_clients: float = 0
    at: int = Field(0, description="When it answered (unix ms; 0: it did not)")


class Fleet(BaseModel):
    """GET /v1/workers: every worker, and the state partitions no worker owns."""

    answered_by: str
    state_partitions: int
    unowned: list[int]
    workers: list[WorkerStats]


class WatchResult(BaseModel):
    """One watched GET: its path, status and body (an error body is a result, not an error)."""

    path: str
    status: int
    body: JsonValue


class WatchSnapshot(BaseModel):
    """A `snapshot` event of GET /v1/watch: every watched GET, in the order given."""

    results: list[WatchResult]
