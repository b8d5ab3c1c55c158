"""The stream writer's WebSocket transport (`client.stream(..., transport="ws")`).

One connection per stream (GET /v1/streams/.../write), opened on the first batch. Each
batch is a frame; the writer waits for its answer before the next (the bus answers once
the chunks are in Kafka), so what the model makes meanwhile goes in the next frame. A lost
connection, or the bus closing it because the conversation moved (4503), is opened again
and the unanswered frame sent again: readers drop the repeats. A consumer's cancel, pushed
by the bus, fails the writer with BusAgentError stream_cancelled.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp

from bus.sdk.client import RETRIABLE_STATUSES, RETRY_FOR_S, BusAgentError

__all__ = ["SocketTransport"]

if TYPE_CHECKING:
    from bus.sdk.client import BusClient

RETRY_CLOSE_CODE = 4503  # the bus closed the socket with a retriable error (owner_moved)


class SocketLost(Exception):
    """The connection went away before the frame's answer: open it again and resend."""


class SocketTransport:
    def __init__(self, client: BusClient, stream_path: str, sender: str | None) -> None:
        self.client, self.sender = client, sender
        self.url = client.url.replace("http", "ws", 1) + stream_path + "/write"
        self.socket: aiohttp.ClientWebSocketResponse | None = None

    async def send_chunks(self, body: dict[str, Any]) -> None:
        await self.exchange({"chunks": body["chunks"]})

    async def send_end(self, body: dict[str, Any]) -> Any:
        end = {k: v for k, v in body.items() if k not in ("stream_id", "sender")}
        answer = await self.exchange({"end": end})
        await self.close()
        return answer["ended"]

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    async def exchange(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send the frame and return its answer; reconnect and resend while the connection
        is lost, for up to RETRY_FOR_S; raise BusAgentError for a refusal."""
        deadline = asyncio.get_running_loop().time() + RETRY_FOR_S
        while True:
            try:
                socket = await self.connected()
                await socket.send_str(json.dumps(frame))
                return await self.answer(socket)
            except (SocketLost, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                await self.close()
                if asyncio.get_running_loop().time() > deadline:
                    raise BusAgentError(503, repr(exc)) from exc
                await asyncio.sleep(0.2)

    async def connected(self) -> aiohttp.ClientWebSocketResponse:
        if self.socket is None:
            try:
                self.socket = await self.client.http.ws_connect(
                    self.url, params=self.params(), max_msg_size=0
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in RETRIABLE_STATUSES:
                    raise SocketLost(f"handshake {exc.status}") from exc
                raise await self.refusal() from exc
        return self.socket

    async def refusal(self) -> BusAgentError:
        """Why the bus refused the handshake: the same request as a plain GET says, as JSON."""
        async with self.client.http.get(self.url.replace("ws", "http", 1), params=self.params()) as r:
            return BusAgentError(r.status, await r.json(content_type=None))

    def params(self) -> dict[str, str]:
        return {"sender": self.sender} if self.sender else {}

    async def answer(self, socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        message = await socket.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            if socket.close_code is not None and socket.close_code != RETRY_CLOSE_CODE and message.extra:
                raise BusAgentError(socket.close_code - 4000, {"error": {"code": message.extra}})
            raise SocketLost(f"closed ({socket.close_code})")
        answer: dict[str, Any] = json.loads(message.data)
        if "cancelled" in answer or ("ended" in answer and "frame" not in answer):
            over = "cancelled" if "cancelled" in answer else "ended"
            raise BusAgentError(409, {"error": {"code": f"stream_{over}", "details": answer[over]}})
        if "error" in answer:
            if answer.get("status", 0) in RETRIABLE_STATUSES:
                raise SocketLost(answer["error"].get("code"))
            raise BusAgentError(answer.get("status", 400), {"error": answer["error"]})
        return answer
