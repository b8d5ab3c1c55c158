"""Which worker owns a key (a subscription, an agent, a conversation), and handing a request to it.

Every keyed state topic has state_partitions partitions, and keys hash to partitions as
Kafka's default partitioner does. Faust's consumer group assigns equal-sized topics that
every worker consumes together (co-partitioned), so one worker holds partition p of all
of them: it owns every key that hashes to p. A subscription's owner is the worker holding
its partition of the owners topic, which carries no records; a Faust agent consumes it
only so that the group spreads its partitions over the fleet and moves them when a
worker joins, leaves or dies. A request that reaches another worker is forwarded to the
owner, body and headers as they came.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import faust
from aiohttp import web

from bus.errors import OwnerMoved
from bus.kafka.faust_app import app
from bus.kafka.gateway import partition_for
from bus.settings import get_settings

log = logging.getLogger(__name__)

FORWARDED = "X-Agentbus-Forwarded"  # set on a forwarded request: the receiver never forwards again
WORKER_HEADER = "X-Agentbus-Worker"  # on an answer: the worker that owns the key and answered
RELAY_CLOSE_S = 5.0  # for the other side of a relayed WebSocket to close after one side did
_PASSED_HEADERS = ("Authorization", "Content-Type", "Accept", "Last-Event-ID")

owners_topic = app.topic(
    f"{get_settings().prefix}-subscription-owners",
    partitions=get_settings().state_partitions,
    internal=True,
    key_type=str,
    value_type=bytes,
    value_serializer="raw",
)


@app.agent(owners_topic)  # type: ignore[untyped-decorator]
async def hold_subscriptions(stream: faust.StreamT[bytes]) -> None:
    """Consumes nothing of interest: its partitions are the subscriptions this worker runs."""
    async for _ in stream:
        pass


def owner_partition(key: str) -> int:
    """The partition key hashes to on every keyed state topic (they all have state_partitions)."""
    return partition_for(key.encode(), get_settings().state_partitions, 0)


_owned: dict[str, frozenset[int]] = {}
_owned_from: list[Any] = [None]  # the assignment _owned was computed from


def owned_partitions(topic: faust.TopicT = owners_topic) -> frozenset[int]:
    # Asked on every request: computed once per assignment (each rebalance brings a new object).
    assignment = app.assignor._assignment
    if assignment is not _owned_from[0]:
        _owned.clear()
        _owned_from[0] = assignment
    name = topic.get_topic_name()
    found = _owned.get(name)
    if found is None:
        found = _owned[name] = frozenset(assignment.actives.get(name, ()))
    return found


def is_owner(key: str, topic: faust.TopicT = owners_topic) -> bool:
    return owner_partition(key) in owned_partitions(topic)


def owner_url(key: str, topic: faust.TopicT = owners_topic) -> str:
    """The base URL of the worker that owns key on topic; OwnerMoved while nobody does."""
    name, wanted = topic.get_topic_name(), owner_partition(key)
    for url, topics in app.router.external_topics_metadata().items():
        if wanted in topics.get(name, ()):
            return str(url).rstrip("/")
    raise OwnerMoved("No worker owns this key at the moment (a rebalance?); retry", {"key": key})


def worker_urls() -> list[str]:
    """Every worker of the fleet, as the last rebalance saw it."""
    return sorted(str(url).rstrip("/") for url in app.router.external_topics_metadata())


def self_url() -> str:
    return str(app.conf.canonical_url).rstrip("/")


def is_forwarded(request: web.Request) -> bool:
    return FORWARDED in request.headers


class Forwarder:
    """One HTTP client per worker for requests handed to the owner of a key."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it needs the running loop
            # No pool limit: relayed SSE readers hold a connection each, and a capped pool
            # would queue every forwarded request behind them.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(
        self,
        request: web.Request,
        key: str,
        topic: faust.TopicT = owners_topic,
        base: str | None = None,
        path_qs: str | None = None,
    ) -> web.Response:
        """Send the request to key's owner (or to base, at path_qs) and answer with what it answered."""
        url = (base or owner_url(key, topic)) + (path_qs or request.rel_url.path_qs)
        headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
        headers[FORWARDED] = "1"
        body = await request.read()
        try:
            async with self.session.request(request.method, url, data=body, headers=headers) as answer:
                passed = {h: answer.headers[h] for h in (WORKER_HEADER, "Retry-After") if h in answer.headers}
                return web.Response(
                    body=await answer.read(),
                    status=answer.status,
                    content_type=answer.content_type,
                    headers=passed,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc

    async def stream(self, request: web.Request, key: str, topic: faust.TopicT) -> web.StreamResponse:
        """Relay a streaming answer (SSE) of key's owner, chunk by chunk, until either side ends."""
        url = owner_url(key, topic) + request.rel_url.path_qs
        headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
        headers[FORWARDED] = "1"
        try:
            async with self.session.get(url, headers=headers) as answer:
                if answer.status != 200:
                    return web.Response(
                        body=await answer.read(), status=answer.status, content_type=answer.content_type
                    )
                relay = web.StreamResponse(
                    headers={"Content-Type": answer.content_type, "Cache-Control": "no-cache"}
                )
                await relay.prepare(request)
                async for chunk in answer.content.iter_any():
                    await relay.write(chunk)
                return relay
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc

    async def websocket(self, request: web.Request, key: str, topic: faust.TopicT) -> web.StreamResponse:
        """Relay a WebSocket to key's owner, frame by frame both ways, until either side closes.
        If the owner refuses the handshake, answer what it answers to the plain request (the
        error as JSON)."""
        downstream = web.WebSocketResponse(max_msg_size=0)
        if not downstream.can_prepare(request).ok:  # not a WebSocket: the owner says what is wrong
            return await self.forward(request, key, topic)
        url = owner_url(key, topic) + request.rel_url.path_qs
        headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
        headers[FORWARDED] = "1"
        try:
            upstream = await self.session.ws_connect(url, headers=headers, max_msg_size=0)
        except aiohttp.WSServerHandshakeError:
            return await self.forward(request, key, topic)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc
        async with upstream:
            await downstream.prepare(request)
            await relay_frames(downstream, upstream)
        return downstream

    async def call(
        self,
        key: str,
        method: str,
        path: str,
        auth: str,
        body: Any,
        base: str | None = None,
        topic: faust.TopicT = owners_topic,
    ) -> tuple[int, Any]:
        """A JSON request to key's owner (or to base) for a client, whose key goes along: (status, body)."""
        headers = {"Authorization": auth, FORWARDED: "1"}
        url = (base or owner_url(key, topic)) + path
        try:
            async with self.session.request(method, url, json=body, headers=headers) as answer:
                return answer.status, await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc


async def relay_frames(client: web.WebSocketResponse, owner: aiohttp.ClientWebSocketResponse) -> None:
    """Pass text and binary frames both ways; when one side closes, close the other with its code."""

    async def to_owner() -> None:
        async for frame in client:
            if frame.type == aiohttp.WSMsgType.TEXT:
                await owner.send_str(frame.data)
            elif frame.type == aiohttp.WSMsgType.BINARY:
                await owner.send_bytes(frame.data)
        await owner.close()

    async def to_client() -> None:
        while True:
            frame = await owner.receive()
            if frame.type == aiohttp.WSMsgType.TEXT:
                await client.send_str(frame.data)
            elif frame.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(frame.data)
            else:
                break
        reason = frame.extra if frame.type == aiohttp.WSMsgType.CLOSE and frame.extra else ""
        await client.close(code=owner.close_code or 1000, message=reason.encode())

    tasks = [asyncio.create_task(to_owner()), asyncio.create_task(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=RELAY_CLOSE_S)  # the side that ended closes the other
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


FORWARDER = Forwarder()
