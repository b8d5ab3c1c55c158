"""Error answers become typed errors: by code, else by status; retriable as the bus says."""

from __future__ import annotations

import pytest

import agentbus_client as ab
from agentbus_client._errors import error_from_answer
from agentbus_client._shared import retry_backoff

# (code, status, class, retriable): the codes of docs/errors.md
CASES = [
    ("topic_not_found", 404, ab.TopicNotFound, False),
    ("tool_result_exists", 409, ab.ToolResultExists, False),
    ("stream_cancelled", 409, ab.StreamCancelled, False),
    ("schema_violation", 422, ab.SchemaViolation, False),
    ("quota_exceeded", 429, ab.QuotaExceeded, True),
    ("owner_moved", 503, ab.OwnerMoved, True),
    ("not_ready", 503, ab.NotReady, True),
    ("timeout", 504, ab.GatewayTimeout, True),
    ("invalid_key", 401, ab.InvalidKey, False),
    ("internal_error", 500, ab.InternalError, False),
]


@pytest.mark.parametrize(("code", "status", "cls", "retriable"), CASES)
def test_known_codes(code: str, status: int, cls: type[ab.APIError], retriable: bool) -> None:
    error = error_from_answer(status, {"error": {"code": code, "message": "m", "details": {"k": 1}}})
    assert type(error) is cls
    assert (error.code, error.status, error.retriable, error.details) == (code, status, retriable, {"k": 1})
    assert bool(retry_backoff(error)) is retriable


def test_unknown_code_falls_back_to_its_status_and_keeps_its_code() -> None:
    error = error_from_answer(409, {"error": {"code": "brand_new_conflict", "message": "m"}})
    assert type(error) is ab.Conflict
    assert error.code == "brand_new_conflict"
    assert ab.Conflict.code == "conflict"  # the class is untouched


def test_a_body_that_is_not_an_error_body() -> None:
    error = error_from_answer(502, "<html>bad gateway</html>")
    assert isinstance(error, ab.Unavailable)
    assert error.retriable and error.status == 502
    assert error.details == "<html>bad gateway</html>"


def test_retry_after_replaces_the_backoff() -> None:
    error = error_from_answer(429, {"error": {"code": "quota_exceeded", "message": "m"}}, retry_after=3.0)
    assert retry_backoff(error) == 3.0
    assert retry_backoff(ab.TransportError("gone")) is True
    assert retry_backoff(ValueError("not ours")) is False


def test_every_error_class_has_a_distinct_code() -> None:
    classes = [getattr(ab, n) for n in ab.__all__ if isinstance(getattr(ab, n), type)]
    api_errors = [c for c in classes if issubclass(c, ab.APIError) and c is not ab.APIError]
    codes = [c.code for c in api_errors]
    assert len(codes) == len(set(codes)) and len(codes) > 60
