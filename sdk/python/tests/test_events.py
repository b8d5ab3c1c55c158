"""Event streams resume after a drop: by Last-Event-ID for topics, by from_chunk for streams."""

from __future__ import annotations

import httpx

from agentbus_client import AsyncClient, Client, models

from .conftest import FAST_RETRY, Recorder

RECORD = (
    '{"topic":"demo/acme/orders","partition":0,"offset":%d,"timestamp":1,"key":null,"message_id":"m",'
    '"content_type":"application/json","headers":{},"payload":%d}'
)


def sse(body: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def topic_fleet() -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        if "last-event-id" not in request.headers:  # first connection: two records, then the drop
            return sse(
                f": subscribed\n\nid: 0:1\nevent: record\ndata: {RECORD % (0, 0)}\n\n"
                f"retry: 0\nid: 0:2\nevent: record\ndata: {RECORD % (1, 1)}\n\n"
            )
        assert request.headers["last-event-id"] == "0:2"
        return sse(f"id: 0:3\nevent: record\ndata: {RECORD % (2, 2)}\n\n")

    return Recorder(answer)


async def test_topic_subscription_resumes_with_the_last_event_id() -> None:
    recorder = topic_fleet()
    async with AsyncClient(
        "http://bus",
        namespace="demo",
        tenant="acme",
        retry=FAST_RETRY,
        transport=httpx.MockTransport(recorder),
    ) as bus:
        stream = bus.topics.subscribe("orders", start="earliest")
        payloads = []
        async for record in stream:
            payloads.append(record.payload)
            if len(payloads) == 3:
                break
    assert payloads == [0, 1, 2]
    assert stream.last_event_id == "0:3" and stream.reconnects == 1
    assert recorder.sent[0].url.params["from"] == "earliest"


def test_the_sync_iterator_resumes_the_same_way() -> None:
    recorder = topic_fleet()
    with Client(
        "http://bus",
        namespace="demo",
        tenant="acme",
        retry=FAST_RETRY,
        transport=httpx.MockTransport(recorder),
    ) as bus:
        payloads = []
        for record in bus.topics.subscribe("orders"):
            payloads.append(record.payload)
            if len(payloads) == 3:
                break
    assert payloads == [0, 1, 2]


async def test_a_stream_read_resumes_after_the_last_chunk_or_gap() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        start = request.url.params.get("from_chunk")
        if start is None:  # the first connection reads from the stream's start
            return sse(
                'retry: 0\nid: 0\nevent: chunk\ndata: {"chunk_seq": 0, "data": "a"}\n\n'
                'event: gap\ndata: {"from_chunk_seq": 1, "to_chunk_seq": 2}\n\n'
            )
        assert start == "3"
        return sse(
            'event: late\ndata: {"chunk_seq": 1, "data": "b"}\n\n'
            'id: 3\nevent: chunk\ndata: {"chunk_seq": 3, "data": "d"}\n\n'
            'event: end\ndata: {"stream_id": "s", "status": "complete", "last_chunk_seq": 3, "at": 9}\n\n'
        )

    recorder = Recorder(answer)
    async with AsyncClient(
        "http://bus",
        namespace="demo",
        tenant="acme",
        retry=FAST_RETRY,
        transport=httpx.MockTransport(recorder),
    ) as bus:
        events = [e async for e in bus.streams.read("c1", "s")]
    assert events == [
        models.StreamChunk(chunk_seq=0, data="a"),
        models.StreamGap(from_chunk_seq=1, to_chunk_seq=2),
        models.StreamChunk(chunk_seq=1, data="b", late=True),
        models.StreamChunk(chunk_seq=3, data="d"),
        models.StreamEnd(stream_id="s", status="complete", last_chunk_seq=3, at=9),
    ]
    assert [r.url.path for r in recorder.sent] == ["/v1/streams/demo/acme/c1/s"] * 2
    assert "from_chunk" not in recorder.sent[0].url.params


async def test_an_error_event_raises_its_typed_error() -> None:
    recorder = Recorder(
        lambda _: sse(
            'event: error\ndata: {"error": {"code": "subscription_not_found", "message": "gone"}}\n\n'
        )
    )
    async with AsyncClient(
        "http://bus",
        namespace="demo",
        tenant="acme",
        retry=FAST_RETRY,
        transport=httpx.MockTransport(recorder),
    ) as bus:
        try:
            async for _ in bus.subscriptions.events("billing"):
                raise AssertionError("no delivery was sent")
        except Exception as exc:
            assert type(exc).__name__ == "SubscriptionNotFound"
        else:
            raise AssertionError("the error event did not raise")


LAG = (
    '{"subscription":"demo/acme/billing","partitions":[],"total_lag":%d,"unacked":0,"in_flight":0,'
    '"oldest_unacked_age_ms":null}'
)
WATCHED = ["/v1/subscriptions/demo/acme/billing/lag", "/healthz"]


def snapshot(lag: int) -> str:
    return (
        f'event: snapshot\ndata: {{"results":[{{"path":"{WATCHED[0]}","status":200,"body":{LAG % lag}}},'
        f'{{"path":"/healthz","status":503,"body":{{"status":"unavailable","broker":true,"ready":false}}}}]}}\n\n'
    )


def watch_fleet() -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        if len(recorder.sent) == 1:  # one snapshot, then the connection drops
            return sse(f": watching 2 path(s)\n\nretry: 0\n{snapshot(6)}")
        return sse(f": watching 2 path(s)\n\n{snapshot(0)}")

    recorder = Recorder(answer)
    return recorder


async def test_watch_reconnects_after_a_drop_with_the_same_paths() -> None:
    recorder = watch_fleet()
    async with AsyncClient("http://bus", retry=FAST_RETRY, transport=httpx.MockTransport(recorder)) as bus:
        stream = bus.system.watch(WATCHED, interval_ms=1000)
        snapshots = []
        async for found in stream:
            snapshots.append(found)
            if len(snapshots) == 2:
                break
    assert [s.results[0].body["total_lag"] for s in snapshots] == [6, 0]  # type: ignore[index,call-overload]
    assert snapshots[0].results[1] == models.WatchResult(
        path="/healthz", status=503, body={"status": "unavailable", "broker": True, "ready": False}
    )
    assert stream.reconnects == 1
    for sent in recorder.sent:
        assert sent.url.path == "/v1/watch"
        assert sent.url.params.multi_items() == [
            ("path", WATCHED[0]),
            ("path", WATCHED[1]),
            ("interval_ms", "1000"),
        ]
        assert "last-event-id" not in sent.headers


def test_the_sync_watch_reconnects_the_same_way() -> None:
    recorder = watch_fleet()
    with Client("http://bus", retry=FAST_RETRY, transport=httpx.MockTransport(recorder)) as bus:
        snapshots = []
        for found in bus.system.watch(WATCHED):
            snapshots.append(found)
            if len(snapshots) == 2:
                break
    assert [s.results[0].status for s in snapshots] == [200, 200] and len(recorder.sent) == 2
    assert recorder.sent[0].url.params.multi_items() == [("path", WATCHED[0]), ("path", WATCHED[1])]
