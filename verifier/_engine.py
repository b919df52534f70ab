"""The verification run: one streaming pass over ``entries.jsonl`` plus a short second pass.

Order of work (``docs/verifier.md`` §"How a run proceeds"):

1. V1-V6 (format, chain, tree, checkpoints, cosignatures, consistency): ``ledger.record.check_sequence``
   (one streaming pass, O(log n) state), whose typed errors are mapped to the numbered checks
   (:mod:`verifier._ledger`); with more than one worker it runs in its own process beside step 2.
2. One pass over the entries, in ledger order: V7 manifest and election binding, V8 lifecycle order,
   V9-V11 key ceremony, V12 roll commitment, V15 uniqueness and the counting rows, V23 privacy; ballots
   are batched (bounded) and sent to the executor for V13, V14, V16, each batch returning the homomorphic
   sum of its cast ballots, so the tally accumulates incrementally.
3. V17 counting rule from the on-disk index, streamed in ledger order: the counted ballots' hashes are
   folded into a Merkle compact range whose root must equal ``tally.encrypted``'s ``counted_root``; a
   second pass subtracts the ballots that do not count (superseded, overridden) from the running sum,
   giving V18; then V19-V21 (decryption) and V22 (PDF).

Every check failure is recorded (not raised), so one run reports everything that is wrong. Memory does not
grow with the number of ballots: per-ballot rows live in the temporary SQLite index
(:class:`verifier._counting.BallotIndex`), batches in flight are bounded, and the report lists at most
``MAX_FAILURES_PER_CHECK`` failures per check.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import multiprocessing
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from crypto import (
    Ciphertext,
    Complaint,
    ComplaintAnswer,
    CryptoError,
    EncryptedShare,
    InvalidEncoding,
    JointKey,
    PartialDecryption,
    Point,
    TrusteeCommitments,
    TrusteeEnrolment,
    qualify,
    resolve_complaint,
    verify_partial,
)
from crypto.hazmat import IDENTITY, lagrange_coefficient, small_multiple
from ledger.merkle import CompactRange, leaf_hash
from ledger.record import TextRuleError, ballot_unique_values, check_display_text, repeats_within

from . import _ballots, _ledger
from ._checks import fail, failure
from ._counting import BallotIndex, CastRow, Status
from ._errors import CheckFailed
from ._exec import BatchExecutor, DaskExecutor
from ._manifest import ElectionInfo, parse_time, read_manifest
from ._pins import OfficialPins, check_official_pins
from ._privacy import scan_payload
from ._report import Report
from ._source import RecordSource, open_record

__all__ = ["Options", "verify_record"]

#: Lifecycle rank of each event type (``docs/events.md``, "The order below is the lifecycle order").
_RANK: Final[dict[str, int]] = {
    "election.manifest": 0,
    "trustee.registered": 1,
    "trustee.shares": 1,
    "trustee.complaint": 1,
    "trustee.answer": 1,
    "trustee.disqualified": 1,
    "election.joint-key": 2,
    "roll.commitment": 2,  # anywhere before voting.opened (does not advance the phase)
    "voting.opened": 3,
    "ballot.cast": 4,
    "ballot.spoiled": 4,
    "voting.extended": 4,
    "evidence.exported": 4,  # after voting.opened, at any later time (does not advance the phase)
    "voting.closed": 5,
    "tally.encrypted": 6,
    "tally.partial": 7,
    "tally.excluded": 7,
    "tally.result": 8,
    "result.declaration": 9,
}
_ONCE: Final[frozenset[str]] = frozenset(
    {
        "election.manifest",
        "election.joint-key",
        "roll.commitment",
        "voting.opened",
        "voting.closed",
        "tally.encrypted",
        "tally.result",
        "result.declaration",
    }
)
_BALLOT_TYPES: Final[frozenset[str]] = frozenset({"ballot.cast", "ballot.spoiled"})
_ZERO: Final[Ciphertext] = Ciphertext(IDENTITY, IDENTITY)
_TALLY_KEYS: Final[frozenset[str]] = frozenset({"counted_root", "ciphertexts", "election_id", "base_hash"})
_HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Options:
    workers: int = 1
    scheduler: str | None = None
    dask_client: Any = None
    batch_size: int = 256
    #: accept a record that stops before the result (an audit during voting); default: fail closed
    partial: bool = False
    #: commission root certificates (``cryptography.x509.Certificate``) for the result PDF (V22)
    pdf_trust_roots: tuple[Any, ...] = ()
    pdf_path: Path | None = None
    #: auditor pins, obtained out of band: the log's verifier key (signed-note vkey) and the base hash
    log_key: str | None = None
    base_hash: str | None = None
    #: UNSAFE, development records only: a manifest with no witnesses (quorum 0) is noted as unwitnessed
    #: instead of failing V5 (``--unsafe-allow-unwitnessed``)
    unsafe_allow_unwitnessed: bool = False
    #: the official mode (V27): the pins file published out of band (``verifier._pins.load_pins``)
    pins: OfficialPins | None = None


ProgressFn = Callable[[int, int], None]


@dataclass
class _State:
    info: ElectionInfo | None = None
    rank: int = -1
    seen_once: set[str] = field(default_factory=set)
    commitments: dict[int, TrusteeCommitments] = field(default_factory=dict)
    registered_entry: dict[int, int] = field(default_factory=dict)
    shares: dict[tuple[int, int], EncryptedShare] = field(default_factory=dict)
    complaints: list[tuple[int, Complaint]] = field(default_factory=list)
    answers: dict[tuple[int, int], ComplaintAnswer] = field(default_factory=dict)
    disqualified: dict[int, int] = field(default_factory=dict)
    joint_key: JointKey | None = None
    roll_size: int | None = None
    roll_root: bytes | None = None
    roll_entry: int | None = None
    cast: int = 0
    spoiled: int = 0
    sums: dict[tuple[str, str], Ciphertext] = field(default_factory=dict)
    tally_entry: int | None = None
    tally: dict[tuple[str, str], Ciphertext] | None = None
    published_counted_root: bytes | None = None
    partials: dict[int, tuple[int, dict[tuple[str, str], PartialDecryption]]] = field(default_factory=dict)
    excluded: dict[int, int] = field(default_factory=dict)
    result_entry: int | None = None
    result: dict[str, Any] | None = None
    declaration_entry: int | None = None
    declaration: dict[str, Any] | None = None
    entries: int = 0
    opened_at: dt.datetime | None = None
    #: the end of voting in force: the manifest's ``closes``, moved by each ``voting.extended``
    voting_closes: dt.datetime | None = None


def _record(report: Report, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)``; record a CheckFailed instead of raising it."""
    try:
        return fn(*args)
    except CheckFailed as e:
        report.add(e)
        return None


