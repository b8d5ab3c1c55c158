"""Settings from the environment, and the error hierarchy's stable codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from bus.errors import BusError, OwnerMoved, TopicNotFound, all_error_classes, from_answer
from bus.settings import Settings


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings read from exactly env (every variable of the bus's own unset first)."""
    for name in list(os.environ):
        if name.startswith("AGENTBUS_") or name == "KAFKA_BOOTSTRAP":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(
        monkeypatch,
        {
            "KAFKA_BOOTSTRAP": "h1:1, h2:2",
            "AGENTBUS_PREFIX": "prod",
            "AGENTBUS_MAX_PAYLOAD_BYTES": "10",
            "AGENTBUS_SSE_KEEPALIVE": "2.5",
        },
    )
    assert s.bootstrap_servers == ["h1:1", "h2:2"]
    assert s.app_id == "prod" and s.limits.max_payload_bytes == 10 and s.timing.sse_keepalive == 2.5
    assert settings_from(monkeypatch, {}).limits.max_batch_records == 500


def test_secrets_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "admin-key"
    secret.write_text("abk_admin.from-file\n")
    s = settings_from(monkeypatch, {"AGENTBUS_ADMIN_KEY_FILE": str(secret)})
    assert s.admin_key is not None and s.admin_key.get_secret_value() == "abk_admin.from-file"
    given = settings_from(
        monkeypatch, {"AGENTBUS_ADMIN_KEY_FILE": str(secret), "AGENTBUS_ADMIN_KEY": "abk_x.y"}
    )
    assert given.admin_key is not None and given.admin_key.get_secret_value() == "abk_x.y"


@pytest.mark.parametrize(
    ("var", "value"),
    [("AGENTBUS_PREFIX", "Bad_Prefix"), ("AGENTBUS_MAX_BATCH_RECORDS", "0"), ("AGENTBUS_LOG_FORMAT", "xml")],
)
def test_bad_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    with pytest.raises(ValidationError):
        settings_from(monkeypatch, {var: value})


def test_error_codes_are_unique_and_statuses_are_errors() -> None:
    classes = all_error_classes()
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(400 <= c.status <= 599 for c in classes)
    assert all(c.retriable == (c.status in (429, 503, 504)) for c in classes if c is not BusError)


def test_error_body_shape() -> None:
    body = TopicNotFound("gone", {"topic": "a/b/c"}).to_body()
    assert body == {"error": {"code": "topic_not_found", "message": "gone", "details": {"topic": "a/b/c"}}}


def test_an_error_another_worker_answered_comes_back_as_the_same_error() -> None:
    again = from_answer(404, TopicNotFound("No topic t", {"topic": "t"}).to_body())
    assert (
        isinstance(again, TopicNotFound) and again.details == {"topic": "t"} and again.message == "No topic t"
    )
    assert isinstance(from_answer(502, "<html>bad gateway</html>"), OwnerMoved)
    assert isinstance(
        from_answer(500, {"error": {"code": "topic_not_found"}}), OwnerMoved
    )  # status disagrees
