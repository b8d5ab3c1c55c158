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

    def ready(self) -> bool:
        return self.gateway.started and self.recovered()
