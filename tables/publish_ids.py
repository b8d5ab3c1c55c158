"""Publish ids: the receipts of records published with a caller-given message id, so a
retry within the duplicate window gets the first receipt back (bus.publish.dedup).

Keyed by namespace/tenant/message_id; the key's owner decides, and writes the receipt in
the same transaction as the record itself.
"""

from __future__ import annotations

from bus.state.keyed import KeyedState

__all__ = ["publish_ids"]

publish_ids = KeyedState(
    "publish-ids", help="Receipts of publishes with a caller-given message id, by tenant and message id."
)
