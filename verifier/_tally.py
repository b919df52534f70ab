"""The tally: reading the tally entries, V17 tally.counting-rule and V18 tally.aggregate.

The running sum of every cast ballot comes from the batches (:mod:`verifier._ballots`); here the ballots
that do not count are subtracted, streamed from the on-disk index (:class:`verifier._counting.BallotIndex`)
in ledger order, so nothing grows with the number of ballots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from crypto import Ciphertext, PartialDecryption, Point
from ledger.events import BOUND_KEYS, EventType
from ledger.record import BallotStatus, CountedSet

from . import _ballots
from ._checks import fail
from ._counting import BallotIndex
from ._exec import BatchExecutor
from ._report import Report
from ._source import RecordSource
from ._state import HEX64, ZERO, Event, State, read_selection_map

__all__ = ["EVENTS", "aggregate", "counting_rule"]

_TALLY_KEYS: Final[frozenset[str]] = BOUND_KEYS | {"counted_root", "ciphertexts"}
#: the ballots that do not count, decoded and summed by a worker this many at a time (V18)
DROPPED_BATCH: Final[int] = 256


def tally_encrypted(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    info = st.info
    assert info is not None
    st.tally_entry = i
    _read_counted_root(report, st, i, p)
    st.tally = read_selection_map(p.get("ciphertexts"), info, Ciphertext.from_dict, "tally.aggregate", i)


def tally_partial(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    info = st.info
    assert info is not None
    t = p.get("trustee")
    parts = read_selection_map(
        p.get("partials"), info, PartialDecryption.from_dict, "tally.partial-decryption", i
    )
    if not isinstance(t, int) or t in st.partials:
        fail("tally.partial-decryption", "trustee index missing or a second partial entry", entry=i)
    st.partials[t] = (i, parts)


def tally_excluded(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    st.excluded[int(p["trustee"])] = i


def tally_result(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    st.result_entry, st.result = i, p


def result_declaration(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    st.declaration_entry, st.declaration = i, p


def _read_counted_root(report: Report, st: State, i: int, p: dict[str, Any]) -> None:
    """``tally.encrypted`` = exactly ``counted_root`` + ``ciphertexts`` + the election binding keys.

    ``counted_root`` is the RFC 9162 Merkle root over the leaves ``leaf_hash(ballot_hash bytes)`` of the
    counted ballots in ledger order (``docs/events.md`` row 13); V17 recomputes it. There is no other form:
    a ``counted`` list is refused (it would not fit one 1 MiB entry at city scale, and two forms are two
    parsers to get right). A missing or malformed root fails V17; any key outside the four fails V1.
    """
    extra = sorted(set(p) - _TALLY_KEYS)
    if extra:
        report.fail(
            "record.format",
            f"tally.encrypted has keys {extra} outside {sorted(_TALLY_KEYS)}",
            entry=i,
        )
    croot = p.get("counted_root")
    if isinstance(croot, str) and HEX64.fullmatch(croot):
        st.published_counted_root = bytes.fromhex(croot)
        return
    if croot is None and "counted" in p:
        msg = "tally.encrypted carries a counted list; only counted_root (a Merkle root) is accepted"
    elif croot is None:
        msg = "tally.encrypted has no counted_root"
    else:
        msg = "tally.encrypted's counted_root is not 64 lowercase hex digits"
    report.fail("tally.counting-rule", msg, entry=i)


def counting_rule(report: Report, st: State, index: BallotIndex) -> None:
    """V17 tally.counting-rule: the derived counted set against tally.encrypted's counted_root.

    Streams the derived statuses from the on-disk index in ledger order and folds the counted ballots'
    hashes into a Merkle compact range (O(log n) hashes), so nothing here grows with the ballots.
    """
    # V17 tally.counting-rule: "The counted set re-derived from the ledger by the manifest's revote rule
    # ... equals the set tally.encrypted's counted_root commits to (the RFC 9162 root over the counted
    # ballot hashes in ledger order), and the published counts agree."
    counted = CountedSet()

    def bad(msg: str, entry: int | None) -> None:
        report.fail("tally.counting-rule", msg, entry=entry)

    dropped: list[int] = []  # the ballots not counted, for V18 (aggregate), recorded a batch at a time
    for d in index.derived():
        counted.add(d)
        if d.status is not BallotStatus.COUNTED:
            dropped.append(d.index)
            if len(dropped) >= DROPPED_BATCH:
                index.add_not_counted(dropped)
                dropped.clear()
        if d.seq != d.expected_seq:
            bad(f"seq {d.seq}, but this is the voter's submission {d.expected_seq}", d.index)
        if d.status is BallotStatus.EXTRA_KIOSK:
            bad("a second kiosk ballot of the same voter (the server must refuse it)", d.index)
    index.add_not_counted(dropped)
    counts = counted.summary(st.spoiled)
    report.summary = counts
    if st.published_counted_root is not None and counted.root() != st.published_counted_root:
        bad(
            "tally.encrypted's counted_root is not the root of the counted set the rule derives "
            f"({counts['counted']} ballots)",
            st.tally_entry,
        )
    if st.result is not None:
        for k, v in counts.items():
            if st.result.get(k) != v:
                bad(f"published {k} = {st.result.get(k)!r}, re-derived {v}", st.result_entry)
    if st.tally_entry is not None:  # else n/a with --partial, or V8 fails (lifecycle_complete)
        report.passed("tally.counting-rule")


def aggregate(src: RecordSource, report: Report, st: State, index: BallotIndex, ex: BatchExecutor) -> None:
    # V18 tally.aggregate: "For every selection, the published encrypted tally equals the product (sum) of
    # the counted ballots' ciphertexts." The running sum holds every cast ballot; subtract the ones that
    # do not count (streamed from the index in ledger order, merged with a second pass over the entries).
    info = st.info
    assert info is not None
    if st.tally is None:
        return

    def subtract(results: Iterator[dict[tuple[str, str], tuple[str, str]]]) -> None:
        for sums in results:
            for key, (a, b) in sums.items():
                have = st.sums.get(key, ZERO)
                st.sums[key] = Ciphertext(have.a - Point.from_hex(a), have.b - Point.from_hex(b))

    # the ballots not counted are the ones counting_rule (which runs first) recorded in the index. A ballot
    # the workers read has its line's byte range in the index: read just that line; any other is
    # found by a second pass over the entries (both go forward: the dropped ballots come in ledger order).
    # The workers decode them and sum their ciphertexts (_ballots.ciphertext_sums), DROPPED_BATCH at a time.
    lines = enumerate(src.lines())
    batch: list[bytes] = []
    for i_dropped, at in index.not_counted_lines():  # what counting_rule found, in ledger order
        if at is not None:
            batch.append(src.read_line(*at))
        else:
            batch.append(next((ln for i, (_, ln) in lines if i == i_dropped), b""))
        if len(batch) >= DROPPED_BATCH:
            subtract(ex.submit(_ballots.ciphertext_sums, batch))
            batch = []
    if batch:
        subtract(ex.submit(_ballots.ciphertext_sums, batch))
    subtract(ex.drain())
    for c in info.contests:
        for s in c.selections:
            if st.sums.get((c.id, s), ZERO) != st.tally[(c.id, s)]:
                report.fail(
                    "tally.aggregate",
                    f"encrypted tally of {c.id}/{s} is not the sum of the counted ballots",
                    entry=st.tally_entry,
                )
    report.passed("tally.aggregate")


EVENTS: Final[dict[str, Event]] = {
    EventType.TALLY_ENCRYPTED: Event("tally.aggregate", tally_encrypted),
    EventType.TALLY_PARTIAL: Event("tally.partial-decryption", tally_partial),
    EventType.TALLY_EXCLUDED: Event("tally.partial-decryption", tally_excluded),
    EventType.TALLY_RESULT: Event("tally.result", tally_result),
    EventType.RESULT_DECLARATION: Event("result.pdf", result_declaration),
}
