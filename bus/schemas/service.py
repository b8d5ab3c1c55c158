"""The schema registry: register, look up, configure and delete JSON Schema versions.

Changes go through the schema-commands log (see workers.schemas); reads come from this
worker's copy of the registry table, which a change has reached before its request is
answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from agentbus_client.models.topics import Topic

from bus.errors import IncompatibleSchema, SchemaInUse, SubjectNotFound, VersionNotFound
from bus.kafka.context import BusContext
from bus.schemas.models import (
    CompatibilityCheck,
    CompatibilityMode,
    CompatibilityReport,
    SchemaCommand,
    SchemaSubmission,
    SchemaVersion,
    SubjectMeta,
    SubjectSummary,
)
from bus.schemas.registry import Decision, check_schema, decide, report, schema_id
from bus.schemas.store import all_subjects, get_meta, get_version, live_versions
from bus.schemas.validation import BoundSchema, validator_for
from bus.state.command_log import catch_up, send_and_wait
from tables.schemas import schema_commands
from tables.schemas import schemas as schemas_table
from tables.topics import topic_commands
from tables.topics import topics as topics_table

__all__ = [
    "VersionRef",
    "bound_schema",
    "check_compatibility",
    "configure",
    "delete_version",
    "find_version",
    "register",
    "require_meta",
    "require_version",
    "summaries",
    "summary",
]

VersionRef = int | Literal["latest"]


def require_meta(namespace: str, tenant: str, subject: str) -> SubjectMeta:
    meta = get_meta(namespace, tenant, subject)
    if meta is None or not meta.versions:
        raise SubjectNotFound(
            f"Subject {namespace}/{tenant}/{subject} has no versions",
            {"subject": f"{namespace}/{tenant}/{subject}"},
        )
    return meta


def require_version(namespace: str, tenant: str, subject: str, ref: VersionRef) -> SchemaVersion:
    meta = require_meta(namespace, tenant, subject)
    number = meta.versions[-1] if ref == "latest" else ref
    found = get_version(namespace, tenant, subject, number) if number in meta.versions else None
    if found is None:
        raise VersionNotFound(
            f"Subject {subject} has no version {ref}",
            {"subject": subject, "version": ref, "versions": meta.versions},
        )
    return found


async def find_version(
    ctx: BusContext, namespace: str, tenant: str, subject: str, ref: VersionRef
) -> SchemaVersion:
    """require_version, but a miss is only believed once this worker has caught up."""
    try:
        return require_version(namespace, tenant, subject, ref)
    except (SubjectNotFound, VersionNotFound):
        await catch_up(ctx, schema_commands, schemas_table)
        return require_version(namespace, tenant, subject, ref)


def summarise(m: SubjectMeta) -> SubjectSummary:
    return SubjectSummary(
        namespace=m.namespace,
        tenant=m.tenant,
        subject=m.subject,
        compatibility=m.compatibility,
        versions=m.versions,
        latest=m.versions[-1] if m.versions else None,
    )


def summaries(namespace: str | None, tenant: str | None) -> list[SubjectSummary]:
    return [
        summarise(m)
        for m in all_subjects()
        if (namespace is None or m.namespace == namespace) and (tenant is None or m.tenant == tenant)
    ]


def summary(namespace: str, tenant: str, subject: str) -> SubjectSummary:
    """A subject's summary; a subject never configured nor registered shows the defaults."""
    meta = get_meta(namespace, tenant, subject)
    return summarise(meta or SubjectMeta(namespace=namespace, tenant=tenant, subject=subject))


async def register(
    ctx: BusContext, namespace: str, tenant: str, subject: str, submission: SchemaSubmission
) -> tuple[SchemaVersion, bool]:
    """Register a schema; (version, True) when new, (existing version, False) when identical.

    IncompatibleSchema (409) lists every breaking change against the versions the
    subject's mode compares with.
    """
    check_schema(submission.schema_)
    candidate = SchemaVersion(
        namespace=namespace,
        tenant=tenant,
        subject=subject,
        version=0,  # assigned by the processor
        schema_id=schema_id(submission.schema_),
        schema_=submission.schema_,
        description=submission.description,
        created_at=datetime.now(UTC),
    )
    decision = current_decision(candidate)
    if decision.existing is None and not decision.report.compatible:
        await catch_up(ctx, schema_commands, schemas_table)  # refuse only on a current copy
        decision = current_decision(candidate)
    if decision.existing is not None:
        return decision.existing, False
    refuse_if_incompatible(decision.report)
    await send(
        ctx,
        SchemaCommand(
            op="register", namespace=namespace, tenant=tenant, subject=subject, candidate=candidate
        ),
    )
    decision = current_decision(candidate)
    if decision.existing is None:  # a racing registration changed the subject first
        refuse_if_incompatible(decision.report)
        raise IncompatibleSchema("The subject changed while registering; try again", None)
    return decision.existing, decision.existing.created_at == candidate.created_at


