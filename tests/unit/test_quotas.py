"""The quota ledger: fleet-wide windows, fair shares early in a window, all-or-nothing admits."""

from __future__ import annotations

import pytest

from bus.errors import QuotaExceeded
from bus.keys.quota_models import Quota
from bus.keys.quotas import Limit, QuotaLedger, limits_for

W = 1_800_000_000  # a window (unix second)


def lim(amount: int = 1, per_second: int = 10, dimension: str = "publish_records") -> list[Limit]:
    return [Limit("key:k", dimension, per_second, amount)]


def test_a_lone_worker_gets_the_whole_limit_then_429_with_retry_after() -> None:
    ledger = QuotaLedger(worker="a")
    for _ in range(10):
        ledger.admit(lim(), now=W + 0.01)
    with pytest.raises(QuotaExceeded) as refused:
        ledger.admit(lim(), now=W + 0.3)
    assert refused.value.status == 429 and refused.value.retry_after == 1
    ledger.admit(lim(), now=W + 1.01)  # a new window


def test_two_workers_share_one_limit() -> None:
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    for ledger in (a, b):  # both served this key in the last window, so each knows the other
        ledger.admit(lim(), now=W - 0.5)
        other = b if ledger is a else a
        for report in ledger.take_report():
            other.add(report)
    admitted = 0
    for ledger in (a, b) * 10:  # early in the window: nobody has the other's report yet
        try:
            ledger.admit(lim(), now=W + 0.05)
            admitted += 1
        except QuotaExceeded:
            pass
    assert admitted == 10  # 5 each: the fair share, not 10 each
    for report in a.take_report():
        b.add(report)
    with pytest.raises(QuotaExceeded):
        b.admit(lim(), now=W + 0.6)  # later in the window: b sees a's usage, the fleet is at 10


def test_admit_is_all_or_nothing_and_bytes_count_separately() -> None:
    ledger = QuotaLedger(worker="a")
    both = lim(1, 10) + lim(900, 1000, "publish_bytes")
    ledger.admit(both, now=W + 0.5)
    with pytest.raises(QuotaExceeded) as refused:
        ledger.admit(lim(1, 10) + lim(200, 1000, "publish_bytes"), now=W + 0.5)
    assert refused.value.details["dimension"] == "publish_bytes"
    assert ledger.used(W, "key:k|publish_records") == 1  # the refused request counted nothing


def test_limits_only_for_quotas_that_are_set() -> None:
    found = limits_for([("key:k", Quota(publish_records_per_s=5)), ("tenant:a/b", None)], 3, 100, "publish")
    assert [(x.subject, x.dimension, x.amount) for x in found] == [("key:k", "publish_records", 3)]
    assert limits_for([("key:k", Quota(deliver_bytes_per_s=9))], 3, 100, "publish") == []


def test_a_late_report_does_not_let_both_workers_take_the_whole_limit() -> None:
    """Under load a report can come later than two report intervals: until the other worker
    has reported for this window (or stays silent past UNHEARD_S), each keeps to its share."""
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    for ledger in (a, b):
        ledger.admit(lim(), now=W - 0.5)
        other = b if ledger is a else a
        for report in ledger.take_report():
            other.add(report)
    admitted = 0
    for ledger in (a, b) * 10:  # 0.3 s in, no report of this window has arrived anywhere
        try:
            ledger.admit(lim(), now=W + 0.3)
            admitted += 1
        except QuotaExceeded:
            pass
    assert admitted == 10  # 5 each, not 10 each
    for report in b.take_report():  # b's report arrives: a now counts b's 5
        a.add(report)
    with pytest.raises(QuotaExceeded):
        a.admit(lim(), now=W + 0.35)
    c = QuotaLedger(worker="c")  # alone (a, b silent): past UNHEARD_S it takes what is left
    for report in a.take_report():
        c.add(report)
    for _ in range(5):
        c.admit(lim(), now=W + 0.6)
