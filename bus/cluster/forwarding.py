"""Handing a request to the worker that owns its key, written once for every primitive.

at_owner() runs a handler here when this worker owns the key, and otherwise relays the
request to the owner as it came (a JSON answer, an event stream or a WebSocket). A
forwarded request carries FORWARDED, and its receiver never forwards it again (a
rebalance under way makes that receiver answer 503 owner_moved, and the client retries).
fan_out() gathers a list from every worker at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import faust
from aiohttp import web

from bus import metrics, tracing
from bus.cluster.ownership import is_owner, owner_url, owners_topic, self_url, worker_urls
from bus.errors import OwnerMoved
from bus.logs import REQUEST_ID_HEADER
from bus.settings import get_settings

__all__ = [
    "FORWARDED",
    "FORWARDER",
    "PRINCIPAL",
    "WORKER_HEADER",
    "Forwarder",
    "Identified",
    "Relay",
    "ask_each",
    "at_owner",
    "fan_out",
    "forwarded_identity",
    "is_forwarded",
]

log = logging.getLogger(__name__)
# What a relay to the owner raises when the owner's answer is lost: 503, ask again. aiohttp's
# client has also raised AttributeError ('NoneType' has no attribute 'getall', in
# ClientResponse.start) for a connection that broke while the event loop stalled.
_UNANSWERED = (aiohttp.ClientError, TimeoutError, AttributeError)

FORWARDED = "X-Agentbus-Forwarded"  # on a forwarded request: the caller's identity, signed by the fleet
PRINCIPAL = "agentbus.principal"  # where the middleware keeps who is calling (an Identified)
WORKER_HEADER = "X-Agentbus-Worker"  # on an answer: the worker that owns the key and answered
RELAY_CLOSE_S = 5.0  # for the other side of a relayed WebSocket to close after one side did
_PASSED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Last-Event-ID",
    REQUEST_ID_HEADER,
    *tracing.TRACE_HEADERS,  # as they came when tracing is off; the forward's own span's when on
)
T = TypeVar("T")
Relay = Literal["answer", "event_stream", "websocket"]
Here = Callable[[], Awaitable[web.StreamResponse]]
_VERIFIED, _UNCHECKED = "agentbus.forwarded_identity", object()


async def at_owner(
    request: web.Request, key: str, topic: faust.TopicT, here: Here, relay: Relay = "answer"
) -> web.StreamResponse:
    """Answer with here() if this worker owns key on topic (or the request was forwarded to
    it); otherwise relay the request to the owner, as relay says its answer comes."""
    if is_forwarded(request) or is_owner(key, topic):
        response = await here()
        if not response.prepared:  # a stream's headers are gone already
            response.headers[WORKER_HEADER] = self_url()
        return response
    if relay == "event_stream":
        return await FORWARDER.stream(request, key, topic)
    if relay == "websocket":
        return await FORWARDER.websocket(request, key, topic)
    return await FORWARDER.forward(request, key, topic)


async def fan_out(
    request: web.Request, local: Callable[[], list[T]], parse: Callable[[Any], list[T]]
) -> list[T]:
    """Everything the fleet holds for a list request: this worker's own items (local) and
    every other worker's, asked at once with the same query plus scope=local and the
    caller's key (parse reads one answer). A forwarded scope=local request gets local only."""
    if request.query.get("scope") == "local" and is_forwarded(request):
        return local()
    merged = local()
    for url, status, body in await ask_each(request):
        if status != 200:
            raise OwnerMoved("A worker did not answer the list; retry", {"worker": url, "status": status})
        merged += parse(body)
    return merged


async def ask_each(request: web.Request) -> list[tuple[str, int, Any]]:
    """Every other worker's answer to the same GET with scope=local and the caller's key,
    asked at once: (worker, status, body); status 0 when a worker did not answer."""
    others = [url for url in worker_urls() if url != self_url()]
    path = str(request.rel_url.update_query(scope="local").path_qs)
    auth = request.headers.get("Authorization", "")

    async def ask(url: str) -> tuple[str, int, Any]:
        try:
            status, body = await FORWARDER.call("", "GET", path, auth, None, base=url)
        except OwnerMoved:
            return url, 0, None
        return url, status, body

    return list(await asyncio.gather(*(ask(url) for url in others)))


class Identified(Protocol):
    """Who a request came from, as the middleware knows it (bus.http.access.Principal)."""

    def to_identity(self) -> str: ...


def is_forwarded(request: web.Request) -> bool:
    """Whether another worker of the fleet handed this request over (the receiver then
    never forwards it again). Only a worker can say so: the header is signed."""
    return forwarded_identity(request) is not None


