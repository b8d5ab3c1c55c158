"""Receipts are rendered without their model: they must still be the model's JSON."""

from __future__ import annotations

import pytest
from pydantic_core import to_json

from bus.publish.models import BatchResult, PublishResult
from bus.publish.service import receipt

PUBLISHED = {
    "topic": "ns/t/orders",
    "partition": 2,
    "offset": 41,
    "message_id": "m-1",
    "timestamp": 1795755096549,
}


def test_a_published_receipt_is_a_publish_result() -> None:
    made = receipt("ns/t/orders", 2, 41, "m-1", 1795755096549)
    assert to_json(made).decode() == PublishResult(**PUBLISHED).model_dump_json()
    assert PublishResult.model_validate(made).model_dump() == made


def test_a_parked_receipt_is_a_publish_result() -> None:
    made = receipt("ns/t/orders", None, None, "m-2", 1795755096549, ("appr-1", "sha256:ab"))
    model = PublishResult(
        topic="ns/t/orders",
        partition=None,
        offset=None,
        message_id="m-2",
        timestamp=1795755096549,
        status="awaiting_approval",
        approval_id="appr-1",
        approval_digest="sha256:ab",
    )
    assert to_json(made).decode() == model.model_dump_json()


@pytest.mark.parametrize("count", [1, 3])
def test_a_batch_of_receipts_is_a_batch_result(count: int) -> None:
    made = [receipt("ns/t/orders", 0, i, f"m-{i}", 1) for i in range(count)]
    expected = BatchResult(
        results=[
            PublishResult(topic="ns/t/orders", partition=0, offset=i, message_id=f"m-{i}", timestamp=1)
            for i in range(count)
        ]
    )
    assert to_json({"results": made}).decode() == expected.model_dump_json()


def test_receipts_name_every_field_of_the_model() -> None:
    assert list(receipt("a/b/c", 0, 0, "m", 0)) == list(PublishResult.model_fields)
