"""The pure parts of bench/sse_memory.py, without a broker or fleet: reading VmRSS, the
verdict on memory, what in a worker's log and metrics counts against a disconnect, and how
a slow reader knows its stream has opened."""

from __future__ import annotations

import socket

import pytest
from publish import BenchError
from sse_memory import (
    PER_READER_MAX_MIB,
    Reader,
    answer_of,
    judge,
    log_errors,
    metric,
    opened,
    parse_args,
    reader_problems,
    rss_kib,
)

STATUS = """Name:\tpython3.11
VmPeak:\t 1245184 kB
VmHWM:\t  1203120 kB
VmRSS:\t   214932 kB
RssAnon:\t  190000 kB
Threads:\t6
"""


def test_rss_is_read_from_proc_status() -> None:
    assert rss_kib(STATUS) == 214_932  # VmRSS, not the high-water mark VmHWM
    with pytest.raises(BenchError, match="process is gone"):
        rss_kib("Name:\tzombie\nState:\tZ (zombie)\n")


def test_per_reader_memory_is_the_peak_over_the_baseline_shared_out() -> None:
    mib = 1024
    bounded = judge(200 * mib, 400 * mib, [220 * mib, 210 * mib], readers=100)
    assert bounded.per_reader_mib == 2.0 == PER_READER_MAX_MIB and bounded.bounded
    assert (bounded.baseline_mib, bounded.peak_mib, bounded.after_mib) == (200.0, 400.0, [220.0, 210.0])
    assert not judge(200 * mib, 401 * mib, [200 * mib], readers=100).bounded


def test_memory_is_returned_when_the_last_sample_is_near_the_baseline() -> None:
    mib = 1024
    # Allowed: 200 MiB + 20% + 16 MiB = 256 MiB; only the last sample after the disconnect counts.
    assert judge(200 * mib, 400 * mib, [300 * mib, 256 * mib], readers=100).returned
    assert not judge(200 * mib, 400 * mib, [256 * mib, 257 * mib], readers=100).returned
    assert not judge(200 * mib, 400 * mib, [], readers=100).returned


def test_a_disconnect_may_leave_no_traceback_or_unhandled_error_in_the_log() -> None:
    log = "\n".join(
        [
            "[2026-12-05 10:03:58,500] [1] [INFO] Timer livelock woke up too late",
            "[2026-12-05 10:03:58,535] [1] [ERROR] unhandled error on GET /v1/subscribe/bench/t1/x ",
            "Traceback (most recent call last):",
            '  File "bus/http/event_stream.py", line 107, in _write',
            "ConnectionError: Connection lost",
            "[2026-12-05 10:03:59,000] [1] [ERROR] Error handling request",
        ]
    )
    assert log_errors(log) == [
        "[2026-12-05 10:03:58,535] [1] [ERROR] unhandled error on GET /v1/subscribe/bench/t1/x ",
        "Traceback (most recent call last):",
        "[2026-12-05 10:03:59,000] [1] [ERROR] Error handling request",
    ]
    assert log_errors("[INFO] event stream ended: the client left\n") == []


METRICS = """# HELP agentbus_http_requests_total HTTP requests answered
# TYPE agentbus_http_requests_total counter
agentbus_http_requests_total{method="GET",route="/v1/subscribe/{namespace}/{tenant}/{name}",status="200"} 9.0
agentbus_http_requests_total{method="GET",route="/v1/subscribe/{namespace}/{tenant}/{name}",status="500"} 3.0
agentbus_http_requests_total{method="GET",route="/healthz",status="500"} 7.0
# HELP agentbus_sse_clients Open SSE subscriber connections on this worker
# TYPE agentbus_sse_clients gauge
agentbus_sse_clients 4.0
"""


def test_metrics_are_summed_over_the_samples_whose_labels_match() -> None:
    route = "/v1/subscribe/{namespace}/{tenant}/{name}"
    assert metric(METRICS, "agentbus_http_requests_total", {"route": route, "status": "500"}) == 3.0
    assert metric(METRICS, "agentbus_http_requests_total", {"status": "500"}) == 10.0
    assert metric(METRICS, "agentbus_sse_clients") == 4.0
    assert metric(METRICS, "agentbus_http_requests_total", {"route": "/nothing"}) == 0.0


def test_a_reader_has_opened_once_its_head_and_first_comment_are_in() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not opened(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    assert not opened(head + b"2a\r\n: subscribed at 0:0")
    assert opened(head + b"2a\r\n: subscribed at 0:0,1:0,2:0\n\n")
    assert answer_of(head + b"2a\r\n: subscribed")[0] == 200
    refused = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 60\r\n\r\n"
    assert opened(refused)  # an error needs no stream
    assert answer_of(refused + b'{"error": {"code": "too_many_streams"}}') == (
        429,
        b'{"error": {"code": "too_many_streams"}}',
    )
    assert answer_of(b"garbage\r\n\r\n")[0] is None


def test_readers_that_failed_are_problems() -> None:
    sock = socket.socket()
    sock.close()
    ok = Reader(sock, status=200, received=1000)
    refused = Reader(sock, status=429, error="too_many_streams")
    closed = Reader(sock, status=200, error="the worker closed the stream after 9 bytes")
    assert reader_problems([ok, ok]) == []
    assert reader_problems([ok, refused, closed]) == [
        "2 of 3 readers failed, the first ones:",
        "reader: HTTP 429, too_many_streams",
        "reader: HTTP 200, the worker closed the stream after 9 bytes",
    ]


def test_times_after_the_disconnect_are_read_in_order() -> None:
    assert parse_args(["--after", "30,10"]).after == [10.0, 30.0]
    for bad in (["--after", "soon"], ["--after", ""], ["--readers", "0"], ["--hold", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