def verify_record(
    path: str | Path,
    options: Options | None = None,
    *,
    progress: ProgressFn | None = None,
) -> Report:
    """Verify the record at ``path`` (directory or archive). Raises :class:`RecordUnreadable` only when
    nothing can be read; every check failure is in the returned report."""
    opts = options or Options()
    t0 = time.monotonic()
    with open_record(path) as src:
        report = Report(record=str(path))
        executor = _make_executor(opts)
        try:
            _run(src, opts, report, executor, progress)
        finally:
            executor.close()
    report.elapsed_seconds = time.monotonic() - t0
    report.failures.sort(key=lambda f: (f.step, -1 if f.entry is None else f.entry))
    return report


def _make_executor(opts: Options) -> BatchExecutor:
    from ._exec import make_executor

    return make_executor(workers=opts.workers, scheduler=opts.scheduler, client=opts.dask_client)


# ------------------------------------------------------------------------------------------ the run


def _run(
    src: RecordSource, opts: Options, report: Report, ex: BatchExecutor, progress: ProgressFn | None
) -> None:
    # Step 1: V1-V6 by ledger.record (chain, tree, checkpoints, cosignatures, consistency). With more than
    # one worker it runs in its own process, beside the streaming pass.
    structure: cf.Future[Any] | None = None
    pool: cf.ProcessPoolExecutor | None = None
    ledger_view: Any = None
    if opts.workers > 1 or opts.scheduler or opts.dask_client is not None:
        pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        structure = pool.submit(_ledger.structure_job, str(src.directory), opts.log_key)
    else:
        ledger_view = _ledger.check_structure(src, report, log_key=opts.log_key)
    st = _State()
    with BallotIndex() as index:
        try:
            _pass_one(src, opts, report, ex, progress, st, index)
        finally:
            if structure is not None and pool is not None:
                failures, ledger_view = structure.result()
                pool.shutdown()
                for f in failures:
                    report.add(CheckFailed(**f))
                for step in (
                    "record.format",
                    "ledger.chain",
                    "ledger.tree",
                    "ledger.checkpoint-signature",
                    "ledger.cosignatures",
                    "ledger.consistency",
                ):
                    report.passed(step)
        report.entries = st.entries
        if ledger_view is not None and ledger_view.size != st.entries:
            report.fail(
                "ledger.tree",
                f"the final checkpoint covers {ledger_view.size} entries, the record has {st.entries}",
                entry=min(ledger_view.size, st.entries),
            )
        report.official = opts.pins is not None
        if st.info is None:
            if opts.pins is not None:
                report.fail("record.pins", "the record has no manifest to compare with")
            return
        report.election_id = st.info.election_id
        report.labels = st.info.labels
        _ledger.check_witnesses_match(
            ledger_view, st.info, report, allow_unwitnessed=opts.unsafe_allow_unwitnessed
        )
        record_log_key = None if ledger_view is None else ledger_view.record.header.log_key.vkey
        manifest_pins = st.info.pins
        if manifest_pins is not None and record_log_key not in (None, manifest_pins["log_key"]):
            # V4: "... by the log key named in the record", which the manifest pins
            report.fail(
                "ledger.checkpoint-signature",
                "the record's log key (record.json) is not the log key pinned in the manifest",
            )
        if manifest_pins is None:
            report.not_applicable("trustee.enrolment", "the manifest pins no trustee enrolment keys")
        if opts.pins is not None:
            check_official_pins(opts.pins, st.info, record_log_key, report)
        else:
            report.notes.append(
                "checked without pins (--pins): not an official verification; the record was checked "
                "against itself only, so a wholly fabricated record with keys of its own would also pass"
            )
        if opts.base_hash is not None and opts.base_hash != st.info.base_hash.hex():
            report.fail(
                "election.manifest", "base hash differs from the one pinned with --base-hash", entry=0
            )
        _finish_key_ceremony_checks(report, st)
        _roll_check(report, st, index)
        _counting_rule(report, st, index)
        _aggregate(src, report, st, index)
    _decryption(report, st, opts)
    _declaration(src, report, st, opts, ledger_view)
    _lifecycle_complete(report, st, opts)
    if "voting.opened" not in st.seen_once:
        report.not_applicable("voting.period", "the record has no voting.opened yet")
    for check in (
        "record.privacy",
        "ledger.phases",
        "election.manifest",
        "ballot.unique",
        "ballot.binding",
        "ballot.proofs",
        "ballot.spoiled",
        "record.format",
    ):
        report.passed(check)


