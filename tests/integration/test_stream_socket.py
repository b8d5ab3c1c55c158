"""Writing a token stream over a WebSocket: frames answered in order once in Kafka, the
end as the last frame, a consumer's cancel pushed to the producer, refusals before the
upgrade as JSON errors, and the same through the worker that does not own the stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import unique
from tests.integration.test_streams import new_conversation, read_all
from tests.subs import call, ok

pytestmark = pytest.mark.integration


async def owner_and_other(http: aiohttp.ClientSession, fleet: Fleet, conv: str) -> tuple[str, str]:
    async with http.get(f"{fleet.urls[0]}{conv}") as r:
        assert r.status == 200
        owner = r.headers["X-Agentbus-Worker"].rstrip("/")
    return owner, next(u for u in fleet.urls if u != owner)


def socket_url(url: str, conv_id: str, stream_id: str) -> str:
    return f"{url.replace('http', 'ws', 1)}/v1/streams/it/acme/{conv_id}/{stream_id}/write"


async def answers(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [json.loads(await ws.receive_str(timeout=20)) for _ in range(count)]


@pytest.mark.parametrize("through", ["owner", "other"])
async def test_frames_are_answered_in_order_and_the_stream_reads_back(
    fleet: Fleet, http: aiohttp.ClientSession, through: str
) -> None:
    conv_id, conv = await new_conversation(http, fleet.urls[0])
    owner, other = await owner_and_other(http, fleet, conv)
    sid = unique("s")
    reader = asyncio.create_task(read_all(http, f"{fleet.urls[1]}/v1/streams/it/acme/{conv_id}/{sid}"))
    frames: list[dict[str, Any]] = [{"id": f"f{n}", "chunk_seq": n, "data": f"t{n}"} for n in range(40)]
    frames[10:13] = [{"chunks": [{"chunk_seq": n, "data": f"t{n}"} for n in (12, 10, 11)]}]  # out of order
    async with http.ws_connect(socket_url(owner if through == "owner" else other, conv_id, sid)) as ws:
        for frame in frames:  # all at once: the answers come back in frame order
            await ws.send_str(json.dumps(frame))
        got = await answers(ws, len(frames))
        assert [a["frame"] for a in got] == list(range(1, len(frames) + 1))
        assert [a["accepted"] for a in got] == [3 if "chunks" in f else 1 for f in frames]
        assert [a["id"] for a in got] == [f.get("id") for f in frames]
        await ws.send_str(
            json.dumps({"end": {"status": "complete", "last_chunk_seq": 39, "usage": {"cost": 1}}})
        )
        [ended] = await answers(ws, 1)
        assert ended["frame"] == len(frames) + 1 and ended["ended"]["status"] == "complete"
        assert (await ws.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    events = await reader
    assert [e.json["data"] for e in events if e.event == "chunk"] == [f"t{n}" for n in range(40)]
    assert events[-1].event == "end" and events[-1].json["usage"]["cost"] == 1
    status, body = await call(
        http, "POST", f"{owner}{conv}/stream-chunks", {"stream_id": sid, "chunk_seq": 40}
    )
    assert (status, body["error"]["code"]) == (409, "stream_ended")


async def test_a_bad_frame_is_refused_and_the_socket_goes_on(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    conv_id, _ = await new_conversation(http, fleet.urls[0])
    sid = unique("s")
    async with http.ws_connect(socket_url(fleet.urls[1], conv_id, sid)) as ws:
        await ws.send_str("{not json")
        await ws.send_str(json.dumps({"chunk_seq": -1, "data": 1}))
        await ws.send_str(json.dumps({"chunk_seq": 0, "data": "a", "end": {}}))
        await ws.send_bytes(b"\x00")
        await ws.send_str(json.dumps({"chunk_seq": 0, "data": "a"}))
        got = await answers(ws, 5)
    codes = [a.get("error", {}).get("code") for a in got]
    assert codes == ["invalid_json", "invalid_request", "invalid_request", "invalid_request", None]
    assert got[1]["error"]["details"][0]["path"] == "chunk_seq"
    assert got[4] == {"frame": 5, "id": None, "accepted": 1}


async def test_a_consumer_cancel_reaches_the_producer_at_once(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    conv_id, conv = await new_conversation(http, fleet.urls[0])
    _, other = await owner_and_other(http, fleet, conv)
    sid = unique("s")
    async with http.ws_connect(socket_url(other, conv_id, sid)) as ws:
        await ws.send_str(json.dumps({"chunk_seq": 0, "data": "a"}))
        assert (await answers(ws, 1))[0]["accepted"] == 1
        await ok(http, "POST", f"{other}/v1/streams/it/acme/{conv_id}/{sid}/cancel", {"reason": "stop"})
        [pushed] = await answers(ws, 1)
        assert pushed["cancelled"]["by"] == "consumer" and pushed["cancelled"]["error"] == "stop"
        closing = await ws.receive(timeout=10)
        assert (closing.type, closing.data, closing.extra) == (
            aiohttp.WSMsgType.CLOSE,
            4409,
            "stream_cancelled",
        )


async def test_refusals_come_before_the_upgrade_as_json(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    conv_id, conv = await new_conversation(http, fleet.urls[0])
    owner, other = await owner_and_other(http, fleet, conv)
    sid = unique("s")
    await ok(http, "POST", f"{owner}{conv}/stream-end", {"stream_id": sid, "last_chunk_seq": -1})
    for url in (owner, other):
        for stream_conv, stream_id, status, code in (
            (conv_id, sid, 409, "stream_ended"),
            (unique("none"), "s", 404, "conversation_not_found"),
            (conv_id, "bad*id", 400, "invalid_parameter"),
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(socket_url(url, stream_conv, stream_id))
            assert refused.value.status == status
            async with http.get(socket_url(url, stream_conv, stream_id).replace("ws", "http", 1)) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (status, code)
        async with http.get(f"{url}/v1/streams/it/acme/{conv_id}/{unique('s')}/write") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "websocket_required")
    async with aiohttp.ClientSession() as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await anonymous.ws_connect(socket_url(other, conv_id, unique("s")))
        assert refused.value.status == 401
