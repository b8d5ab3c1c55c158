"""The SSE parser against the WHATWG rules, with the bytes split at every possible place."""

from __future__ import annotations

import pytest

from agentbus_client import ServerSentEvent, SSEDecoder

STREAM = (
    b"\xef\xbb\xbf: subscribed at 0:0\n"
    b"\n"
    b"id: 0:4\r\n"
    b"event: record\r\n"
    b'data: {"a":\r\n'
    b"data:  1}\r\n"
    b"\r\n"
    b": keep-alive\n"
    b"\n"
    b"retry: 2500\r"
    b"data: caf\xc3\xa9\r"
    b"\r"
    b"id\n"
    b"data\n"
    b"\n"
    b"id: bad\x00id\n"
    b"event: gap\n"
    b"unknown: field\n"
    b"data: x\n"
    b"\n"
    b"retry: soon\n"
    b"event: lost\n"
    b"data: cut off by the end of the stream\n"
)

EXPECTED = [
    ServerSentEvent(event="record", data='{"a":\n 1}', id="0:4"),
    ServerSentEvent(event="message", data="café", id="0:4", retry=2500),
    ServerSentEvent(event="message", data="", id="", retry=2500),
    ServerSentEvent(event="gap", data="x", id="", retry=2500),
]


def decode(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_in_two_anywhere(cut: int) -> None:
    assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_no_event_without_data_and_the_id_stays() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nevent: ping\n\n: keep-alive\n\n") == []
    assert decoder.last_event_id == "7"
    assert decoder.feed(b"data: later\n\n") == [ServerSentEvent(data="later", id="7")]


def test_a_field_without_colon_and_a_space_kept_after_the_first() -> None:
    assert decode([b"data\ndata:  two spaces\n\n"]) == [ServerSentEvent(data="\n two spaces")]