def _batches_results(results: Iterator[_ballots.BatchResult], report: Report, st: _State) -> None:
    for r in results:
        for f in r.failures:
            report.add(CheckFailed(**f))
        for key, (a, b) in r.sums.items():
            ct = Ciphertext(Point.from_hex(a), Point.from_hex(b))
            prev = st.sums.get(key)
            st.sums[key] = ct if prev is None else prev + ct


def _pass_one(
    src: RecordSource,
    opts: Options,
    report: Report,
    ex: BatchExecutor,
    progress: ProgressFn | None,
    st: _State,
    index: BallotIndex,
) -> None:
    total = src.entries_size()
    batch: list[tuple[int, bytes]] = []
    ctx: Any = None
    ctx_roll: _ballots.RollCommitment | None = None
    last_progress = 0.0

    def flush() -> None:
        nonlocal batch
        if batch:
            _batches_results(ex.submit(_ballots.verify_batch, ctx, batch), report, st)
            batch = []

    for i, (pos, line) in enumerate(src.lines()):
        st.entries = i + 1
        if progress is not None and (time.monotonic() - last_progress > 0.1 or pos == total):
            progress(pos, total)
            last_progress = time.monotonic()
        entry = _record(report, _ledger.parse_entry, line, i)
        if entry is None:
            if i == 0:
                return  # without the manifest nothing else can be interpreted (V1 already failed)
            continue
        etype, payload = entry
        _record(report, _check_order, st, i, etype)
        # V23 of a ballot entry runs in the worker that verifies it (the bulk of the record: kept off the
        # main process, whose per-entry work bounds how far the workers can scale); every other entry here
        if not (etype in _BALLOT_TYPES and i and st.info is not None and st.joint_key is not None):
            for where, problem in scan_payload(etype, payload):
                report.fail("record.privacy", f"{problem} at {where}", entry=i)
        if i == 0:
            if etype != "election.manifest":
                report.fail("election.manifest", "entry 0 is not the manifest", entry=0)
                return
            st.info = _record(report, read_manifest, payload)
            if st.info is None:
                return
            continue
        if st.info is None:
            return
        info = st.info
        if payload.get("election_id") != info.election_id or payload.get("base_hash") != info.base_hash.hex():
            report.fail(
                "election.manifest", "payload does not name this election's id and base hash", entry=i
            )
        if etype in _BALLOT_TYPES:
            if st.joint_key is None:
                continue  # reported by V8 (a ballot before the joint key) or V11
            roll = (
                _ballots.RollCommitment(st.roll_size, st.roll_root)
                if st.roll_size is not None and st.roll_root is not None
                else None
            )
            if ctx is None or ctx_roll != roll:  # a roll commitment after a ballot is a V8 failure anyway
                flush()
                base_ctx = _ballots.BallotContext.create(info, st.joint_key, roll)
                ctx = ex.shared(base_ctx) if isinstance(ex, DaskExecutor) else base_ctx
                ctx_roll = roll
            _record(report, _index_ballot, report, st, index, i, etype, payload)
            batch.append((i, line))
            if len(batch) >= opts.batch_size:
                flush()
            continue
        _record(report, _other_event, report, st, i, etype, payload)
    flush()
    _batches_results(ex.drain(), report, st)
    if progress is not None:
        progress(total, total)