def current_decision(candidate: SchemaVersion) -> Decision:
    meta = get_meta(candidate.namespace, candidate.tenant, candidate.subject) or SubjectMeta(
        namespace=candidate.namespace, tenant=candidate.tenant, subject=candidate.subject
    )
    return decide(meta, live_versions(meta), candidate.schema_id, candidate.schema_)


def refuse_if_incompatible(outcome: CompatibilityReport) -> None:
    if not outcome.compatible:
        raise IncompatibleSchema(
            f"The schema breaks {outcome.mode} compatibility", outcome.model_dump(mode="json")
        )


async def check_compatibility(
    ctx: BusContext, namespace: str, tenant: str, subject: str, check: CompatibilityCheck
) -> CompatibilityReport:
    check_schema(check.schema_)
    await catch_up(ctx, schema_commands, schemas_table)
    meta = get_meta(namespace, tenant, subject) or SubjectMeta(
        namespace=namespace, tenant=tenant, subject=subject
    )
    return report(check.mode or meta.compatibility, check.schema_, live_versions(meta))


async def configure(
    ctx: BusContext, namespace: str, tenant: str, subject: str, mode: CompatibilityMode
) -> SubjectMeta:
    await send(
        ctx,
        SchemaCommand(
            op="configure", namespace=namespace, tenant=tenant, subject=subject, compatibility=mode
        ),
    )
    meta = get_meta(namespace, tenant, subject)
    assert meta is not None
    return meta


async def delete_version(
    ctx: BusContext, namespace: str, tenant: str, subject: str, ref: VersionRef
) -> SchemaVersion:
    """Delete one version; SchemaInUse (409) while a topic's binding resolves to it."""
    await catch_up(ctx, topic_commands, topics_table)  # a binding made anywhere counts
    version = await find_version(ctx, namespace, tenant, subject, ref)
    meta = require_meta(namespace, tenant, subject)
    users = topics_bound_to(version, meta)
    if users:
        raise SchemaInUse(
            f"Version {version.version} of {subject} is bound to {len(users)} topic(s)",
            {"topics": users, "version": version.version},
        )
    await send(
        ctx,
        SchemaCommand(
            op="delete_version", namespace=namespace, tenant=tenant, subject=subject, version=version.version
        ),
    )
    return version


def topics_bound_to(version: SchemaVersion, meta: SubjectMeta) -> list[str]:
    """Topics whose binding resolves to this version (pinned to it, or 'latest' while it is)."""
    users = []
    for topic in _all_topics():
        b = topic.schema_binding
        if b is None or (topic.namespace, topic.tenant, b.subject) != (
            version.namespace,
            version.tenant,
            version.subject,
        ):
            continue
        if b.version == version.version or (b.version == "latest" and meta.versions[-1] == version.version):
            users.append(topic.topic_id)
    return users


async def send(ctx: BusContext, command: SchemaCommand) -> None:
    key = f"{command.namespace}/{command.tenant}/{command.subject}"
    await send_and_wait(ctx, schema_commands, key, command, schemas_table)


def _all_topics() -> list[Topic]:
    # Read from the topics table itself: topics depend on schemas (bindings), not back.
    found = (topics_table.get(key, Topic) for key in topics_table.keys())
    return [t for t in found if t is not None]


async def bound_schema(ctx: BusContext, topic: Topic) -> BoundSchema | None:
    """The version a topic's binding means now, with its compiled validator. A binding to
    'latest' is resolved on every request from this worker's copy of the registry, so a
    newly registered version is used from the moment the registration is answered."""
    binding = topic.schema_binding
    if binding is None:
        return None
    version = await find_version(ctx, topic.namespace, topic.tenant, binding.subject, binding.version)
    return BoundSchema(version, validator_for(version))
