"""Topics, schemas, keys, quotas, rules, audit and system: the bus's metadata."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Literal

from agentbus_client._async._events import AsyncEventStream
from agentbus_client._async._http import AsyncHTTP
from agentbus_client._events import topic_record, watch_snapshot
from agentbus_client._shared import (
    Params,
    Scope,
    body_answers,
    body_of,
    dump,
    keyed_path,
    parse,
    path,
    query,
    tenant_path,
)
from agentbus_client.models.audit import AuditPage
from agentbus_client.models.keys import ApiKeyView, Grant, KeyList, KeySpec, KeyWithSecret
from agentbus_client.models.publish import DeliveredRecord
from agentbus_client.models.quotas import Quota, TenantQuota
from agentbus_client.models.rules import Rule, RuleSet, RuleSetSpec
from agentbus_client.models.schemas import (
    CompatibilityCheck,
    CompatibilityMode,
    CompatibilityReport,
    JsonSchema,
    SchemaSubmission,
    SchemaVersion,
    SubjectConfig,
    SubjectList,
    SubjectSummary,
    VersionList,
)
from agentbus_client.models.system import Fleet, Health, WatchSnapshot, WhoAmI
from agentbus_client.models.topics import SchemaBinding, Topic, TopicList, TopicSpec


class _Resource:
    def __init__(self, http: AsyncHTTP, scope: Scope) -> None:
        self._http = http
        self._scope = scope


class AsyncTopics(_Resource):
    """POST/GET/DELETE /v1/topics, schema bindings, and a topic's live SSE tail."""

    async def create(
        self,
        name: str,
        *,
        partitions: int | None = None,
        replication_factor: int | None = None,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        schema_binding: SchemaBinding | dict[str, Any] | None = None,
    ) -> Topic:
        """Create a topic of this tenant (or namespace/tenant/name); TopicExists if it exists."""
        namespace, tenant, topic = self._scope.key_of(name)
        body = body_of(
            TopicSpec,
            namespace=namespace,
            tenant=tenant,
            name=topic,
            partitions=partitions,
            replication_factor=replication_factor,
            retention_ms=retention_ms,
            retention_bytes=retention_bytes,
            description=description,
            labels=labels,
            schema_binding=schema_binding,
        )
        return parse(Topic, await self._http.request("POST", path("topics"), json=body))

    async def list(self, *, namespace: str | None = None, tenant: str | None = None) -> builtins.list[Topic]:
        """Topics the key may see (a tenant key: its tenant's), filtered by namespace and tenant."""
        params = query(namespace=namespace, tenant=tenant)
        return parse(TopicList, await self._http.request("GET", path("topics"), params=params)).topics

    async def get(self, name: str) -> Topic:
        return parse(Topic, await self._http.request("GET", keyed_path("topics", self._scope, name)))

    async def delete(self, name: str) -> Topic:
        return parse(Topic, await self._http.request("DELETE", keyed_path("topics", self._scope, name)))

    async def bind_schema(
        self, name: str, subject: str, version: int | Literal["latest"] = "latest"
    ) -> Topic:
        """Every payload published to the topic must then match the subject's version."""
        body = body_of(SchemaBinding, subject=subject, version=version)
        answer = await self._http.request("PUT", keyed_path("topics", self._scope, name, "schema"), json=body)
        return parse(Topic, answer)

    async def unbind_schema(self, name: str) -> Topic:
        answer = await self._http.request("DELETE", keyed_path("topics", self._scope, name, "schema"))
        return parse(Topic, answer)

    def subscribe(
        self,
        name: str,
        *,
        start: Literal["earliest", "latest"] | int | None = None,
        last_event_id: str | None = None,
    ) -> AsyncEventStream[DeliveredRecord]:
        """The topic's records as they come (GET /v1/subscribe/...), as `async for`.

        start: earliest, latest (the bus's default) or a unix time in ms. last_event_id (a
        cursor from an earlier stream's `last_event_id`) wins over start. A dropped
        connection resumes right after the last record, on any worker, with nothing lost
        or repeated."""
        stream_path = keyed_path("subscribe", self._scope, name)
        return AsyncEventStream(
            self._http,
            stream_path,
            topic_record,
            params=query(**{"from": start}),
            last_event_id=last_event_id,
        )