def _check_order(st: _State, i: int, etype: str) -> None:
    # V8 ledger.phases: "Every event has a known type and appears in its phase ..., in the order of
    # docs/events.md."
    rank = _RANK.get(etype)
    if rank is None:
        fail("ledger.phases", f"unknown event type {etype!r}", entry=i)
    if etype in _ONCE:
        if etype in st.seen_once:
            fail("ledger.phases", f"a second {etype} entry", entry=i)
        st.seen_once.add(etype)
    if etype == "roll.commitment":
        if st.rank > 2:
            fail("ledger.phases", "roll.commitment after voting opened", entry=i)
        return
    if etype == "evidence.exported":
        if "voting.opened" not in st.seen_once:
            fail("ledger.phases", "evidence.exported before voting opened", entry=i)
        return
    if etype == "election.manifest" and i != 0:
        fail("ledger.phases", "a manifest after entry 0", entry=i)
    if rank < st.rank:
        fail("ledger.phases", f"{etype} after a later phase's event", entry=i)
    if etype == "voting.opened" and (
        "roll.commitment" not in st.seen_once or "election.joint-key" not in st.seen_once
    ):
        fail("ledger.phases", "voting opened before the joint key and roll commitment", entry=i)
    if etype in _BALLOT_TYPES and "voting.opened" not in st.seen_once:
        fail("ledger.phases", "a ballot before voting opened", entry=i)
    if etype == "voting.extended" and "voting.opened" not in st.seen_once:
        fail("ledger.phases", "voting.extended before voting opened", entry=i)
    st.rank = rank


#: the longest override or extension reason (code points), as the server enforces it
_MAX_REASON: Final[int] = 500
_BOUND: Final[frozenset[str]] = frozenset({"election_id", "base_hash"})


def _t(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(p: dict[str, Any], key: str, i: int) -> None:
    try:
        check_display_text(p.get(key), max_chars=_MAX_REASON)
    except TextRuleError as e:
        fail("voting.period", f"the reason {e}", entry=i)


def _voting_period(
    report: Report, st: _State, info: ElectionInfo, i: int, etype: str, p: dict[str, Any]
) -> None:
    """V26 voting.period: "voting.opened is not before the manifest's voting_period.opens and voting.closed
    not before the end of voting in force (voting_period.closes, or the last voting.extended's closes) unless
    the entry carries override.reason; voting.closed is never after that end; each voting.extended moves
    the end later and carries a reason; an override appears only where the period is departed from." The
    ballots between voting.opened and voting.closed are V8's."""
    end = st.voting_closes or info.closes
    if etype == "voting.extended":
        closes = parse_time(p.get("closes"))
        if set(p) != _BOUND | {"closes", "reason"} or closes is None:
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
    field_ = "opened_at" if etype == "voting.opened" else "closed_at"
    t = parse_time(p.get(field_))
    if not set(_BOUND | {field_}) <= set(p) <= _BOUND | {field_, "override"} or t is None:
        fail("voting.period", f"{etype} is {{{field_} (UTC time)[, override]}}", entry=i)
    override = p.get("override")
    if override is not None:
        if not isinstance(override, dict) or set(override) != {"reason"}:
            fail("voting.period", "override is exactly {reason}", entry=i)
        _reason(override, "reason", i)
    if etype == "voting.opened":
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


def _index_ballot(
    report: Report, st: _State, index: BallotIndex, i: int, etype: str, p: dict[str, Any]
) -> None:
    """Main-process part of a ballot: V15 uniqueness and the counting row (V17). Cheap, no crypto.

    A replayed ballot (its hash published before) is not indexed again; a ballot that repeats a nonce or a
    pad is reported and still indexed (it is another voter's ballot: the counting rule still applies)."""
    bh = p.get("ballot_hash")
    if not isinstance(bh, str):
        fail("ballot.binding", "ballot_hash missing", entry=i)
    # V15 ballot.unique: "A ballot_hash, a ballot nonce and every selection's ciphertext pad (its first
    # component, r·G) each appear at most once among all cast and spoiled ballots, within a ballot too (no
    # replay, no contest copied with its nonce, no copied or mauled ciphertext), and no two ballots share
    # an authentication-evidence hash." The rules are ledger.record's (the server's intake applies the same).
    values = ballot_unique_values(bh, p.get("ballot"))
    problems = [
        f"{later.describe()} repeats the {earlier.describe()} within this ballot"
        for earlier, later in repeats_within(values)
    ]
    replay = False
    for v in values:  # every value is recorded, so a later ballot is named against its first use
        earlier = index.first_seen(v.kind, v.value, i)
        if earlier is None or earlier == i:
            continue
        if v.kind == "ballot_hash":
            replay = True
            problems.append(f"ballot_hash already published at entry {earlier} (replay)")
        else:
            problems.append(f"{v.describe()} already used at entry {earlier}")
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        err = failure("ballot.unique", "; ".join(problems[:3]) + more, entry=i)
        if replay:
            raise err
        report.add(err)
    if etype == "ballot.spoiled":
        st.spoiled += 1
        return
    st.cast += 1
    auth = p.get("auth")
    ev = auth.get("evidence_hash") if isinstance(auth, dict) else None
    if isinstance(ev, str):
        earlier = index.first_seen("evidence", ev, i)
        if earlier is not None:
            fail("ballot.unique", f"authentication evidence already used at entry {earlier}", entry=i)
    alias, channel, seq = p.get("voter_alias"), p.get("channel"), p.get("seq")
    if not isinstance(alias, str) or channel not in ("internet", "kiosk") or not isinstance(seq, int):
        fail("ballot.binding", "cast ballot without voter_alias, channel or seq", entry=i)
    index.add_cast(CastRow(i, bh, alias, channel, seq))


_EXPORTED_KEYS: Final[frozenset[str]] = frozenset(
    {"election_id", "base_hash", "oversight_key", "evidence_count", "export_hash"}
)


def _evidence_exported(st: _State, i: int, p: dict[str, Any]) -> None:
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
        or not _HEX64.fullmatch(p["export_hash"])
    ):
        fail(
            "ledger.phases",
            "evidence.exported is exactly {oversight_key (the manifest's), evidence_count, export_hash}",
            entry=i,
        )


