"""The counting rule of ``ledger.record`` (one definition for the server's tally and the verifier): the
on-disk :class:`CountingIndex` against the plain :func:`reference_statuses`, with Hypothesis (re-votes, kiosk
ballots overriding internet ones, second kiosk ballots, rows added out of ledger order), and the counted set
folded by :class:`CountedSet` against ``ledger.merkle``'s root of the counted hashes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import leaf_hash, root
from ledger.record import (
    BallotStatus,
    CastRow,
    CountedSet,
    CountingIndex,
    counted_leaf,
    reference_statuses,
)
from tests.strategies import cast_sequences


def _rows(seq: list[tuple[int, str]]) -> list[CastRow]:
    """Ledger indices with gaps (other entries between the ballots), hex ballot hashes, seq 1, 2, ... per
    voter."""
    seqs: dict[int, int] = {}
    out = []
    for i, (v, ch) in enumerate(seq):
        seqs[v] = seqs.get(v, 0) + 1
        out.append(CastRow(i * 3 + 1, f"{i:064x}", f"voter{v}", ch, seqs[v]))
    return out


@settings(max_examples=100, deadline=None)
@given(cast_sequences, st.randoms(use_true_random=False))
def test_index_statuses_and_counted_set_match_the_reference(
    seq: list[tuple[int, str]], rnd: random.Random
) -> None:
    rows = _rows(seq)
    want = reference_statuses(rows)
    shuffled = list(rows)
    rnd.shuffle(shuffled)  # the index orders by ledger index, whatever the order rows come in
    counted = CountedSet()
    with CountingIndex() as index:
        for r in shuffled:
            index.add_cast(r)
        derived = list(index.derived())
        assert index.distinct_voters() == len({r.alias for r in rows})
        assert index.repeated_hash() is None
    for d in derived:
        counted.add(d)
    assert [d.index for d in derived] == [r.index for r in rows]  # ledger order
    assert {d.index: d.status for d in derived} == want
    assert [d.expected_seq for d in derived] == [r.seq for r in rows]
    # every voter has exactly one counted ballot
    assert sorted(r.alias for r in rows if want[r.index] is BallotStatus.COUNTED) == sorted(
        {r.alias for r in rows}
    )
    statuses = list(want.values())
    assert counted.summary(spoiled=2) == {
        "cast": len(rows),
        "counted": statuses.count(BallotStatus.COUNTED),
        "superseded": statuses.count(BallotStatus.SUPERSEDED),
        "overridden": statuses.count(BallotStatus.OVERRIDDEN),
        "spoiled": 2,
    }
    assert counted.count(BallotStatus.EXTRA_KIOSK) == statuses.count(BallotStatus.EXTRA_KIOSK)
    # counted_root: RFC 9162 over leaf_hash(ballot hash bytes) of the counted ballots in ledger order
    hashes = [bytes.fromhex(r.ballot_hash) for r in rows if want[r.index] is BallotStatus.COUNTED]
    assert counted.root() == root([leaf_hash(h) for h in hashes])


def test_counting_rule_examples() -> None:
    casts = [
        CastRow(1, "a", "v", "internet", 1),
        CastRow(2, "b", "v", "internet", 2),
        CastRow(3, "c", "w", "internet", 1),
        CastRow(4, "d", "w", "kiosk", 2),
        CastRow(5, "e", "w", "internet", 3),
        CastRow(6, "f", "w", "kiosk", 4),
    ]
    want = {
        1: BallotStatus.SUPERSEDED,
        2: BallotStatus.COUNTED,
        3: BallotStatus.OVERRIDDEN,
        4: BallotStatus.COUNTED,
        5: BallotStatus.OVERRIDDEN,
        6: BallotStatus.EXTRA_KIOSK,
    }
    assert reference_statuses(casts) == want
    with CountingIndex() as index:
        for c in casts:
            index.add_cast(c)
        assert {d.index: d.status for d in index.derived()} == want
        index.drop_cast([2])  # the verifier's: a replay is no counting row
        assert {d.index: d.status for d in index.derived()}[1] is BallotStatus.COUNTED


def test_a_repeated_ballot_hash_is_named_at_its_second_use() -> None:
    with CountingIndex() as index:
        for i, h in enumerate(["aa", "bb", "cc", "bb", "aa", "bb"]):
            index.add_cast(CastRow(10 + i, h, f"voter{i}", "internet", 1))
        assert index.repeated_hash() == (13, "bb")


def test_counted_leaf_of_a_hash_that_is_not_hex_matches_no_published_root() -> None:
    assert counted_leaf("ab" * 32) == leaf_hash(bytes.fromhex("ab" * 32))
    assert counted_leaf("not hex") == leaf_hash(b"not hex")


def test_the_index_file_is_removed_on_close(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with CountingIndex(str(tmp_path), prefix="count-") as index:
        index.add_cast(CastRow(1, "aa", "v", "internet", 1))
        assert [p.name.startswith("count-") for p in tmp_path.iterdir()] == [True]
    assert list(tmp_path.iterdir()) == []
