"""Applies schema-registry commands, in log order.

One partition, so versions of a subject are numbered without gaps or races, and every
registration is checked for compatibility against exactly the versions before it.
"""

from __future__ import annotations

import logging

import faust

from bus.kafka.faust_app import app
from bus.schemas.models import SchemaCommand, SubjectMeta
from bus.schemas.registry import decide
from bus.schemas.store import get_meta, live_versions, subject_key, version_key
from bus.state.command_apply import apply_commands
from tables.schemas import schema_commands, schemas

__all__: list[str] = []

log = logging.getLogger(__name__)


@app.agent(schema_commands)  # type: ignore[untyped-decorator]
async def apply_schema_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, SchemaCommand, schemas, apply)


def apply(command: SchemaCommand) -> None:
    ns, tenant, subject = command.namespace, command.tenant, command.subject
    meta = get_meta(ns, tenant, subject) or SubjectMeta(namespace=ns, tenant=tenant, subject=subject)
    if command.op == "configure" and command.compatibility is not None:
        schemas.put(
            subject_key(ns, tenant, subject), meta.model_copy(update={"compatibility": command.compatibility})
        )
    elif command.op == "register" and command.candidate is not None:
        register(meta, command)
    elif command.op == "delete_version" and command.version in meta.versions:
        remaining = [v for v in meta.versions if v != command.version]
        schemas.remove(version_key(ns, tenant, subject, command.version))
        schemas.put(subject_key(ns, tenant, subject), meta.model_copy(update={"versions": remaining}))
        log.info("schema %s/%s/%s version %d deleted", ns, tenant, subject, command.version)


def register(meta: SubjectMeta, command: SchemaCommand) -> None:
    candidate = command.candidate
    assert candidate is not None
    decision = decide(meta, live_versions(meta), candidate.schema_id, candidate.schema_)
    if decision.existing is not None:
        return
    if not decision.report.compatible:
        log.info("refused incompatible schema for %s (raced another registration)", meta.subject)
        return
    version = meta.next_version
    schemas.put(
        version_key(meta.namespace, meta.tenant, meta.subject, version),
        candidate.model_copy(update={"version": version}),
    )
    schemas.put(
        subject_key(meta.namespace, meta.tenant, meta.subject),
        meta.model_copy(update={"versions": [*meta.versions, version], "next_version": version + 1}),
    )
    log.info("schema %s/%s/%s version %d registered", meta.namespace, meta.tenant, meta.subject, version)