def _enrolment(report: Report, info: ElectionInfo, i: int, c: TrusteeCommitments, p: dict[str, Any]) -> None:
    """V28 trustee.enrolment: "When the manifest pins the trustees' enrolment keys, every trustee.registered
    entry carries the enrolment key pinned for its index and a valid Ed25519 signature by it over the
    registration.\""""
    if info.pins is None:
        if "enrolment" in p:
            report.fail("trustee.enrolment", "an enrolment no manifest pin names", entry=i)
        return
    try:
        e = TrusteeEnrolment.from_dict(p.get("enrolment"))
        name = p.get("name")
        if not isinstance(name, str):
            raise InvalidEncoding("the registration has no name")
        pinned = bytes.fromhex(info.pins["trustee_enrolment_keys"][c.trustee - 1])
        e.verify(pinned_key=pinned, base_hash=info.base_hash, trustee=c.trustee, name=name, commitments=c)
    except (CryptoError, IndexError) as err:
        msg = getattr(err, "operator_message", str(err))
        report.fail("trustee.enrolment", f"trustee {c.trustee}: {msg}", entry=i)
        return
    report.passed("trustee.enrolment")


def _other_event(report: Report, st: _State, i: int, etype: str, p: dict[str, Any]) -> None:
    info = st.info
    assert info is not None
    bh = info.base_hash
    try:
        if etype == "trustee.registered":
            # V9 trustee.commitments: "Every registered trustee publishes t Feldman commitments, each with a
            # valid Schnorr proof of knowledge bound to the election and the trustee index."
            c = TrusteeCommitments.from_dict(p.get("commitments"))
            if p.get("trustee") != c.trustee or c.trustee in st.commitments:
                fail("trustee.commitments", "trustee index mismatch or registered twice", entry=i)
            c.verify(base_hash=bh, threshold=info.threshold, trustees=info.trustees)
            st.commitments[c.trustee] = c
            st.registered_entry[c.trustee] = i
            report.passed("trustee.commitments")
            _enrolment(report, info, i, c, p)
        elif etype == "trustee.shares":
            sender = p.get("sender")
            for s in p.get("shares", []):
                es = EncryptedShare.from_dict({"sender": sender, **s})
                st.shares[(es.sender, es.recipient)] = es
        elif etype == "trustee.complaint":
            st.complaints.append((i, Complaint.from_dict(_strip(p))))
        elif etype == "trustee.answer":
            a = ComplaintAnswer.from_dict(_strip(p))
            st.answers[(a.dealer, a.complainant)] = a
        elif etype == "trustee.disqualified":
            st.disqualified[int(p["dealer"])] = i
        elif etype == "election.joint-key":
            _joint_key(report, st, i, p)
        elif etype == "roll.commitment":
            # V12 roll.commitment: "The roll commitment ... is well formed"
            size, root = p.get("size"), p.get("root")
            if (
                set(p) != {"size", "root", "alias_scheme", "election_id", "base_hash"}
                or not isinstance(size, int)
                or isinstance(size, bool)
                or size < 0
                or not isinstance(root, str)
                or not _HEX64.fullmatch(root)
                or p.get("alias_scheme") != "hmac-sha256/1"
            ):
                fail(
                    "roll.commitment",
                    "roll commitment is not exactly {size, root (64 lowercase hex), alias_scheme}",
                    entry=i,
                )
            st.roll_size, st.roll_root, st.roll_entry = size, bytes.fromhex(root), i
        elif etype in ("voting.opened", "voting.extended", "voting.closed"):
            _voting_period(report, st, info, i, etype, p)
        elif etype == "evidence.exported":
            _evidence_exported(st, i, p)
        elif etype == "tally.encrypted":
            st.tally_entry = i
            _read_counted_root(report, st, i, p)
            st.tally = _read_selection_map(
                p.get("ciphertexts"), info, Ciphertext.from_dict, "tally.aggregate", i
            )
        elif etype == "tally.partial":
            t = p.get("trustee")
            parts = _read_selection_map(
                p.get("partials"), info, PartialDecryption.from_dict, "tally.partial-decryption", i
            )
            if not isinstance(t, int) or t in st.partials:
                fail("tally.partial-decryption", "trustee index missing or a second partial entry", entry=i)
            st.partials[t] = (i, parts)
        elif etype == "tally.excluded":
            st.excluded[int(p["trustee"])] = i
        elif etype == "tally.result":
            st.result_entry, st.result = i, p
        elif etype == "result.declaration":
            st.declaration_entry, st.declaration = i, p
    except (CryptoError, KeyError, TypeError, ValueError) as e:
        check = {
            "trustee.registered": "trustee.commitments",
            "trustee.shares": "trustee.complaints",
            "trustee.complaint": "trustee.complaints",
            "trustee.answer": "trustee.complaints",
            "trustee.disqualified": "trustee.complaints",
            "election.joint-key": "election.joint-key",
            "roll.commitment": "roll.commitment",
            "tally.encrypted": "tally.aggregate",
            "tally.partial": "tally.partial-decryption",
            "tally.excluded": "tally.partial-decryption",
            "tally.result": "tally.result",
            "result.declaration": "result.pdf",
        }.get(etype, "record.format")
        msg = getattr(e, "operator_message", None) or f"{type(e).__name__}: {e}"
        fail(check, msg, entry=i)


