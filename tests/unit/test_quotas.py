"""The quota ledger: fleet-wide windows, allowances that follow demand, all-or-nothing admits."""

from __future__ import annotations

import pytest

from bus.errors import QuotaExceeded
from bus.keys.quota_models import Quota
from bus.keys.quotas import KEEP_WINDOWS, Limit, QuotaLedger, limits_for

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


def exchange(*ledgers: QuotaLedger, now: float) -> None:
    """Every ledger's report reaches every other ledger."""
    reports = [(ledger, ledger.take_report(now=now)) for ledger in ledgers]
    for sender, sent in reports:
        for receiver in ledgers:
            if receiver is not sender:
                for report in sent:
                    receiver.add(report)


def ask(ledger: QuotaLedger, times: int, now: float, per_second: int = 10) -> int:
    """How many of `times` one-record requests the ledger admits."""
    admitted = 0
    for _ in range(times):
        try:
            ledger.admit(lim(per_second=per_second), now=now)
            admitted += 1
        except QuotaExceeded:
            pass
    return admitted


def test_two_workers_asked_alike_share_one_limit() -> None:
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    for ledger in (a, b):  # both were asked for this key in the last window
        ask(ledger, 8, now=W - 0.5)
    exchange(a, b, now=W - 0.4)
    admitted = sum(ask(ledger, 1, now=W + 0.05) for ledger in (a, b) * 10)
    assert admitted == 10  # 5 each: half the limit, not 10 each


def test_early_reports_do_not_let_two_workers_spend_the_same_remainder() -> None:
    """The fault CI caught: once each worker had heard one report of this window from the
    other, both admitted up to what was left of the limit, and the fleet took 36 a second
    against a limit of 20. A worker never spends more than its allowance, whatever it heard."""
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    for ledger in (a, b):
        ask(ledger, 30, now=W - 0.5, per_second=20)
    exchange(a, b, now=W - 0.4)
    first = sum(ask(ledger, 2, now=W + 0.05, per_second=20) for ledger in (a, b))
    exchange(a, b, now=W + 0.15)  # each has now heard the other's report of this window
    rest = sum(ask(ledger, 1, now=W + 0.2, per_second=20) for ledger in (a, b) * 20)
    assert first + rest == 20  # 10 each


def test_allowances_follow_demand_and_a_new_subject_gets_a_fleet_share() -> None:
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    exchange(a, b, now=W - 2.5)  # idle reports: each knows the fleet has two workers
    assert ask(a, 10, now=W - 2.0) == 5  # nothing asked of anyone yet: half the limit
    ask(a, 25, now=W - 1.0)
    ask(b, 5, now=W - 1.0)
    exchange(a, b, now=W - 0.9)
    assert a.allowance("key:k|publish_records", 20, W) == 17  # asked 35 of 40 over two windows
    assert b.allowance("key:k|publish_records", 20, W) == 2
    assert ask(a, 30, now=W + 0.1, per_second=20) == 17


def test_a_request_larger_than_the_allowance_passes_first_in_its_window() -> None:
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    exchange(a, b, now=W - 0.5)
    a.admit(lim(amount=8), now=W + 0.1)  # 8 > half of 10, yet it fits the limit
    with pytest.raises(QuotaExceeded):
        a.admit(lim(amount=1), now=W + 0.2)
    a.admit(lim(amount=8), now=W + 1.1)


def test_a_silent_worker_leaves_the_fleet() -> None:
    a, b = QuotaLedger(worker="a"), QuotaLedger(worker="b")
    exchange(a, b, now=W - 0.5)
    assert a.fleet_size(W) == 2
    a.forget_old(now=W + KEEP_WINDOWS + 1)
    assert a.fleet_size(W + KEEP_WINDOWS + 1) == 1


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
