"""One typed settings object, read from the environment once at start-up.

Every knob the bus has lives here, grouped into small value objects, so a reader
finds the defaults in one place and a test can build its own Settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Limits(BaseModel):
    """Size and count limits enforced at the HTTP edge, before anything is produced."""

    model_config = ConfigDict(frozen=True)

    max_payload_bytes: int = Field(1_048_576, gt=0)  # one encoded payload
    max_batch_records: int = Field(500, gt=0)  # records in one /v1/publish/batch
    max_request_bytes: int = Field(16_777_216, gt=0)  # one HTTP request body
    max_headers: int = Field(64, gt=0)  # caller headers on one record
    max_sse_clients: int = Field(256, gt=0)  # concurrent SSE subscribers per worker
    max_in_flight: int = Field(5_000, gt=0)  # records a subscription holds between fetch and commit
    max_in_flight_bytes: int = Field(64 * 1_048_576, gt=0)  # ... and their payload bytes


class Timing(BaseModel):
    """Timeouts and intervals, in seconds."""

    model_config = ConfigDict(frozen=True)

    command_timeout: float = Field(15.0, gt=0)  # wait for a state change to apply
    sse_keepalive: float = Field(15.0, gt=0)  # comment line sent to idle SSE clients
    kafka_request_timeout: float = Field(30.0, gt=0)
    stream_coalesce: float = Field(0.0, ge=0, le=1)  # extra wait to gather a stream's chunks into one record
    commit_interval: float = Field(0.2, gt=0)  # how often a subscription commits its acked offsets
    session_timeout: float = Field(10.0, ge=6)  # a worker silent this long loses its partitions
    processor_fetch_wait: float = Field(0.0, ge=0, le=1)  # the broker may hold a processor's fetch this long


class Settings(BaseModel):
    """Everything a worker needs to know about its environment."""

    model_config = ConfigDict(frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    prefix: str = Field("agentbus", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # Faust fills in {conf.web_port} when the worker starts, so workers on one machine
    # started with different --web-port values get different RocksDB directories.
    data_dir: str = ".data/worker-{conf.web_port}"
    replication_factor: int = Field(1, ge=1)  # for the bus's internal topics
    default_partitions: int = Field(3, ge=1)  # for user topics created without a count
    producer_linger_ms: int = Field(2, ge=0)
    # Partitions of every keyed state topic (subscriptions, agents, conversations):
    # the unit of state a worker takes over.
    state_partitions: int = Field(12, ge=1, le=256)
    # The fleet's first admin key; every other key is created through /v1/keys.
    admin_key: SecretStr | None = None
    limits: Limits = Limits()
    timing: Timing = Timing()

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def app_id(self) -> str:
        """The Faust app id: also the prefix of every internal topic and consumer group."""
        return self.prefix

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw: dict[str, object] = {}
        for field, var in _ENV_FIELDS.items():
            if var in env:
                raw[field] = env[var]
        if "AGENTBUS_ADMIN_KEY_FILE" in env and "AGENTBUS_ADMIN_KEY" not in env:
            raw["admin_key"] = Path(env["AGENTBUS_ADMIN_KEY_FILE"]).read_text().strip()
        limits = {f: env[v] for f, v in _ENV_LIMITS.items() if v in env}
        timing = {f: env[v] for f, v in _ENV_TIMING.items() if v in env}
        return cls.model_validate({**raw, "limits": limits, "timing": timing})


_ENV_FIELDS = {
    "bootstrap": "KAFKA_BOOTSTRAP",
    "prefix": "AGENTBUS_PREFIX",
    "data_dir": "AGENTBUS_DATA_DIR",
    "replication_factor": "AGENTBUS_REPLICATION_FACTOR",
    "default_partitions": "AGENTBUS_DEFAULT_PARTITIONS",
    "producer_linger_ms": "AGENTBUS_PRODUCER_LINGER_MS",
    "state_partitions": "AGENTBUS_STATE_PARTITIONS",
    "admin_key": "AGENTBUS_ADMIN_KEY",
}
_ENV_LIMITS = {name: f"AGENTBUS_{name.upper()}" for name in Limits.model_fields}
_ENV_TIMING = {name: f"AGENTBUS_{name.upper()}" for name in Timing.model_fields}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