def _read_counted_root(report: Report, st: _State, i: int, p: dict[str, Any]) -> None:
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
    if isinstance(croot, str) and _HEX64.fullmatch(croot):
        st.published_counted_root = bytes.fromhex(croot)
        return
    if croot is None and "counted" in p:
        msg = "tally.encrypted carries a counted list; only counted_root (a Merkle root) is accepted"
    elif croot is None:
        msg = "tally.encrypted has no counted_root"
    else:
        msg = "tally.encrypted's counted_root is not 64 lowercase hex digits"
    report.fail("tally.counting-rule", msg, entry=i)


def _strip(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in ("election_id", "base_hash")}


def _read_selection_map(
    obj: Any, info: ElectionInfo, parse: Callable[[Any], Any], check: str, i: int
) -> dict[tuple[str, str], Any]:
    if not isinstance(obj, dict) or set(obj) != {c.id for c in info.contests}:
        fail(check, "not exactly the manifest's contests", entry=i)
    out: dict[tuple[str, str], Any] = {}
    for c in info.contests:
        sel = obj[c.id]
        if not isinstance(sel, dict) or set(sel) != set(c.selections):
            fail(check, f"contest {c.id}: not exactly the manifest's selections", entry=i)
        for s in c.selections:
            out[(c.id, s)] = parse(sel[s])
    return out


# ----------------------------------------------------------------------------------- key ceremony


def _joint_key(report: Report, st: _State, i: int, p: dict[str, Any]) -> None:
    # V10 trustee.complaints: "Every complaint is either answered with a share that satisfies the dealer's
    # commitments, or the dealer is disqualified; no dealer is disqualified without cause."
    info = st.info
    assert info is not None
    resolutions = []
    for ci, c in st.complaints:
        dealer = st.commitments.get(c.dealer)
        if dealer is None:
            report.fail("trustee.complaints", "complaint about an unregistered dealer", entry=ci)
            continue
        try:
            r = resolve_complaint(
                c,
                dealer=dealer,
                encrypted_share=st.shares.get((c.dealer, c.complainant)),
                answer=st.answers.get((c.dealer, c.complainant)),
                base_hash=info.base_hash,
            )
        except CryptoError as e:
            report.fail("trustee.complaints", e.operator_message, entry=ci)
            continue
        resolutions.append(r)
        if r.dealer_disqualified and r.dealer not in st.disqualified:
            report.fail(
                "trustee.complaints",
                f"dealer {r.dealer} lost complaint but was not disqualified",
                entry=ci,
            )
    with_cause = {r.dealer for r in resolutions if r.dealer_disqualified}
    for d, di in st.disqualified.items():
        if d not in with_cause and d in st.commitments:
            report.fail("trustee.complaints", f"dealer {d} disqualified without cause", entry=di)
    report.passed("trustee.complaints")
    # V11 election.joint-key: "The qualified set is exactly the registered, non-disqualified dealers;
    # the joint key is the product of their constant-term commitments; every public share is derived
    # from the commitments; the threshold matches the manifest."
    try:
        q = qualify(
            st.commitments.values(),
            base_hash=info.base_hash,
            threshold=info.threshold,
            trustees=info.trustees,
            resolutions=resolutions,
        )
        derived = JointKey.from_commitments(st.commitments.values(), q, base_hash=info.base_hash)
    except (CryptoError, ValueError) as e:
        fail("election.joint-key", getattr(e, "operator_message", str(e)), entry=i)
    published = JointKey.from_dict(
        {
            "base_hash": info.base_hash.hex(),
            "threshold": p.get("threshold"),
            "qualified": p.get("qualified"),
            "joint_key": p.get("joint_key"),
            "public_shares": p.get("public_shares"),
        }
    )
    if published.threshold != info.threshold:
        fail("election.joint-key", "threshold differs from the manifest", entry=i)
    if published.qualified != derived.qualified:
        fail(
            "election.joint-key",
            f"qualified {list(published.qualified)} but the ceremony qualifies {list(derived.qualified)}",
            entry=i,
        )
    if published.public_key != derived.public_key:
        fail(
            "election.joint-key",
            "joint key is not the sum of the qualified constant-term commitments",
            entry=i,
        )
    if published.public_shares != derived.public_shares:
        fail("election.joint-key", "a public share does not derive from the commitments", entry=i)
    st.joint_key = derived
    report.passed("election.joint-key")


