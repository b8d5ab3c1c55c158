"""The client's settings, as small value objects (httpx's Timeout and Limits are the model)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = ["RetryPolicy", "Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `read` bounds an ordinary answer (an inbox pull holds up to 30 s, so it is
    longer); `stream_idle` bounds the silence on an event stream, which the bus breaks with
    a keep-alive every 15 s, so a longer silence means the connection is gone."""

    connect: float = 5.0
    read: float = 40.0
    write: float = 10.0
    pool: float = 10.0
    stream_idle: float = 45.0

    def for_requests(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def for_streams(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.stream_idle, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    """How retriable failures (lost connections, 429, 502-504) are retried: exponential
    backoff from `wait_initial` doubling up to `wait_max`, plus up to `wait_jitter` of random
    jitter, for at most `attempts` tries and `timeout` seconds in all. A Retry-After from the
    bus replaces the backoff of that wait. attempts=1 turns retrying off."""

    attempts: int = 10
    timeout: float = 60.0
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 1.0
