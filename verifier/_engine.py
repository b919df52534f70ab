"""The verification run: one streaming pass over ``entries.jsonl`` plus a short second pass.

Order of work (``docs/verifier.md`` §"How a run proceeds"):

1. V1-V6 (format, chain, tree, checkpoints, cosignatures, consistency): ``ledger.record.check_sequence``
   (one streaming pass, O(log n) state), whose typed errors are mapped to the numbered checks
   (:mod:`verifier._ledger`); with more than one worker it runs in its own process beside step 2.
2. One pass over the entries, in ledger order: V7 manifest and election binding, V8 lifecycle order
   (:mod:`verifier._phases`), V23 privacy; ballots are indexed for V15 and V17 (:mod:`verifier._unique`),
   each kiosk ballot is checked against its kiosk's enrolment and open session (V31,
   :func:`verifier._kiosk.kiosk_ballot`), and they are batched (bounded) to the executor for V13, V14,
   V16 and the kiosk signatures (:mod:`verifier._ballots`, given each kiosk ballot's enrolled key), each
   batch returning the homomorphic sum of its cast ballots, so the tally accumulates incrementally; every
   other event goes to the handler its module registers (:data:`EVENTS`: :mod:`verifier._ceremony` V9-V12
   and V28, :mod:`verifier._booth` V29, :mod:`verifier._kiosk` V30, :mod:`verifier._phases` V26,
   :mod:`verifier._tally`).
3. V17 counting rule and V18 aggregate from the on-disk index (:mod:`verifier._tally`); then V19-V21
   (decryption) and V22 (PDF) (:mod:`verifier._decryption`); V27 pins (:mod:`verifier._pins`).

Every check failure is recorded (not raised), so one run reports everything that is wrong; a failure is
made one way (:func:`verifier._checks.failure`, the step derived from the check id). Memory does not grow
with the number of ballots: per-ballot rows live in the temporary SQLite index
(:class:`verifier._counting.BallotIndex`), batches in flight are bounded, and the report lists at most
``MAX_FAILURES_PER_CHECK`` failures per check.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from crypto import Ciphertext, CryptoError, Point, select_engine
from ledger.events import BASE_HASH, ELECTION_ID, EventType

from . import _ballots, _booth, _ceremony, _kiosk, _ledger, _phases, _tally
from ._ceremony import finish_key_ceremony, roll_size_check
from ._checks import fail
from ._counting import BallotIndex
from ._decryption import declaration, decryption
from ._errors import CheckFailed
from ._exec import BatchExecutor, DaskExecutor
from ._lang import text
from ._manifest import read_manifest
from ._phases import BALLOT_TYPES, check_order, lifecycle_complete
from ._pins import check_official_pins
from ._privacy import scan_payload
from ._report import Report
from ._source import RecordSource, open_record
from ._state import Event, Options, ProgressFn, State
from ._tally import aggregate, counting_rule
from ._unique import index_ballot

__all__ = ["EVENTS", "Options", "verify_record"]

#: the handler of every event type other than the manifest and the ballots, by type
EVENTS: Final[dict[str, Event]] = {
    **_ceremony.EVENTS,
    **_booth.EVENTS,
    **_kiosk.EVENTS,
    **_phases.EVENTS,
    **_tally.EVENTS,
}


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
    nothing can be read, and ``crypto.EngineUnavailable`` (an ``ImportError``) when ``options.engine`` is
    ``"native"`` and the native engine is not installed; every check failure is in the returned report."""
    opts = options or Options()
    engine = select_engine(opts.engine).name  # before any work: a missing engine is the caller's error
    t0 = time.monotonic()
    with open_record(path) as src:
        report = Report(record=str(path), engine=engine)
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
    st = State()
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
            report.not_applicable("trustee.enrolment", text("why.no-enrolment-keys"))
        if opts.pins is not None:
            check_official_pins(opts.pins, st.info, record_log_key, report)
        else:
            report.notes.append(text("note.not-official"))
        if opts.base_hash is not None and opts.base_hash != st.info.base_hash.hex():
            report.fail(
                "election.manifest", "base hash differs from the one pinned with --base-hash", entry=0
            )
        finish_key_ceremony(report, st)
        roll_size_check(report, st, index)
        _booth.booth_required(report, st)
        _kiosk.kiosks_done(report, st)
        counting_rule(report, st, index)
        aggregate(src, report, st, index)
    decryption(report, st, opts)
    declaration(src, report, st, opts, ledger_view)
    lifecycle_complete(report, st, opts)
    if EventType.VOTING_OPENED not in st.seen_once:
        report.not_applicable("voting.period", text("why.no-voting-opened"))
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


