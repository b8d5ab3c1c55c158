"""HTTP: /v1/schemas, the JSON Schema registry."""

from __future__ import annotations

import re

from aiohttp import web

from bus.errors import InvalidParameter, ReservedNamespace
from bus.http.access import Access, can_see
from bus.http.routes import Param, context, json_response, principal, read_model, route
from bus.schemas import service as schemas
from bus.schemas.models import (
    SUBJECT_PATTERN,
    CompatibilityCheck,
    CompatibilityReport,
    SchemaSubmission,
    SchemaVersion,
    SubjectConfig,
    SubjectList,
    SubjectSummary,
    VersionList,
)
from bus.schemas.service import VersionRef
from bus.wire import NAME_RE, parse_whole

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

SUBJECT_PATH = "/v1/schemas/{namespace}/{tenant}/{subject}"
VERSIONS_PATH = SUBJECT_PATH + "/versions"
VERSION_PATH = VERSIONS_PATH + "/{version}"
RESERVED_NAMESPACE = "bus"  # the bus's own envelope schemas live here
SUBJECT_RE = re.compile(SUBJECT_PATTERN)


def path_subject(request: web.Request, writing: bool = False) -> tuple[str, str, str]:
    m = request.match_info
    namespace, tenant, subject = m["namespace"], m["tenant"], m["subject"]
    if not (NAME_RE.match(namespace) and NAME_RE.match(tenant)):
        raise InvalidParameter(
            "namespace and tenant are lowercase names", {"namespace": namespace, "tenant": tenant}
        )
    if not SUBJECT_RE.match(subject):
        raise InvalidParameter(f"subject must match {SUBJECT_PATTERN}", {"subject": subject})
    if writing and namespace == RESERVED_NAMESPACE:
        raise ReservedNamespace("The 'bus' namespace holds the bus's own schemas; it is read-only", None)
    return namespace, tenant, subject


def path_version(request: web.Request) -> VersionRef:
    raw = request.match_info["version"]
    if raw == "latest":
        return "latest"
    number = parse_whole(raw, 999_999_999)
    if number is not None and number >= 1:
        return number
    raise InvalidParameter("version is a number from 1 or 'latest'", {"version": raw})


@route(
    "GET",
    "/v1/schemas",
    summary="List schema subjects",
    tag="schemas",
    access=Access.AUTHENTICATED,
    response=SubjectList,
    params=(Param("namespace", "Only this namespace"), Param("tenant", "Only this tenant")),
)
async def list_subjects(request: web.Request) -> web.StreamResponse:
    q, who = request.query, principal(request)
    found = schemas.summaries(q.get("namespace"), q.get("tenant"))
    return json_response(SubjectList(subjects=[s for s in found if can_see(who, s.namespace, s.tenant)]))


@route(
    "POST",
    VERSIONS_PATH,
    summary="Register a schema version (an identical schema returns the existing one)",
    tag="schemas",
    access=Access.MANAGE,
    body=SchemaSubmission,
    response=SchemaVersion,
    status=201,
    errors=(400, 403, 409, 413, 422, 503, 504),
)
async def register_version(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request, writing=True)
    submission = await read_model(request, SchemaSubmission)
    version, created = await schemas.register(context(request), namespace, tenant, subject, submission)
    return json_response(version, status=201 if created else 200)


@route(
    "GET",
    VERSIONS_PATH,
    summary="List the live versions of a subject",
    tag="schemas",
    access=Access.READ,
    response=VersionList,
    errors=(400, 404),
)
async def list_versions(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request)
    meta = schemas.require_meta(namespace, tenant, subject)
    versions = [schemas.require_version(namespace, tenant, subject, v) for v in meta.versions]
    return json_response(VersionList(subject=subject, versions=versions))


@route(
    "GET",
    VERSION_PATH,
    summary="Get one version, or 'latest'",
    tag="schemas",
    access=Access.READ,
    response=SchemaVersion,
    errors=(400, 404),
)
async def get_version(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request)
    version = path_version(request)
    return json_response(await schemas.find_version(context(request), namespace, tenant, subject, version))


@route(
    "DELETE",
    VERSION_PATH,
    summary="Delete a version (refused while a topic is bound to it)",
    tag="schemas",
    access=Access.MANAGE,
    response=SchemaVersion,
    errors=(400, 403, 404, 409, 503, 504),
)
async def delete_version(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request, writing=True)
    version = path_version(request)
    deleted = await schemas.delete_version(context(request), namespace, tenant, subject, version)
    return json_response(deleted)


@route(
    "POST",
    SUBJECT_PATH + "/compatibility",
    summary="Check a candidate schema without registering it",
    tag="schemas",
    access=Access.READ,
    body=CompatibilityCheck,
    response=CompatibilityReport,
    errors=(400, 413, 422),
)
async def check_compatibility(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request)
    check = await read_model(request, CompatibilityCheck)
    return json_response(
        await schemas.check_compatibility(context(request), namespace, tenant, subject, check)
    )


@route(
    "GET",
    SUBJECT_PATH + "/config",
    summary="The subject's compatibility mode",
    tag="schemas",
    access=Access.READ,
    response=SubjectSummary,
    errors=(400, 404),
)
async def get_config(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request)
    return json_response(schemas.summary(namespace, tenant, subject))


@route(
    "PUT",
    SUBJECT_PATH + "/config",
    summary="Set the subject's compatibility mode",
    tag="schemas",
    access=Access.MANAGE,
    body=SubjectConfig,
    response=SubjectSummary,
    errors=(400, 403, 422, 503, 504),
)
async def put_config(request: web.Request) -> web.StreamResponse:
    namespace, tenant, subject = path_subject(request, writing=True)
    config = await read_model(request, SubjectConfig)
    await schemas.configure(context(request), namespace, tenant, subject, config.compatibility)
    return json_response(schemas.summary(namespace, tenant, subject))