def _finish_key_ceremony_checks(report: Report, st: _State) -> None:
    if st.joint_key is None and not any(f.step == 11 for f in report.failures):
        report.fail("election.joint-key", "the record has no valid election.joint-key entry")


def _roll_check(report: Report, st: _State, index: BallotIndex) -> None:
    # V12 roll.commitment: "... no more distinct voter aliases cast ballots than the roll's size." (Each cast
    # ballot's roll inclusion proof is checked per ballot, in the batches: verifier._ballots.)
    if st.roll_size is None:
        if not any(f.step == 12 for f in report.failures):
            report.fail("roll.commitment", "the record has no roll commitment")
        return
    voters = index.distinct_voters()
    if voters > st.roll_size:
        report.fail(
            "roll.commitment",
            f"{voters} distinct voters cast ballots, the roll has {st.roll_size}",
            entry=st.roll_entry,
        )
    report.passed("roll.commitment")


# ------------------------------------------------------------------------------------ counting


def _counting_rule(report: Report, st: _State, index: BallotIndex) -> None:
    """V17 tally.counting-rule: the derived counted set against tally.encrypted's counted_root.

    Streams the derived statuses from the on-disk index in ledger order and folds the counted ballots'
    hashes into a Merkle compact range (O(log n) hashes), so nothing here grows with the ballots.
    """
    # V17 tally.counting-rule: "The counted set re-derived from the ledger by the manifest's revote rule
    # ... equals the set tally.encrypted's counted_root commits to (the RFC 9162 root over the counted
    # ballot hashes in ledger order), and the published counts agree."
    counts = {"cast": 0, "counted": 0, "superseded": 0, "overridden": 0, "spoiled": st.spoiled}

    def bad(msg: str, entry: int | None) -> None:
        report.fail("tally.counting-rule", msg, entry=entry)

    counted_tree = CompactRange()
    for d in index.derived():
        counts["cast"] += 1
        if d.seq != d.expected_seq:
            bad(f"seq {d.seq}, but this is the voter's submission {d.expected_seq}", d.index)
        if d.status is Status.EXTRA_KIOSK:
            bad("a second kiosk ballot of the same voter (the server must refuse it)", d.index)
            continue
        counts[d.status.value] += 1
        if d.status is Status.COUNTED:
            try:
                counted_tree.append(leaf_hash(bytes.fromhex(d.ballot_hash)))
            except ValueError:  # not hex: V14 names the ballot; the root below cannot match then
                counted_tree.append(leaf_hash(d.ballot_hash.encode()))
    report.summary = counts
    if st.published_counted_root is not None and counted_tree.root() != st.published_counted_root:
        bad(
            "tally.encrypted's counted_root is not the root of the counted set the rule derives "
            f"({counts['counted']} ballots)",
            st.tally_entry,
        )
    if st.result is not None:
        for k, v in counts.items():
            if st.result.get(k) != v:
                bad(f"published {k} = {st.result.get(k)!r}, re-derived {v}", st.result_entry)
    if st.tally_entry is not None:  # else n/a with --partial, or V8 fails (_lifecycle_complete)
        report.passed("tally.counting-rule")


def _aggregate(src: RecordSource, report: Report, st: _State, index: BallotIndex) -> None:
    # V18 tally.aggregate: "For every selection, the published encrypted tally equals the product (sum) of
    # the counted ballots' ciphertexts." The running sum holds every cast ballot; subtract the ones that
    # do not count (streamed from the index in ledger order, merged with a second pass over the entries).
    info = st.info
    assert info is not None
    if st.tally is None:
        return
    drop = (d.index for d in index.derived() if d.status is not Status.COUNTED)
    nxt = next(drop, None)
    if nxt is not None:
        for i, (_, line) in enumerate(src.lines()):
            if i != nxt:
                continue
            try:
                for key, ct in _ballots.ballot_ciphertexts(line).items():
                    have = st.sums.get(key, _ZERO)
                    st.sums[key] = Ciphertext(have.a - ct.a, have.b - ct.b)
            except (CryptoError, KeyError, TypeError, ValueError):
                pass  # a malformed ballot is reported by V13; the tally check below then fails
            nxt = next(drop, None)
            if nxt is None:
                break
    for c in info.contests:
        for s in c.selections:
            if st.sums.get((c.id, s), _ZERO) != st.tally[(c.id, s)]:
                report.fail(
                    "tally.aggregate",
                    f"encrypted tally of {c.id}/{s} is not the sum of the counted ballots",
                    entry=st.tally_entry,
                )
    report.passed("tally.aggregate")


# ------------------------------------------------------------------------------------ decryption


