"""Applies the publish-ids log to its view: receipts in, expired receipts out."""

from __future__ import annotations

from typing import Any

import faust

from bus.kafka.faust_app import app
from bus.publish import dedup
from bus.publish.models import Expired, PublishedOnce
from bus.settings import get_settings
from bus.state.keyed import KeyedState, on_revoked, run_processor
from tables.publish_ids import publish_ids

__all__: list[str] = []

app.on_partitions_revoked.connect(on_revoked([publish_ids]))


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def forget_receipts(sender: Any, revoked: set[Any], **_: Any) -> None:
    dedup.forget({tp.partition for tp in revoked})


@app.agent(publish_ids.topic)  # type: ignore[untyped-decorator]
async def apply_publish_ids(stream: faust.StreamT[bytes]) -> None:
    await run_processor(publish_ids, stream, apply)


def apply(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    """A receipt is kept unless one within the window is there already (a retry never
    replaces the first); an expiry drops the receipt when it is older than it says."""
    found = state.get(key, PublishedOnce)
    if headers.get("bus.kind") == "expired":
        if found is not None and found.at < Expired.model_validate_json(value).before:
            state.remove(key)
        return
    once = PublishedOnce.model_validate_json(value)
    if found is None or once.at - found.at >= get_settings().timing.publish_duplicate_window * 1000:
        state.put(key, once)