def _batches_results(results: Iterator[_ballots.BatchResult], report: Report, st: State) -> None:
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
    st: State,
    index: BallotIndex,
) -> None:
    total = src.entries_size()
    batch: list[tuple[int, bytes]] = []
    kiosk_keys: dict[int, bytes] = {}  # the enrolled key of each kiosk ballot of the batch (V31)
    ctx: Any = None
    ctx_roll: _ballots.RollCommitment | None = None
    last_progress = 0.0

    def flush() -> None:
        nonlocal batch, kiosk_keys
        if batch:
            _batches_results(ex.submit(_ballots.verify_batch, ctx, batch, kiosk_keys), report, st)
            batch, kiosk_keys = [], {}

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
        _record(report, check_order, st, i, etype)
        # V23 of a ballot entry runs in the worker that verifies it (the bulk of the record: kept off the
        # main process, whose per-entry work bounds how far the workers can scale); every other entry here
        if not (etype in BALLOT_TYPES and i and st.info is not None and st.joint_key is not None):
            for where, problem in scan_payload(etype, payload):
                report.fail("record.privacy", f"{problem} at {where}", entry=i)
        if i == 0:
            if etype != EventType.MANIFEST:
                report.fail("election.manifest", "entry 0 is not the manifest", entry=0)
                return
            st.info = _record(report, read_manifest, payload)
            if st.info is None:
                return
            continue
        if st.info is None:
            return
        info = st.info
        if payload.get(ELECTION_ID) != info.election_id or payload.get(BASE_HASH) != info.base_hash.hex():
            report.fail(
                "election.manifest", "payload does not name this election's id and base hash", entry=i
            )
        if etype in BALLOT_TYPES:
            if st.joint_key is None:
                continue  # reported by V8 (a ballot before the joint key) or V11
            roll = (
                _ballots.RollCommitment(st.roll_size, st.roll_root)
                if st.roll_size is not None and st.roll_root is not None
                else None
            )
            if ctx is None or ctx_roll != roll:  # a roll commitment after a ballot is a V8 failure anyway
                flush()
                base_ctx = _ballots.BallotContext.create(info, st.joint_key, roll, report.engine)
                ctx = ex.shared(base_ctx) if isinstance(ex, DaskExecutor) else base_ctx
                ctx_roll = roll
            _record(report, index_ballot, report, st, index, i, etype, payload)
            if etype == EventType.BALLOT_CAST:
                key = _record(report, _kiosk.kiosk_ballot, report, st, i, payload)
                if key is not None:
                    kiosk_keys[i] = key
            batch.append((i, line))
            if len(batch) >= opts.batch_size:
                flush()
            continue
        _record(report, _other_event, report, st, i, etype, payload)
    flush()
    _batches_results(ex.drain(), report, st)
    if progress is not None:
        progress(total, total)


def _other_event(report: Report, st: State, i: int, etype: str, p: dict[str, Any]) -> None:
    """The registered handler of ``etype`` (an unknown type is V8's); a payload that does not decode fails
    the handler's check."""
    event = EVENTS.get(etype)
    if event is None:
        return
    try:
        event.apply(report, st, i, etype, p)
    except (CryptoError, KeyError, TypeError, ValueError) as e:
        msg = getattr(e, "operator_message", None) or f"{type(e).__name__}: {e}"
        fail(event.check, msg, entry=i)