def _decryption(report: Report, st: _State, opts: Options) -> None:
    info, jk, tally = st.info, st.joint_key, st.tally
    if info is None or jk is None or tally is None:
        return
    # V19 tally.partial-decryption: "Every partial decryption share carries a valid Chaum-Pedersen proof
    # against the trustee's public share; every excluded trustee's share indeed fails."
    valid: dict[int, dict[tuple[str, str], PartialDecryption]] = {}
    for t, (ei, parts) in sorted(st.partials.items()):
        good = True
        for key, pd in parts.items():
            try:
                if pd.trustee != t:
                    fail("tally.partial-decryption", f"partial names trustee {pd.trustee}", entry=ei)
                verify_partial(pd, tally[key], jk)
            except CryptoError as e:
                good = False
                if t not in st.excluded:
                    report.fail(
                        "tally.partial-decryption",
                        f"{key[0]}/{key[1]}: {e.operator_message}",
                        entry=ei,
                    )
            except CheckFailed as e:
                good = False
                report.add(e)
        if good:
            valid[t] = parts
            if t in st.excluded:
                report.fail(
                    "tally.partial-decryption",
                    f"trustee {t} was excluded but its partial decryption is valid",
                    entry=st.excluded[t],
                )
    for t, ei in st.excluded.items():
        if t not in jk.qualified:
            report.fail("tally.partial-decryption", f"excluded trustee {t} is not qualified", entry=ei)
    report.passed("tally.partial-decryption")
    res = st.result
    if res is None:
        return
    # V20 tally.combination: "The trustees used are at least the threshold, qualified and with valid shares;
    # their shares combine by Lagrange interpolation at 0 to the plaintext point of every selection."
    used = res.get("trustees_used")
    ri = st.result_entry
    if (
        not isinstance(used, list)
        or used != sorted(set(used))
        or len(used) < jk.threshold
        or not all(isinstance(j, int) and j in jk.qualified for j in used)
    ):
        report.fail(
            "tally.combination",
            f"trustees_used {used!r} is not a sorted set of >= {jk.threshold} qualified trustees",
            entry=ri,
        )
        return
    missing = [j for j in used if j not in valid]
    if missing:
        report.fail(
            "tally.combination",
            f"trustees {missing} were used but have no valid partial decryption",
            entry=ri,
        )
        return
    lam = {j: lagrange_coefficient(j, used) for j in used}
    plain: dict[tuple[str, str], Point] = {}
    for key, ct in tally.items():
        acc = IDENTITY
        for j in used:
            acc = acc + lam[j] * valid[j][key].decryption_share
        plain[key] = ct.b - acc
    report.passed("tally.combination")
    # V21 tally.result: "Every published count m satisfies m*G = the combined plaintext point, with
    # 0 <= m <= counted; the result names exactly the manifest's contests and selections."
    results = res.get("results")
    counted = report.summary.get("counted", 0)
    try:
        table = _read_selection_map(results, info, lambda v: v, "tally.result", ri or 0)
    except CheckFailed as e:
        report.add(e)
        return
    out: dict[str, dict[str, int]] = {c.id: {} for c in info.contests}
    for (cid, sid), m in table.items():
        out[cid][sid] = m
        if not isinstance(m, int) or isinstance(m, bool) or not 0 <= m <= counted:
            report.fail("tally.result", f"{cid}/{sid}: count {m!r} outside 0..{counted}", entry=ri)
        elif small_multiple(m) != plain[(cid, sid)]:
            report.fail("tally.result", f"{cid}/{sid}: published {m} is not the decryption", entry=ri)
    report.results = out
    report.passed("tally.result")


def _declaration(src: RecordSource, report: Report, st: _State, opts: Options, view: Any) -> None:
    # V22 result.pdf
    if st.declaration is None:
        return
    result = None if st.result is None else _strip(st.result)
    size = st.declaration.get("checkpoint_size")
    if st.result_entry is not None and (not isinstance(size, int) or size <= st.result_entry):
        report.fail(
            "result.pdf",
            "the cited checkpoint does not cover the tally.result entry",
            entry=st.declaration_entry,
        )
    # the commission's PDF root as pinned: by the pins file (official mode), else by the manifest
    pinned_root = None
    if opts.pins is not None and opts.pins.commission_root_sha256 is not None:
        pinned_root = opts.pins.commission_root_sha256
    elif st.info is not None and st.info.pins is not None:
        pinned_root = str(st.info.pins["commission_root_sha256"])
    _ledger.check_declaration(
        src,
        report,
        st.declaration,
        st.declaration_entry,
        result,
        view,
        opts.pdf_path,
        opts.pdf_trust_roots,
        pinned_root=pinned_root,
    )


def _lifecycle_complete(report: Report, st: _State, opts: Options) -> None:
    missing = [
        t
        for t in ("voting.closed", "tally.encrypted", "tally.result", "result.declaration")
        if t not in st.seen_once
    ]
    later = {
        "voting.closed": (),
        "tally.encrypted": ("tally.counting-rule", "tally.aggregate", "tally.partial-decryption"),
        "tally.result": ("tally.combination", "tally.result"),
        "result.declaration": ("result.pdf",),
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
