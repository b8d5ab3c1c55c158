"""Assembles a worker: the app, its tables and agents, the HTTP routes and the Kafka gateway."""

from __future__ import annotations

import mode

from bus.bus_schemas import publish_bus_schemas
from bus.context import BusContext
from bus.faust_app import app
from bus.http import keys, publish, schemas, subscribe, system, topics
from bus.http.routes import install
from bus.kafka import KafkaGateway
from bus.settings import get_settings
from workers import keys as key_commands
from workers import schemas as schema_commands
from workers import topics as topic_commands

# Importing a module registers its routes or agents; naming them here keeps the
# imports from looking unused (a linter once removed them and every route vanished).
HTTP_MODULES = (topics, publish, subscribe, schemas, keys, system)
WORKER_MODULES = (topic_commands, schema_commands, key_commands)

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
        if ctx.settings.admin_key is None:
            # Without it nobody could create the first key: stop rather than serve nothing.
            raise SystemExit(
                "Set AGENTBUS_ADMIN_KEY or AGENTBUS_ADMIN_KEY_FILE (the fleet's first admin key)"
            )
        await gateway.start()
        self.add_future(publish_bus_schemas(ctx))

    async def on_stop(self) -> None:
        await gateway.stop()


__all__ = ["app", "ctx"]