class AsyncSchemas(_Resource):
    """The schema registry: subjects of this tenant, their versions and compatibility."""

    async def register(
        self, subject: str, schema: JsonSchema, *, description: str | None = None
    ) -> SchemaVersion:
        """A new version (or the existing one, for the same schema); IncompatibleSchema if it breaks."""
        body = body_of(SchemaSubmission, schema=schema, description=description)
        answer = await self._http.request(
            "POST", tenant_path("schemas", self._scope, subject, "versions"), json=body
        )
        return parse(SchemaVersion, answer)

    async def list(
        self, *, namespace: str | None = None, tenant: str | None = None
    ) -> builtins.list[SubjectSummary]:
        params = query(namespace=namespace, tenant=tenant)
        return parse(SubjectList, await self._http.request("GET", path("schemas"), params=params)).subjects

    async def versions(self, subject: str) -> builtins.list[SchemaVersion]:
        answer = await self._http.request("GET", tenant_path("schemas", self._scope, subject, "versions"))
        return parse(VersionList, answer).versions

    async def get(self, subject: str, version: int | Literal["latest"] = "latest") -> SchemaVersion:
        version_path = tenant_path("schemas", self._scope, subject, "versions", str(version))
        return parse(SchemaVersion, await self._http.request("GET", version_path))

    async def delete_version(self, subject: str, version: int) -> SchemaVersion:
        version_path = tenant_path("schemas", self._scope, subject, "versions", str(version))
        return parse(SchemaVersion, await self._http.request("DELETE", version_path))

    async def check(
        self, subject: str, schema: JsonSchema, *, mode: CompatibilityMode | str | None = None
    ) -> CompatibilityReport:
        """Whether schema could be registered (report.compatible), with every breaking change."""
        body = body_of(CompatibilityCheck, schema=schema, mode=mode)
        check_path = tenant_path("schemas", self._scope, subject, "compatibility")
        return parse(CompatibilityReport, await self._http.request("POST", check_path, json=body))

    async def get_config(self, subject: str) -> SubjectSummary:
        answer = await self._http.request("GET", tenant_path("schemas", self._scope, subject, "config"))
        return parse(SubjectSummary, answer)

    async def set_config(self, subject: str, compatibility: CompatibilityMode | str) -> SubjectSummary:
        body = body_of(SubjectConfig, compatibility=compatibility)
        config_path = tenant_path("schemas", self._scope, subject, "config")
        return parse(SubjectSummary, await self._http.request("PUT", config_path, json=body))


