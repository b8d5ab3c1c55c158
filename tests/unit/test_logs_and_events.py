"""Structured logs (bus.logs) and the SSE wire format (bus.http.event_stream)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from agentbus_client.models.audit import AuditRecord

from bus import logs
from bus.audit.service import DenialWindow
from bus.http.event_stream import _forget_frames, event, pieces
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


def test_events_go_out_in_writes_of_bounded_size_in_order() -> None:
    events = [b"a" * 40, b"b" * 40, b"c" * 30, b"d" * 150, b"e" * 10]
    assert list(pieces(events, limit=100)) == [b"a" * 40 + b"b" * 40, b"c" * 30, b"d" * 150, b"e" * 10]
    assert list(pieces([], limit=100)) == []
    assert list(pieces([b"x" * 50, b"y" * 50], limit=100)) == [b"x" * 50 + b"y" * 50]


def test_events_are_made_only_as_far_as_the_next_write_needs() -> None:
    made: list[int] = []

    def lazily() -> Iterator[bytes]:
        for n in range(10):
            made.append(n)
            yield b"z" * 60

    writes = pieces(lazily(), limit=100)
    assert next(writes) == b"z" * 60 and made == [0, 1]  # the second did not fit: it waits
    assert next(writes) == b"z" * 60 and made == [0, 1, 2]


class Batch:
    """Stands for what a stream's frames hold: its batch of records, its Kafka reader."""


async def test_a_client_leaving_mid_write_leaves_no_cycle_holding_the_stream() -> None:
    # aiohttp's drain: the writer's frame awaits a future that a reset fails; the error's
    # traceback holds that frame, the frame holds the future, the future holds the error.
    loop = asyncio.get_running_loop()

    async def drain(waiter: asyncio.Future[None]) -> None:
        await waiter

    async def write(batch: Batch) -> None:
        waiter = loop.create_future()
        loop.call_soon(waiter.set_exception, ConnectionError("Connection lost"))
        await drain(waiter)

    batch = Batch()
    alive = weakref.ref(batch)
    gc.disable()  # only reference counting may free it
    try:
        try:
            await write(batch)
        except ConnectionError as exc:
            ended: BaseException | None = exc
        del batch
        assert alive() is not None  # the cycle keeps it until a full collection
        _forget_frames(ended)
        ended = None
        assert alive() is None
    finally:
        gc.enable()


def test_faust_producer_flow_control_lines_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """The buffer's fill-and-drain lines (thousands an hour under load) are not logged;
    anything else faust's producer says is."""
    from faust.transport import producer as faust_producer

    logs.configure("text", "http://127.0.0.1:1")
    with caplog.at_level(logging.INFO, logger="faust.transport.producer"):
        faust_producer.logger.warning(f"producer buffer full size {101}")
        faust_producer.logger.info(f"producer flush took {0.0066}")
        faust_producer.logger.warning("Producer stopped: broker gone")
    said = [r.getMessage() for r in caplog.records if r.name == "faust.transport.producer"]
    assert said == ["Producer stopped: broker gone"]
