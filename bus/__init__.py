"""Agentbus: a message bus for fleets of AI agents, built on Apache Kafka.

`faust -A bus worker` finds the Faust app as `bus.app`. It is built lazily, so the
wire models (bus.models) import without Faust or a broker.
"""

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from bus.assembly import app

        return app
    raise AttributeError(name)
