"""Structured logs (bus.logs) and the SSE wire format (bus.http.event_stream)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from agentbus_client.models.audit import AuditRecord

from bus.audit.service import DenialWindow
from bus.http.event_stream import event
from bus.logs import JsonFormatter, RequestFields, request_id_from, request_scope, set_tenant


def record(message: str, **extra: object) -> logging.LogRecord:
    found = logging.makeLogRecord({"name": "bus.test", "levelname": "INFO", "msg": message, **extra})
    RequestFields("http://w1:6066").filter(found)
    return found


def test_json_lines_carry_the_request_and_the_worker() -> None:
    with request_scope("req-1", "acme"):
        line = json.loads(JsonFormatter().format(record("hello %s", args=("you",))))
    assert line["message"] == "hello you" and line["level"] == "info" and line["logger"] == "bus.test"
    assert (line["request_id"], line["tenant"], line["worker"]) == ("req-1", "acme", "http://w1:6066")


def test_a_tenant_named_after_authentication_is_on_later_lines_only_within_the_request() -> None:
    with request_scope("req-2", None):
        set_tenant("globex")
        inside = json.loads(JsonFormatter().format(record("in")))
    outside = json.loads(JsonFormatter().format(record("out")))
    assert inside["tenant"] == "globex"
    assert "tenant" not in outside and "request_id" not in outside


def test_extras_are_fields_and_exceptions_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        found = record("failed", status=503, exc_info=sys.exc_info())
    line = json.loads(JsonFormatter().format(found))
    assert line["status"] == 503 and "ValueError: boom" in line["exception"]


def test_request_ids_from_callers_are_kept_only_when_sane() -> None:
    assert request_id_from("trace-1:a.b_c") == "trace-1:a.b_c"
    for bad in (None, "", "x" * 65, "new\nline", "sp ace"):
        made = request_id_from(bad)
        assert made != bad and len(made) == 16


def test_sse_events_put_each_line_of_data_in_its_own_field() -> None:
    assert event("record", '{"a": 1}', "0:5") == b'id: 0:5\nevent: record\ndata: {"a": 1}\n\n'
    assert event("note", "one\ntwo") == b"event: note\ndata: one\ndata: two\n\n"


def denial(source: str, code: str = "invalid_key") -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        action="topics.get_topic",
        outcome="denied",
        status=401,
        code=code,
        method="GET",
        path="/v1/topics/a/b/c",
        source=source,
    )


def test_denials_are_recorded_first_then_counted_per_window() -> None:
    window = DenialWindow()
    assert window.admit(denial("10.0.0.1")) and window.admit(denial("10.0.0.2"))
    assert window.admit(denial("10.0.0.1", "unauthenticated"))  # another kind
    assert not any(window.admit(denial("10.0.0.1")) for _ in range(5))
    [summary] = window.close()
    assert (summary.source, summary.count) == ("10.0.0.1", 5)
    assert window.admit(denial("10.0.0.1"))  # a new window records the first again
