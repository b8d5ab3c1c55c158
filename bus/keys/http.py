"""HTTP: /v1/keys (admin only)."""

from __future__ import annotations

from aiohttp import web

from bus.http.access import Access
from bus.http.routes import context, json_response, read_model, route
from bus.keys import service as keys
from bus.keys.models import ApiKeyView, KeyList, KeySpec, KeyWithSecret
from bus.keys.quota_models import Quota, TenantQuota

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

KEY_PATH = "/v1/keys/{key_id}"


@route(
    "POST",
    "/v1/keys",
    summary="Create a key; its secret is shown once",
    tag="keys",
    access=Access.ADMIN,
    body=KeySpec,
    response=KeyWithSecret,
    status=201,
    errors=(400, 401, 403, 422),
)
async def create_key(request: web.Request) -> web.StreamResponse:
    spec = await read_model(request, KeySpec)
    return json_response(await keys.create_key(context(request), spec), status=201)


@route(
    "GET",
    "/v1/keys",
    summary="List keys (never their secrets)",
    tag="keys",
    access=Access.ADMIN,
    response=KeyList,
    errors=(401, 403),
)
async def list_keys(request: web.Request) -> web.StreamResponse:
    return json_response(KeyList(keys=keys.list_keys()))


@route(
    "GET",
    KEY_PATH,
    summary="Get one key",
    tag="keys",
    access=Access.ADMIN,
    response=ApiKeyView,
    errors=(401, 403, 404),
)
async def get_key(request: web.Request) -> web.StreamResponse:
    return json_response(keys.view(keys.require_key(request.match_info["key_id"])))


@route(
    "POST",
    KEY_PATH + "/rotate",
    summary="Give a key a new secret; the old one stops working",
    tag="keys",
    access=Access.ADMIN,
    response=KeyWithSecret,
    errors=(401, 403, 404),
)
async def rotate_key(request: web.Request) -> web.StreamResponse:
    return json_response(await keys.rotate_key(context(request), request.match_info["key_id"]))


@route(
    "DELETE",
    KEY_PATH,
    summary="Revoke a key on every worker",
    tag="keys",
    access=Access.ADMIN,
    response=ApiKeyView,
    errors=(401, 403, 404),
)
async def revoke_key(request: web.Request) -> web.StreamResponse:
    return json_response(await keys.revoke_key(context(request), request.match_info["key_id"]))


@route(
    "PUT",
    KEY_PATH + "/quota",
    summary="Set a key's fleet-wide quota (all fields null: unlimited)",
    tag="keys",
    access=Access.ADMIN,
    body=Quota,
    response=ApiKeyView,
    errors=(401, 403, 404, 422),
)
async def set_key_quota(request: web.Request) -> web.StreamResponse:
    quota = await read_model(request, Quota)
    return json_response(await keys.set_key_quota(context(request), request.match_info["key_id"], quota))


@route(
    "GET",
    "/v1/quotas/{namespace}/{tenant}",
    summary="A tenant's fleet-wide quota",
    tag="keys",
    access=Access.READ,
    response=TenantQuota,
    errors=(401, 403),
)
async def get_tenant_quota(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    return json_response(keys.tenant_quota(m["namespace"], m["tenant"]))


@route(
    "PUT",
    "/v1/quotas/{namespace}/{tenant}",
    summary="Set a tenant's fleet-wide quota",
    tag="keys",
    access=Access.ADMIN,
    body=Quota,
    response=TenantQuota,
    errors=(401, 403, 422),
)
async def set_tenant_quota(request: web.Request) -> web.StreamResponse:
    quota = await read_model(request, Quota)
    m = request.match_info
    return json_response(await keys.set_tenant_quota(context(request), m["namespace"], m["tenant"], quota))
