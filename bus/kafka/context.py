"""What a request handler needs from its worker, gathered in one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bus.kafka.gateway import KafkaGateway
from bus.settings import Settings

__all__ = ["BusContext"]


@dataclass
class BusContext:
    settings: Settings
    gateway: KafkaGateway
    recovered: Callable[[], bool]  # true once this worker's tables are recovered
    sse_clients: int = field(default=0)
    # True once every global table caught up with its command log as it stood when the
    # worker started: before that a key revoked while the worker was down may look valid.
    caught_up: bool = field(default=False)
    draining: bool = field(default=False)  # stopping: new requests go elsewhere (503)
    in_flight: int = field(default=0)  # requests being answered now

    def ready(self) -> bool:
        """Whether this worker can answer correctly: started, recovered, caught up, not stopping."""
        return self.started_up() and not self.draining

    def started_up(self) -> bool:
        """Started, recovered and caught up (stopping or not: a request taken in before the
        stop began is still answered)."""
        return self.gateway.started and self.recovered() and self.caught_up