class AsyncKeys(_Resource):
    """API keys (admin): the secret is shown once, by create and rotate."""

    async def create(
        self,
        name: str,
        *,
        role: Literal["admin", "tenant"] = "tenant",
        namespace: str | None = None,
        tenant: str | None = None,
        grants: Sequence[Grant | dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None,
        quota: Quota | dict[str, Any] | None = None,
    ) -> KeyWithSecret:
        """A tenant key for namespace/tenant (default: the client's) with these grants, or an admin key."""
        if role == "tenant":
            namespace = namespace or self._scope.namespace
            tenant = tenant or self._scope.tenant
        body = body_of(
            KeySpec,
            name=name,
            role=role,
            namespace=namespace,
            tenant=tenant,
            grants=list(grants) if grants is not None else None,
            labels=labels,
            quota=quota,
        )
        return parse(KeyWithSecret, await self._http.request("POST", path("keys"), json=body))

    async def list(self) -> builtins.list[ApiKeyView]:
        return parse(KeyList, await self._http.request("GET", path("keys"))).keys

    async def get(self, key_id: str) -> ApiKeyView:
        return parse(ApiKeyView, await self._http.request("GET", path("keys", key_id)))

    async def rotate(self, key_id: str) -> KeyWithSecret:
        """A new secret for the key; the old one stops working."""
        return parse(KeyWithSecret, await self._http.request("POST", path("keys", key_id, "rotate")))

    async def revoke(self, key_id: str) -> ApiKeyView:
        return parse(ApiKeyView, await self._http.request("DELETE", path("keys", key_id)))

    async def set_quota(self, key_id: str, quota: Quota | dict[str, Any]) -> ApiKeyView:
        body = dump(Quota.model_validate(quota, strict=False))
        return parse(ApiKeyView, await self._http.request("PUT", path("keys", key_id, "quota"), json=body))

    async def tenant_quota(self) -> TenantQuota:
        return parse(TenantQuota, await self._http.request("GET", tenant_path("quotas", self._scope)))

    async def set_tenant_quota(self, quota: Quota | dict[str, Any]) -> TenantQuota:
        body = dump(Quota.model_validate(quota, strict=False))
        return parse(
            TenantQuota, await self._http.request("PUT", tenant_path("quotas", self._scope), json=body)
        )


class AsyncRules(_Resource):
    """The tenant's publish rules: one ordered list, first match wins."""

    async def get(self) -> RuleSet:
        return parse(RuleSet, await self._http.request("GET", tenant_path("rules", self._scope)))

    async def put(self, rules: Sequence[Rule | dict[str, Any]]) -> RuleSet:
        """Replace the whole list."""
        body = body_of(RuleSetSpec, rules=list(rules))
        return parse(RuleSet, await self._http.request("PUT", tenant_path("rules", self._scope), json=body))

    async def delete(self) -> RuleSet:
        return parse(RuleSet, await self._http.request("DELETE", tenant_path("rules", self._scope)))


class AsyncSystem(_Resource):
    """Health, the caller's key, the fleet's workers, watched GETs, the audit log (admin)
    and the OpenAPI document."""

    async def health(self) -> Health:
        """The current worker's health; Unavailable (after retries) when it is not ready."""
        return parse(Health, await self._http.request("GET", "/healthz"))

    async def live(self) -> Health:
        """Whether the current worker's process is up (GET /livez): ready is false while it
        still catches up."""
        return parse(Health, await self._http.request("GET", "/livez"))

    async def ready(self) -> Health:
        """Whether the current worker can answer correctly (GET /readyz). Not ready is an
        answer, not an error: its 503 carries the Health (ready false), returned at once
        without a retry. A 503 without a Health (a proxy's) raises Unavailable as usual."""
        answer = await self._http.request("GET", "/readyz", answers=body_answers(503, Health))
        return parse(Health, answer)

    async def whoami(self) -> WhoAmI:
        """The client's key: its id, role, tenant and grants."""
        return parse(WhoAmI, await self._http.request("GET", path("whoami")))

    async def workers(self) -> Fleet:
        """Every worker of the fleet (admin): up, ready, the state partitions it owns, counters."""
        return parse(Fleet, await self._http.request("GET", path("workers")))

    def watch(
        self, paths: Sequence[str], *, interval_ms: int | None = None
    ) -> AsyncEventStream[WatchSnapshot]:
        """GETs of this API (each a path under /v1/ with its query, or /healthz; at most 20)
        read again every interval_ms (1000 to 60000; the bus's default 2000), as `async for`:
        a snapshot of every answer at once and whenever one changed. Each result has its own
        status: an error body is a result, not an error. A dropped connection reconnects
        and starts again with a snapshot."""
        params: Params = {"path": list(paths), **query(interval_ms=interval_ms)}
        return AsyncEventStream(self._http, path("watch"), watch_snapshot, params=params)

    async def metrics(self) -> str:
        """The current worker's Prometheus metrics (admin), as text."""
        text: str = await self._http.request("GET", "/metrics")
        return text

    async def openapi(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._http.request("GET", "/openapi.json")
        return answer

    async def audit(
        self,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        key_id: str | None = None,
        action: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        order: Literal["oldest", "newest"] | None = None,
    ) -> AuditPage:
        """Audit records (admin) matching the filters; order: oldest (the bus's default) or
        newest first."""
        params = query(
            namespace=namespace,
            tenant=tenant,
            key_id=key_id,
            action=action,
            since=since,
            until=until,
            limit=limit,
            order=order,
        )
        return parse(AuditPage, await self._http.request("GET", path("audit"), params=params))
