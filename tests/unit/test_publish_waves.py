"""A batch's records with message ids are decided per owner, in waves: what runs together
and what waits (bus.publish.dedup.in_waves)."""

from __future__ import annotations

from bus.publish.dedup import in_waves

K = ("topic", b"k")  # one Kafka key
L = ("topic", b"l")  # another


def test_unkeyed_records_go_in_one_wave_one_group_per_owner() -> None:
    assert in_waves([1, 2, 1, None, 2], [None] * 5) == [{1: [0, 2], 2: [1, 4], None: [3]}]


def test_a_keys_record_waits_for_the_next_wave_when_its_owner_changes() -> None:
    # K: owners 1, 1, 2, 1 -> waves 0, 0, 1, 2; L's records never wait for K's.
    waves = in_waves([1, 1, 2, 3, 1], [K, K, K, L, K])
    assert waves == [{1: [0, 1], 3: [3]}, {2: [2]}, {1: [4]}]


def test_every_keys_records_keep_request_order_across_waves() -> None:
    owners = [n % 3 for n in range(30)]
    order = [K if n % 2 else L for n in range(30)]
    placed = [
        (wave, position)
        for wave, groups in enumerate(in_waves(owners, order))
        for positions in groups.values()
        for position in positions
    ]
    for key in (K, L):
        mine = sorted((w, p) for w, p in placed if order[p] == key)
        assert [p for _, p in mine] == sorted(p for _, p in mine)
