"""The bus's own wire models, published as JSON Schemas under the reserved 'bus' namespace.

SDKs in any language can fetch them (GET /v1/schemas/bus/system/{subject}/versions/latest)
to validate or generate code. Every worker publishes them at start-up; an unchanged model
is a no-op (registration is idempotent), a changed one becomes a new version.
"""

from __future__ import annotations

import logging

from agentbus_client.models.publish import Batch, DeliveredRecord, Envelope, PublishResult
from agentbus_client.models.schemas import CompatibilityMode, SchemaSubmission
from pydantic import BaseModel

from bus.errors import BusError
from bus.kafka.context import BusContext
from bus.schemas.service import configure, register
from bus.schemas.store import get_meta
from bus.wire import ErrorBody

__all__ = ["publish_bus_schemas"]

log = logging.getLogger(__name__)

NAMESPACE, TENANT = "bus", "system"
BUS_MODELS: dict[str, type[BaseModel]] = {
    "bus.envelope": Envelope,
    "bus.batch": Batch,
    "bus.publish-result": PublishResult,
    "bus.delivered-record": DeliveredRecord,
    "bus.error": ErrorBody,
}


def schema_of(model: type[BaseModel]) -> dict[str, object]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}


async def publish_bus_schemas(ctx: BusContext) -> None:
    for subject, model in BUS_MODELS.items():
        try:
            meta = get_meta(NAMESPACE, TENANT, subject)
            if meta is None or meta.compatibility != CompatibilityMode.NONE:
                # The wire models evolve with the code; versions record that history.
                await configure(ctx, NAMESPACE, TENANT, subject, CompatibilityMode.NONE)
            submission = SchemaSubmission.model_validate({"schema": schema_of(model)})
            await register(ctx, NAMESPACE, TENANT, subject, submission)
        except BusError as exc:
            log.warning("could not publish the schema of %s yet: %s", subject, exc.message)
