"""Typed reads of the schemas table (tables/schemas.py): what the service and the processor share."""

from __future__ import annotations

from bus.schemas.models import SchemaVersion, SubjectMeta
from tables.schemas import schemas

__all__ = ["all_subjects", "get_meta", "get_version", "live_versions", "subject_key", "version_key"]


def subject_key(namespace: str, tenant: str, subject: str) -> str:
    return f"s|{namespace}/{tenant}/{subject}"


def version_key(namespace: str, tenant: str, subject: str, version: int) -> str:
    return f"v|{namespace}/{tenant}/{subject}|{version:08d}"


def get_meta(namespace: str, tenant: str, subject: str) -> SubjectMeta | None:
    return schemas.get(subject_key(namespace, tenant, subject), SubjectMeta)


def get_version(namespace: str, tenant: str, subject: str, version: int) -> SchemaVersion | None:
    return schemas.get(version_key(namespace, tenant, subject, version), SchemaVersion)


def live_versions(meta: SubjectMeta) -> list[SchemaVersion]:
    found = (get_version(meta.namespace, meta.tenant, meta.subject, v) for v in meta.versions)
    return [v for v in found if v is not None]


def all_subjects() -> list[SubjectMeta]:
    found = (schemas.get(key, SubjectMeta) for key in schemas.keys("s|"))
    return [m for m in found if m is not None]
