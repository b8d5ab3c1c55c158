"""HTTP: GET /v1/audit, a search of the audit topic."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from bus.audit import service as audit
from bus.audit.models import AuditPage
from bus.errors import InvalidParameter
from bus.http.access import Access, Action, require
from bus.http.params import choice, whole
from bus.http.routes import Param, context, json_response, principal, route
from bus.wire import parse_whole

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

MAX_LIMIT = 1000
MAX_UNIX_MS = 253_402_300_799_999  # the last ms of year 9999: datetime goes no further


def parse_time(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        ms = parse_whole(raw, MAX_UNIX_MS)
        if ms is not None:
            return datetime.fromtimestamp(ms / 1000, UTC)
        parsed = datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise InvalidParameter(f"{name} is an ISO 8601 time or unix ms", {name: raw[:100]}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@route(
    "GET",
    "/v1/audit",
    summary="Search the audit trail (admin: all; tenant key with manage: its tenant)",
    tag="audit",
    access=Access.AUTHENTICATED,
    response=AuditPage,
    errors=(400, 401, 403),
    params=(
        Param("namespace", "Only this namespace"),
        Param("tenant", "Only this tenant"),
        Param("key_id", "Only requests made with this key"),
        Param("action", "e.g. keys.revoke_key"),
        Param("since", "ISO 8601 or unix ms"),
        Param("until", "ISO 8601 or unix ms"),
        Param("limit", f"1 to {MAX_LIMIT}, default 100"),
        Param("order", "oldest (default: oldest first from since) or newest (newest first back to since)"),
    ),
)
async def search_audit(request: web.Request) -> web.StreamResponse:
    q, who = request.query, principal(request)
    order = choice(request, "order", ("oldest", "newest"), "oldest")
    namespace, tenant = q.get("namespace"), q.get("tenant")
    if not who.admin:
        namespace, tenant = namespace or who.namespace, tenant or who.tenant
        assert namespace is not None and tenant is not None
        require(who, Action.MANAGE, namespace, tenant, None)
    page = await audit.search(
        context(request),
        namespace=namespace,
        tenant=tenant,
        key_id=q.get("key_id"),
        action=q.get("action"),
        since=parse_time("since", q.get("since")),
        until=parse_time("until", q.get("until")),
        limit=whole(request, "limit", 100, minimum=1, maximum=MAX_LIMIT),
        newest_first=order == "newest",
    )
    return json_response(page)
