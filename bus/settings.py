"""One typed settings object, read from the environment once at start-up (pydantic-settings).

Every knob the bus has lives here, grouped into small value objects, so a reader finds
the defaults in one place and a test can build its own Settings. Every variable is
AGENTBUS_<FIELD> (KAFKA_BOOTSTRAP for the brokers); a secret may instead come from the
file named by AGENTBUS_<FIELD>_FILE. docs/configuration.md lists them all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Limits", "Settings", "Timing", "get_settings"]

_ENV = SettingsConfigDict(env_prefix="AGENTBUS_", frozen=True, extra="ignore", populate_by_name=True)


class Limits(BaseSettings):
    """Size and count limits enforced at the HTTP edge, before anything is produced."""

    model_config = _ENV

    max_payload_bytes: int = Field(1_048_576, gt=0)  # one encoded payload
    max_batch_records: int = Field(500, gt=0)  # records in one /v1/publish/batch
    max_request_bytes: int = Field(16_777_216, gt=0)  # one HTTP request body
    max_headers: int = Field(64, gt=0)  # caller headers on one record
    max_sse_clients: int = Field(256, gt=0)  # concurrent SSE subscribers per worker
    max_sse_clients_per_key: int = Field(64, gt=0)  # of those, held by one API key
    max_in_flight: int = Field(5_000, gt=0)  # records a subscription holds between fetch and commit
    max_in_flight_bytes: int = Field(64 * 1_048_576, gt=0)  # ... and their payload bytes


class Timing(BaseSettings):
    """Timeouts and intervals, in seconds."""

    model_config = _ENV

    command_timeout: float = Field(15.0, gt=0)  # wait for a state change to apply
    sse_keepalive: float = Field(15.0, gt=0)  # comment line sent to idle SSE clients
    # A connection that has not sent a complete request head this long after opening (or
    # after the first byte of its next request) is closed (bus/http/connections.py).
    header_timeout: float = Field(10.0, gt=0)
    kafka_request_timeout: float = Field(30.0, gt=0)
    stream_coalesce: float = Field(0.0, ge=0, le=1)  # extra wait to gather a stream's chunks into one record
    commit_interval: float = Field(0.2, gt=0)  # how often a subscription commits its acked offsets
    session_timeout: float = Field(10.0, ge=6)  # a worker silent this long loses its partitions
    processor_fetch_wait: float = Field(0.0, ge=0, le=1)  # the broker may hold a processor's fetch this long
    # A publish repeating a message id seen this recently (same tenant) gets the first
    # receipt back and writes nothing; 0 turns deduplication off.
    publish_duplicate_window: float = Field(120.0, ge=0, le=86_400)


class Settings(BaseSettings):
    """Everything a worker needs to know about its environment."""

    model_config = _ENV

    bootstrap: str = Field(
        "127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "AGENTBUS_BOOTSTRAP")
    )
    prefix: str = Field("agentbus", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # Faust fills in {conf.web_port} when the worker starts, so workers on one machine
    # started with different --web-port values get different RocksDB directories.
    data_dir: str = ".data/worker-{conf.web_port}"
    replication_factor: int = Field(1, ge=1)  # for the bus's internal topics
    default_partitions: int = Field(3, ge=1)  # for user topics created without a count
    producer_linger_ms: int = Field(2, ge=0)
    # The tables' changelog producer (Faust's, which also sends commands): a processor
    # writes several changelog records per record it applies, and nobody awaits them one
    # by one; with no wait each went out as a request of its own (a third of a busy
    # processor's time was socket writes).
    table_linger_ms: int = Field(5, ge=0, le=1000)
    # Partitions of every keyed state topic (subscriptions, agents, conversations):
    # the unit of state a worker takes over.
    state_partitions: int = Field(12, ge=1, le=256)
    # RocksDB, per table partition: a memtable is written to disk once it holds this much
    # (RocksDB's own default, 64 MiB, let every partition's memtables grow to 192 MiB before
    # a flush: a worker's RSS rose with every write for hours), and the cache of blocks read.
    table_write_buffer_bytes: int = Field(4 * 1024 * 1024, ge=65_536)
    table_block_cache_bytes: int = Field(8 * 1024 * 1024, ge=0)
    # The fleet's first admin key; every other key is created through /v1/keys.
    admin_key: SecretStr | None = None
    admin_key_file: Path | None = None  # read into admin_key when that is not set
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    access_log: bool = False  # one line per answered request (method, path, status, ms)
    # Finished trace spans as JSON lines appended here (tests, local debugging); OTLP export
    # is configured by OpenTelemetry's own OTEL_EXPORTER_OTLP_* variables (bus/tracing.py).
    trace_file: Path | None = None
    limits: Limits = Field(default_factory=Limits)
    timing: Timing = Field(default_factory=Timing)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """AGENTBUS_<SECRET>_FILE: the secret is the file's content (trailing newline dropped)."""
        if isinstance(data, dict) and not data.get("admin_key") and data.get("admin_key_file"):
            data = {**data, "admin_key": Path(data["admin_key_file"]).read_text().strip()}
        return data

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def app_id(self) -> str:
        """The Faust app id: also the prefix of every internal topic and consumer group."""
        return self.prefix


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
