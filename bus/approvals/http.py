"""HTTP: /v1/approvals. Deciding runs on the approval's owner (its conversation's owner)."""

from __future__ import annotations

from aiohttp import web

from bus.approvals import service as ops
from bus.approvals.models import Approval, ApprovalList, Decision
from bus.cluster.forwarding import at_owner, fan_out
from bus.errors import InvalidParameter
from bus.http.access import Access, can_see
from bus.http.routes import Param, context, json_response, principal, read_model, route
from tables.conversations import approvals

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

TENANT = "/v1/approvals/{namespace}/{tenant}"
ONE = TENANT + "/{approval_id}"
STATES = ("pending", "approved", "rejected", "expired")


def path_key(request: web.Request) -> str:
    m = request.match_info
    return ops.approval_key(m["namespace"], m["tenant"], m["approval_id"])


@route(
    "GET",
    TENANT,
    summary="The tenant's approvals, newest first",
    tag="approvals",
    access=Access.READ,
    response=ApprovalList,
    params=(
        Param("state", "pending, approved, rejected or expired"),
        Param("tool", "Only calls of this tool"),
        Param("agent", "Only calls this agent makes or would run"),
    ),
    errors=(400, 503),
)
async def list_approvals(request: web.Request) -> web.StreamResponse:
    q, m = request.query, request.match_info
    state = q.get("state")
    if state is not None and state not in STATES:
        raise InvalidParameter(f"state is one of {', '.join(STATES)}", {"state": state[:50]})
    found = await fan_out(
        request,
        lambda: ops.owned(state, q.get("tool"), q.get("agent")),
        lambda body: ApprovalList.model_validate(body).approvals,
    )
    mine = [a for a in found if (a.namespace, a.tenant) == (m["namespace"], m["tenant"])]
    who = principal(request)
    shown = [a for a in mine if can_see(who, a.namespace, a.tenant)]
    return json_response(ApprovalList(approvals=sorted(shown, key=lambda a: -a.requested_at)))


@route(
    "GET",
    ONE,
    summary="One approval, with the digest of what it would publish",
    tag="approvals",
    access=Access.READ,
    response=Approval,
    errors=(404, 503),
)
async def get(request: web.Request) -> web.StreamResponse:
    key = path_key(request)

    async def here() -> web.StreamResponse:
        return json_response((await ops.find(context(request), key)).public())

    return await at_owner(request, key, approvals.topic, here)


async def decide(request: web.Request, approve: bool) -> web.StreamResponse:
    key, decision = path_key(request), await read_model(request, Decision)
    who = principal(request).key_id

    async def here() -> web.StreamResponse:
        return json_response(await ops.decide(context(request), key, decision, approve, who))

    return await at_owner(request, key, approvals.topic, here)


@route(
    "POST",
    ONE + "/approve",
    summary="Approve: publish the parked call, exactly once",
    tag="approvals",
    access=Access.MANAGE,
    body=Decision,
    response=Approval,
    errors=(404, 409, 422, 503, 504),
)
async def approve(request: web.Request) -> web.StreamResponse:
    return await decide(request, approve=True)


@route(
    "POST",
    ONE + "/reject",
    summary="Reject: publish nothing; the caller gets a rejected result",
    tag="approvals",
    access=Access.MANAGE,
    body=Decision,
    response=Approval,
    errors=(404, 409, 422, 503, 504),
)
async def reject(request: web.Request) -> web.StreamResponse:
    return await decide(request, approve=False)
