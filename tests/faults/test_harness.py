"""The harness's comparison of receipts with the log, on a made-up load: each kind of
fault it must count is counted, and a clean load has no problems. No Kafka needed."""

from __future__ import annotations

from tests.faults.harness import Load, LoadConfig, Outcome, Receipt, Targets, table

A, B = "http://127.0.0.1:1", "http://127.0.0.1:2"
TOPIC = "prefix.faults.t.load-0"


def made_up_load(acked: int) -> tuple[Load, list[str]]:
    """A load of 20 s (from t=100) in which publisher 0's messages 0..acked-1 were each
    acknowledged through worker A at second seq+1, at offset seq: the load and the ids."""
    load = Load(Targets([A, B]), "admin", LoadConfig(state_partitions=1))
    load.started, load.stopped = 100.0, 120.0
    load.membership = {A: [(100.0, 120.0)], B: [(100.0, 120.0)]}
    ids = [f"{load.run_id}-0-{seq}" for seq in range(acked)]
    for seq, message_id in enumerate(ids):
        load.first_attempt[message_id] = 100.5 + seq
        load.acked_at[message_id] = 101.0 + seq
        load.receipts[message_id] = Receipt(TOPIC, 0, seq)
        load.outcomes.append(Outcome(A, 101.0 + seq, 0.5, 200, "ok"))
    return load, ids


def test_a_log_that_holds_every_receipt_once_in_order_is_clean() -> None:
    load, ids = made_up_load(19)
    report = load.report("clean", [(load.receipts[i], i) for i in ids])
    assert report.problems() == [], report
    assert report.acknowledged == 19 and report.longest_gap_s == 1.0
    assert report.worker_gaps_s == {A: 1.0, B: 20.0}  # B was asked nothing


def test_lost_duplicated_misplaced_reordered_and_wrong_answers_are_counted() -> None:
    load, ids = made_up_load(4)
    load.polls.append(Outcome(B, 105.0, 0.01, 401, "401"))
    log = [
        (Receipt(TOPIC, 0, 0), ids[0]),
        (Receipt(TOPIC, 0, 1), ids[2]),  # ids[1] lost; ids[2] not where its receipt says
        (Receipt(TOPIC, 0, 3), ids[3]),
        (Receipt(TOPIC, 0, 4), ids[3]),  # ids[3] twice
        (Receipt(TOPIC, 0, 5), ids[0]),  # ids[0] twice, the second after ids[3]: out of order
    ]
    report = load.report("faulty", log)
    assert (report.lost, report.duplicated, report.misplaced, report.out_of_order) == (1, 2, 1, 1)
    assert report.wrong_answers == 1
    assert report.longest_gap_s == 16.0 and report.longest_gap_at == 4.0  # after the last ack
    problems = report.problems()
    assert {"lost 1", "duplicated 2", "misplaced 1", "out of order 1", "wrong 401/403/404 1"} <= set(problems)
    assert report.unserved_at_end  # nothing acknowledged in the last 10 s
    assert "faulty" in table([report])
