"""Who is metered for a request: the caller's key, and each tenant whose topics it touches."""

from __future__ import annotations

from dataclasses import dataclass

from bus.http.access import Principal
from bus.keys.auth import BOOTSTRAP_ID
from bus.keys.quota_models import Quota
from bus.keys.quotas import LEDGER, limits_for
from bus.keys.store import get_key, get_tenant_quota

__all__ = ["PublishMeter", "admit_publish", "delivery_subjects", "has_delivery_quota", "publish_meter"]

Subject = tuple[str, Quota | None]


def key_subject(principal: Principal) -> Subject:
    key = None if principal.key_id == BOOTSTRAP_ID else get_key(principal.key_id)
    return f"key:{principal.key_id}", key.quota if key is not None else None


def tenant_subject(namespace: str, tenant: str) -> Subject:
    entry = get_tenant_quota(namespace, tenant)
    return f"tenant:{namespace}/{tenant}", entry.quota if entry is not None else None


@dataclass(frozen=True)
class PublishMeter:
    """The quotas one publish request is metered against, each read once."""

    key: Subject
    tenants: dict[tuple[str, str], Subject]


def publish_meter(principal: Principal, tenants: set[tuple[str, str]]) -> PublishMeter | None:
    """What a publish to these tenants counts against; None when no publish quota applies
    (then there is nothing to count)."""
    key = key_subject(principal)
    by_tenant = {(ns, t): tenant_subject(ns, t) for ns, t in tenants}
    if not limits_for([key, *by_tenant.values()], 1, 1, "publish"):
        return None
    return PublishMeter(key, by_tenant)


def admit_publish(meter: PublishMeter, sizes: dict[tuple[str, str], tuple[int, int]]) -> None:
    """sizes: (namespace, tenant) -> (records, payload bytes), for the tenants of the meter.
    QuotaExceeded (429) when over."""
    records = sum(r for r, _ in sizes.values())
    size = sum(b for _, b in sizes.values())
    limits = limits_for([meter.key], records, size, "publish")
    for tenant, (r, b) in sizes.items():
        limits += limits_for([meter.tenants[tenant]], r, b, "publish")
    LEDGER.admit(limits)


def delivery_subjects(principal: Principal, namespace: str, tenant: str) -> list[Subject]:
    return [key_subject(principal), tenant_subject(namespace, tenant)]


def has_delivery_quota(subjects: list[Subject]) -> bool:
    return bool(limits_for(subjects, 1, 1, "deliver"))
