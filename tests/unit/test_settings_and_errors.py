"""Settings from the environment, and the error hierarchy's stable codes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bus.errors import BusError, TopicNotFound, all_error_classes
from bus.settings import Settings


def test_settings_read_environment() -> None:
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP": "h1:1, h2:2",
            "AGENTBUS_PREFIX": "prod",
            "AGENTBUS_MAX_PAYLOAD_BYTES": "10",
            "AGENTBUS_SSE_KEEPALIVE": "2.5",
        }
    )
    assert s.bootstrap_servers == ["h1:1", "h2:2"]
    assert s.app_id == "prod" and s.limits.max_payload_bytes == 10 and s.timing.sse_keepalive == 2.5
    assert Settings.from_env({}).limits.max_batch_records == 500


@pytest.mark.parametrize(
    ("var", "value"), [("AGENTBUS_PREFIX", "Bad_Prefix"), ("AGENTBUS_MAX_BATCH_RECORDS", "0")]
)
def test_bad_settings_fail_at_start(var: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.from_env({var: value})


def test_error_codes_are_unique_and_statuses_are_errors() -> None:
    classes = all_error_classes()
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(400 <= c.status <= 599 for c in classes)
    assert all(c.retriable == (c.status in (429, 503, 504)) for c in classes if c is not BusError)


def test_error_body_shape() -> None:
    body = TopicNotFound("gone", {"topic": "a/b/c"}).to_body()
    assert body == {"error": {"code": "topic_not_found", "message": "gone", "details": {"topic": "a/b/c"}}}
