"""Assembles a worker: the app, its tables and agents, the HTTP routes and the Kafka gateway."""

from __future__ import annotations

import mode

import bus.http.publish
import bus.http.subscribe
import bus.http.system
import bus.http.topics
import tables.topics
import workers.topics  # noqa: F401  (importing registers the agent with the app)
from bus.faust_app import app
from bus.context import BusContext
from bus.http.routes import install
from bus.kafka import KafkaGateway
from bus.settings import get_settings

gateway = KafkaGateway(get_settings())
ctx = BusContext(
    settings=get_settings(),
    gateway=gateway,
    recovered=lambda: bool(app.tables.recovery.completed.is_set()),
)
install(app, ctx)


@app.service
class GatewayService(mode.Service):  # type: ignore[misc]
    """Starts the shared producer and admin client once the worker has recovered."""

    async def on_start(self) -> None:
        await gateway.start()

    async def on_stop(self) -> None:
        await gateway.stop()


__all__ = ["app", "ctx"]
