"""V8 ledger.phases and V26 voting.period: every event in its phase, in the lifecycle order, and voting
within its period (or departing from it only with a recorded reason)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from ledger.events import BALLOT_TYPES, LIFECYCLE_RANK, ONCE, EventType, Phase
from ledger.record import TextRuleError, check_display_text

from ._checks import fail
from ._manifest import parse_time
from ._report import Report
from ._state import BOUND, HEX64, Event, Options, State

__all__ = ["BALLOT_TYPES", "EVENTS", "ONCE", "RANK", "check_order", "lifecycle_complete"]

#: the record format's event names, lifecycle order, once-only events and ballots (``ledger.events``)
RANK = LIFECYCLE_RANK
E = EventType


def check_order(st: State, i: int, etype: str) -> None:
    # V8 ledger.phases: "Every event has a known type and appears in its phase ..., in the order of
    # docs/events.md."
    rank = RANK.get(etype)
    if rank is None:
        fail("ledger.phases", f"unknown event type {etype!r}", entry=i)
    if etype in ONCE:
        if etype in st.seen_once:
            fail("ledger.phases", f"a second {etype} entry", entry=i)
        st.seen_once.add(etype)
    if etype in (E.ROLL_COMMITMENT, E.BOOTH_PUBLISHED):
        if st.rank > Phase.KEYED:
            fail("ledger.phases", f"{etype} after voting opened", entry=i)
        return
    if etype == E.EVIDENCE_EXPORTED:
        if E.VOTING_OPENED not in st.seen_once:
            fail("ledger.phases", "evidence.exported before voting opened", entry=i)
        return
    if etype in _KIOSK_TYPES:
        _kiosk_order(st, i, etype)
        return
    if etype == E.MANIFEST and i != 0:
        fail("ledger.phases", "a manifest after entry 0", entry=i)
    if rank < st.rank:
        fail("ledger.phases", f"{etype} after a later phase's event", entry=i)
    if etype == E.VOTING_OPENED and (
        E.ROLL_COMMITMENT not in st.seen_once or E.JOINT_KEY not in st.seen_once
    ):
        fail("ledger.phases", "voting opened before the joint key and roll commitment", entry=i)
    if etype == E.VOTING_OPENED:
        st.opened_entry = i
    if etype in BALLOT_TYPES and E.VOTING_OPENED not in st.seen_once:
        fail("ledger.phases", "a ballot before voting opened", entry=i)
    if etype == E.VOTING_EXTENDED and E.VOTING_OPENED not in st.seen_once:
        fail("ledger.phases", "voting.extended before voting opened", entry=i)
    st.rank = rank


_KIOSK_TYPES: Final[frozenset[str]] = frozenset(
    {E.KIOSK_ENROLLED, E.KIOSK_REVOKED, E.KIOSK_OPENED, E.KIOSK_CLOSED}
)


def _kiosk_order(st: State, i: int, etype: str) -> None:
    # V8 ledger.phases: "the kiosk events do not advance the phase: kiosk.enrolled comes after the manifest
    # and before voting.closed, kiosk.revoked after the manifest, kiosk.opened between voting.opened and
    # voting.closed, kiosk.closed after voting.opened" (each kiosk's own order, an enrolment before its
    # revocation and an opening before its closing, is V30's)
    if i == 0:
        fail("ledger.phases", f"{etype} before the manifest", entry=i)
    if etype == E.KIOSK_ENROLLED and E.VOTING_CLOSED in st.seen_once:
        fail("ledger.phases", "kiosk.enrolled after voting closed", entry=i)
    if etype in (E.KIOSK_OPENED, E.KIOSK_CLOSED) and E.VOTING_OPENED not in st.seen_once:
        fail("ledger.phases", f"{etype} before voting opened", entry=i)
    if etype == E.KIOSK_OPENED and E.VOTING_CLOSED in st.seen_once:
        fail("ledger.phases", "kiosk.opened after voting closed", entry=i)


#: the longest override or extension reason (code points), as the server enforces it
_MAX_REASON: Final[int] = 500


def _t(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(p: dict[str, Any], key: str, i: int) -> None:
    try:
        check_display_text(p.get(key), max_chars=_MAX_REASON)
    except TextRuleError as e:
        fail("voting.period", f"the reason {e}", entry=i)


def voting_period(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    """V26 voting.period: "voting.opened is not before the manifest's voting_period.opens and voting.closed
    not before the end of voting in force (voting_period.closes, or the last voting.extended's closes) unless
    the entry carries override.reason; voting.closed is never after that end; each voting.extended moves
    the end later and carries a reason; an override appears only where the period is departed from." The
    ballots between voting.opened and voting.closed are V8's."""
    info = st.info
    assert info is not None
    end = st.voting_closes or info.closes
    if etype == E.VOTING_EXTENDED:
        closes = parse_time(p.get("closes"))
        if set(p) != BOUND | {"closes", "reason"} or closes is None:
            fail("voting.period", "voting.extended is exactly {closes (UTC time), reason}", entry=i)
        _reason(p, "reason", i)
        if closes <= end:
            fail(
                "voting.period",
                f"voting.extended moves the end to {_t(closes)}, not after {_t(end)}",
                entry=i,
            )
        st.voting_closes = closes
        report.passed("voting.period")
        return
    field_ = "opened_at" if etype == E.VOTING_OPENED else "closed_at"
    t = parse_time(p.get(field_))
    if not set(BOUND | {field_}) <= set(p) <= BOUND | {field_, "override"} or t is None:
        fail("voting.period", f"{etype} is {{{field_} (UTC time)[, override]}}", entry=i)
    override = p.get("override")
    if override is not None:
        if not isinstance(override, dict) or set(override) != {"reason"}:
            fail("voting.period", "override is exactly {reason}", entry=i)
        _reason(override, "reason", i)
    if etype == E.VOTING_OPENED:
        st.opened_at = t
        if t >= info.closes:
            fail("voting.period", f"voting opened at {_t(t)}, after the voting period ended", entry=i)
        early = t < info.opens
        what = f"voting opened at {_t(t)}, before the voting period opens ({_t(info.opens)})"
    else:
        if st.opened_at is not None and t < st.opened_at:
            fail("voting.period", f"voting closed at {_t(t)}, before it opened", entry=i)
        if t > end:
            fail(
                "voting.period",
                f"voting closed at {_t(t)}, after the end of voting {_t(end)} (a late close is a "
                "voting.extended entry, published before the end)",
                entry=i,
            )
        early = t < end
        what = f"voting closed at {_t(t)}, before the end of voting ({_t(end)})"
    if early and override is None:
        fail("voting.period", f"{what} without a recorded override", entry=i)
    if not early and override is not None:
        fail("voting.period", f"{etype} records an override although it follows the voting period", entry=i)
    report.passed("voting.period")


_EXPORTED_KEYS: Final[frozenset[str]] = BOUND | {"oversight_key", "evidence_count", "export_hash"}


def evidence_exported(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    """V8: an export of the sealed authentication evidence to the observers (docs/events.md): exactly its
    keys, the manifest's oversight key, a count and the export's SHA-256. The export itself is not in the
    record (only the observers can open it); ``tvote audit-evidence`` checks it against this entry."""
    assert st.info is not None
    ov = st.info.manifest.get("oversight")
    n = p.get("evidence_count")
    if (
        set(p) != _EXPORTED_KEYS
        or not isinstance(ov, dict)
        or p.get("oversight_key") != ov.get("x25519_public_key")
        or not isinstance(n, int)
        or isinstance(n, bool)
        or n < 0
        or not isinstance(p.get("export_hash"), str)
        or not HEX64.fullmatch(p["export_hash"])
    ):
        fail(
            "ledger.phases",
            "evidence.exported is exactly {oversight_key (the manifest's), evidence_count, export_hash}",
            entry=i,
        )


def lifecycle_complete(report: Report, st: State, opts: Options) -> None:
    missing = [
        t
        for t in (E.VOTING_CLOSED, E.TALLY_ENCRYPTED, E.TALLY_RESULT, E.RESULT_DECLARATION)
        if t not in st.seen_once
    ]
    later = {
        E.VOTING_CLOSED: (),
        E.TALLY_ENCRYPTED: ("tally.counting-rule", "tally.aggregate", "tally.partial-decryption"),
        E.TALLY_RESULT: ("tally.combination", "tally.result"),
        E.RESULT_DECLARATION: ("result.pdf",),
    }
    if not missing:
        return
    if opts.partial:
        for t in missing:
            for check in later[t]:
                report.not_applicable(check, f"the record has no {t} yet")
        report.notes.append(f"incomplete record accepted (--partial): missing {', '.join(missing)}")
        return
    report.fail(
        "ledger.phases",
        f"the record ends before {missing[0]} (an incomplete record is accepted only with --partial)",
    )
    for t in missing:
        for check in later[t]:
            report.not_applicable(check, f"the record has no {t}")


EVENTS: Final[dict[str, Event]] = {
    E.VOTING_OPENED: Event("record.format", voting_period),
    E.VOTING_EXTENDED: Event("record.format", voting_period),
    E.VOTING_CLOSED: Event("record.format", voting_period),
    E.EVIDENCE_EXPORTED: Event("record.format", evidence_exported),
}
