"""HTTP: tool calls on conversations, their results, their state and their cancellation.

Placing a call and posting its result run on the conversation's owner. GET and cancel
name only the call: the locator's owner finds the conversation, then the request goes on
to the conversation's owner (with ?conversation= so that it needs no second lookup).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from bus.cluster.forwarding import FORWARDER, WORKER_HEADER, at_owner, is_forwarded
from bus.cluster.ownership import is_owner, owner_url, self_url
from bus.conversations.http import path_key
from bus.conversations.models import CallLocation, call_view_key
from bus.errors import from_answer
from bus.http.access import Access
from bus.http.params import whole
from bus.http.routes import Param, context, json_response, read_model, route
from bus.tools import service as tools
from bus.tools.models import CancelRequest, CancelResult, ToolCall, ToolCallSpec, ToolResultSpec
from tables.conversations import conversations, locator

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

CONVERSATION = "/v1/conversations/{namespace}/{tenant}/{id}"
CALL = "/v1/tool-calls/{namespace}/{tenant}/{call_id}"
MAX_WAIT_MS = 60_000


@route(
    "POST",
    CONVERSATION + "/tool-calls",
    summary="Ask an agent to run one of its tools (the callee gets the call in its inbox)",
    tag="tool-calls",
    access=Access.WRITE,
    body=ToolCallSpec,
    response=ToolCall,
    status=201,
    errors=(403, 404, 409, 422, 503, 504),
)
async def place(request: web.Request) -> web.StreamResponse:
    key, spec = path_key(request), await read_model(request, ToolCallSpec)

    async def call() -> web.StreamResponse:
        return json_response(await tools.place(context(request), key, spec), status=201)

    return await at_owner(request, key, conversations.topic, call)


@route(
    "POST",
    CONVERSATION + "/tool-results",
    summary="Post the result of a tool call (once; the reply_to agent gets it in its inbox)",
    tag="tool-calls",
    access=Access.WRITE,
    body=ToolResultSpec,
    response=ToolCall,
    errors=(403, 404, 409, 422, 503, 504),
)
async def settle(request: web.Request) -> web.StreamResponse:
    key, spec = path_key(request), await read_model(request, ToolResultSpec)

    async def call() -> web.StreamResponse:
        return json_response(await tools.settle(context(request), key, spec))

    return await at_owner(request, key, conversations.topic, call)


def call_key(request: web.Request) -> str:
    m = request.match_info
    return call_view_key(m["namespace"], m["tenant"], m["call_id"])


async def on_conversation_owner(
    request: web.Request, act: Callable[[CallLocation, str], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Act on the call on its conversation's owner, the request forwarded once at most: the
    call's location comes from the locator's owner (here, or asked there), then the request
    goes to the conversation's owner with ?conversation= so that it needs no second lookup."""
    vkey = call_key(request)
    given = request.query.get("conversation")
    if given is not None and is_forwarded(request):
        return await act(CallLocation(conversation=given, approval_id=request.query.get("approval")), vkey)
    location = await locate(request, vkey)
    conversation = location.conversation
    if is_owner(conversation, conversations.topic):
        answer = await act(location, vkey)
        answer.headers[WORKER_HEADER] = self_url()
        return answer
    query = {**request.query, "conversation": conversation}
    if location.approval_id is not None:
        query["approval"] = location.approval_id
    target = URL(request.rel_url.path).with_query(query)
    return await FORWARDER.forward(
        request, conversation, base=owner_url(conversation, conversations.topic), path_qs=str(target)
    )


async def locate(request: web.Request, vkey: str) -> CallLocation:
    """The call's location: from this worker's locator view, or asked of the locator's owner."""
    if is_owner(vkey, locator.topic):
        return await tools.find_location(context(request), vkey)
    auth = request.headers.get("Authorization", "")
    path = str(URL(request.rel_url.path.removesuffix("/cancel")) / "location")
    status, body = await FORWARDER.call(vkey, "GET", path, auth, None, topic=locator.topic)
    if status != 200:
        raise from_answer(status, body)
    return CallLocation.model_validate(body)


@route(
    "GET",
    CALL + "/location",
    summary="Which conversation a tool call belongs to (and its approval while it is parked)",
    tag="tool-calls",
    access=Access.READ,
    response=CallLocation,
    errors=(404, 503),
)
async def location(request: web.Request) -> web.StreamResponse:
    vkey = call_key(request)

    async def here() -> web.StreamResponse:
        return json_response(await tools.find_location(context(request), vkey))

    return await at_owner(request, vkey, locator.topic, here)


@route(
    "GET",
    CALL,
    summary="A tool call with its status and result (also while parked for approval, and after a "
    "rejection); ?wait_ms= holds the request until it settles or its approval is rejected",
    tag="tool-calls",
    access=Access.READ,
    response=ToolCall,
    params=(Param("wait_ms", f"Wait up to this long (at most {MAX_WAIT_MS}) while the call is pending"),),
    errors=(400, 404, 503),
)
async def get(request: web.Request) -> web.StreamResponse:
    wait_ms = whole(request, "wait_ms", 0, maximum=MAX_WAIT_MS)

    async def act(location: CallLocation, vkey: str) -> web.StreamResponse:
        found = await tools.wait_call(
            context(request), location.conversation, vkey, wait_ms, location.approval_id
        )
        return json_response(found)

    return await on_conversation_owner(request, act)


@route(
    "POST",
    CALL + "/cancel",
    summary="Cancel a pending call and every pending call below it; each callee gets a cancel",
    tag="tool-calls",
    access=Access.WRITE,
    body=CancelRequest,
    response=CancelResult,
    errors=(404, 409, 422, 503, 504),
)
async def cancel(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, CancelRequest)

    async def act(location: CallLocation, vkey: str) -> web.StreamResponse:
        cancelled = await tools.cancel(context(request), location.conversation, vkey, body.reason)
        return json_response(CancelResult(cancelled=cancelled))

    return await on_conversation_owner(request, act)
