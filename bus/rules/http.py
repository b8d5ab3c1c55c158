"""HTTP: /v1/rules, a tenant's ordered publish rules."""

from __future__ import annotations

from aiohttp import web

from bus.errors import InvalidParameter, PermissionMissing, Unprocessable
from bus.http.access import Access, Action, Principal
from bus.http.routes import context, json_response, principal, read_model, route
from bus.rules import service as rulesets
from bus.rules.models import RuleSet, RuleSetSpec
from bus.wire import NAME_RE

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

RULES_PATH = "/v1/rules/{namespace}/{tenant}"


def path_tenant(request: web.Request) -> tuple[str, str]:
    namespace, tenant = request.match_info["namespace"], request.match_info["tenant"]
    if not (NAME_RE.match(namespace) and NAME_RE.match(tenant)):
        raise InvalidParameter(
            "namespace and tenant are lowercase names", {"namespace": namespace, "tenant": tenant}
        )
    return namespace, tenant


def require_tenant_wide_manage(who: Principal) -> None:
    """Rules act on every topic of the tenant (a reroute can move records between topics),
    so changing them needs manage on all of them: a grant on '*', not on some glob.
    The middleware has already checked the tenant and some manage grant."""
    if who.admin or any(g.topics == "*" and Action.MANAGE in g.actions for g in who.grants):
        return
    raise PermissionMissing(
        "Rules apply to every topic of the tenant: this needs 'manage' on all topics ('*')",
        {"permission": Action.MANAGE.value, "topics": "*"},
    )


async def read_rule_set(request: web.Request) -> RuleSetSpec:
    try:
        return await read_model(request, RuleSetSpec)
    except Unprocessable as exc:
        raise rulesets.as_invalid_rule(exc) from None


@route(
    "GET",
    RULES_PATH,
    summary="The tenant's publish rules, in order (an empty list when none)",
    tag="rules",
    access=Access.READ,
    response=RuleSet,
    errors=(400, 401, 403, 503, 504),
)
async def get_rules(request: web.Request) -> web.StreamResponse:
    namespace, tenant = path_tenant(request)
    return json_response(await rulesets.get_rules(context(request), namespace, tenant))


@route(
    "PUT",
    RULES_PATH,
    summary="Replace the tenant's whole ordered list of publish rules",
    tag="rules",
    access=Access.MANAGE,
    body=RuleSetSpec,
    response=RuleSet,
    errors=(400, 401, 403, 413, 415, 422, 503, 504),
)
async def put_rules(request: web.Request) -> web.StreamResponse:
    namespace, tenant = path_tenant(request)
    require_tenant_wide_manage(principal(request))
    spec = await read_rule_set(request)
    return json_response(await rulesets.put_rules(context(request), namespace, tenant, spec))


@route(
    "DELETE",
    RULES_PATH,
    summary="Clear the tenant's publish rules",
    tag="rules",
    access=Access.MANAGE,
    response=RuleSet,
    errors=(400, 401, 403, 503, 504),
)
async def delete_rules(request: web.Request) -> web.StreamResponse:
    namespace, tenant = path_tenant(request)
    require_tenant_wide_manage(principal(request))
    return json_response(await rulesets.clear_rules(context(request), namespace, tenant))