def forwarded_identity(request: web.Request) -> str | None:
    """The caller's identity the forwarding worker vouched for ('' when it vouched for
    nothing: the receiver then authenticates the request itself); None if not forwarded."""
    found = request.get(_VERIFIED, _UNCHECKED)
    if found is _UNCHECKED:
        found = request[_VERIFIED] = _verified(request.headers.get(FORWARDED))
    return found if isinstance(found, str) else None


def _verified(header: str | None) -> str | None:
    if header is None:
        return None
    encoded, _, signature = header.rpartition(".")
    if not hmac.compare_digest(signature, _signature(encoded)):
        log.warning("a request claimed to be forwarded with a bad signature; treated as a client's")
        return None
    return base64.urlsafe_b64decode(encoded.encode()).decode()


def _stamp(identity: str) -> str:
    encoded = base64.urlsafe_b64encode(identity.encode()).decode()
    return f"{encoded}.{_signature(encoded)}"


def _signature(encoded: str) -> str:
    admin = get_settings().admin_key  # every worker of a fleet holds it: the shared secret
    secret = admin.get_secret_value().encode() if admin is not None else b""
    return hmac.new(secret, encoded.encode(), hashlib.sha256).hexdigest()


def _passed_headers(request: web.Request) -> dict[str, str]:
    """The request's headers a forward keeps, and the signed identity of its caller."""
    headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
    who = request.get(PRINCIPAL)
    headers[FORWARDED] = _stamp(who.to_identity() if who is not None else "")
    headers.update(tracing.http_headers())  # the owner's server span is a child of the forward's
    return headers


def _client_span(relay: str, method: str, url: str) -> AbstractContextManager[object]:
    """The span of one hand-over to another worker (nothing when tracing is off)."""
    attributes = {"agentbus.relay": relay, "http.request.method": method, "url.full": url}
    return tracing.span(f"forward {method}", tracing.SpanKind.CLIENT, attributes=attributes)


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
        with _client_span("answer", request.method, url):
            return await self._forward(request, key, url)

    async def _forward(self, request: web.Request, key: str, url: str) -> web.Response:
        headers = _passed_headers(request)
        body = await request.read()
        try:
            async with (
                metrics.forwarding("answer"),
                self.session.request(request.method, url, data=body, headers=headers) as answer,
            ):
                passed = {h: answer.headers[h] for h in (WORKER_HEADER, "Retry-After") if h in answer.headers}
                answered = await answer.read()
        except _UNANSWERED as exc:
            log.info("no answer from %s: %r", url, exc)
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc
        return web.Response(
            body=answered, status=answer.status, content_type=answer.content_type, headers=passed
        )

    async def stream(self, request: web.Request, key: str, topic: faust.TopicT) -> web.StreamResponse:
        """Relay a streaming answer (SSE) of key's owner, chunk by chunk, until either side ends."""
        url = owner_url(key, topic) + request.rel_url.path_qs
        with _client_span("event_stream", "GET", url):
            return await self._stream(request, key, url)

    async def _stream(self, request: web.Request, key: str, url: str) -> web.StreamResponse:
        headers = _passed_headers(request)
        try:
            async with self.session.get(url, headers=headers) as answer:
                metrics.FORWARDS.labels("event_stream", "ok").inc()  # a relay's length is no latency
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
        except _UNANSWERED as exc:
            metrics.FORWARDS.labels("event_stream", "failed").inc()
            raise OwnerMoved("The worker owning this key did not answer; retry", {"key": key}) from exc

    async def websocket(self, request: web.Request, key: str, topic: faust.TopicT) -> web.StreamResponse:
        """Relay a WebSocket to key's owner, frame by frame both ways, until either side closes.
        If the owner refuses the handshake, answer what it answers to the plain request (the
        error as JSON)."""
        downstream = web.WebSocketResponse(max_msg_size=0)
        if not downstream.can_prepare(request).ok:  # not a WebSocket: the owner says what is wrong
            return await self.forward(request, key, topic)
        url = owner_url(key, topic) + request.rel_url.path_qs
        with _client_span("websocket", "GET", url):
            headers = _passed_headers(request)
        try:
            upstream = await self.session.ws_connect(url, headers=headers, max_msg_size=0)
            metrics.FORWARDS.labels("websocket", "ok").inc()
        except aiohttp.WSServerHandshakeError:
            return await self.forward(request, key, topic)
        except _UNANSWERED as exc:
            metrics.FORWARDS.labels("websocket", "failed").inc()
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
        url = (base or owner_url(key, topic)) + path
        with _client_span("call", method, url):
            return await self._call(key, method, url, auth, body)

    async def _call(self, key: str, method: str, url: str, auth: str, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": auth, FORWARDED: _stamp(""), **tracing.http_headers()}
        try:
            async with (
                metrics.forwarding("call"),
                self.session.request(method, url, json=body, headers=headers) as answer,
            ):
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
