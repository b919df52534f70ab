"""The verification run: one streaming pass over ``entries.jsonl`` plus a short second pass.

Order of work (``docs/verifier.md`` §"How a run proceeds"):

1. V1-V6 (format, chain, tree, checkpoints, cosignatures, consistency): ``ledger.record``'s streaming check
   (O(log n) state), whose typed errors are mapped to the numbered checks (:mod:`verifier._ledger`). Each
   line's part of it (parse, canonical form, hash) is done by the worker that reads the line in step 2;
   this process feeds those facts in ledger order to the one stream (:class:`_ledger.StructureCheck`).
2. One pass over the entries, in ledger order: V7 manifest and election binding, V8 lifecycle order
   (:mod:`verifier._phases`), V23 privacy; ballots are indexed for V15 and V17 (:mod:`verifier._unique`,
   sliced :mod:`verifier._shards`), kiosk ballots checked for V31 (:func:`verifier._kiosk.kiosk_ballot`);
   every other event to its handler (:data:`EVENTS`: :mod:`verifier._ceremony` V9-V12 and V28,
   :mod:`verifier._booth` V29, :mod:`verifier._kiosk` V30, :mod:`verifier._phases` V26, ``_tally``).
   From the first ballot on, the workers read the record by slices (:mod:`verifier._slices`): they run
   V12-V14, V16, V23 and the kiosk signatures of the ballots (:mod:`verifier._ballots`) and return the
   non-ballot entries, each ballot's facts and failures, the V15 shards and each slice's homomorphic sum,
   which this process replays in ledger order (:class:`_Pass`), so the tally accumulates incrementally.
3. V17 counting rule and V18 aggregate from the on-disk index (:mod:`verifier._tally`); then V19-V21
   (decryption) and V22 (PDF) (:mod:`verifier._decryption`); V27 pins (:mod:`verifier._pins`).

Every check failure is recorded (not raised), so one run reports everything that is wrong; a failure is
made one way (:func:`verifier._checks.failure`, the step derived from the check id). Memory does not grow
with the ballots: per-ballot rows live in a temporary SQLite file (:class:`verifier._counting.BallotIndex`),
batches in flight are bounded, and the report lists at most ``MAX_FAILURES_PER_CHECK`` failures per check.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from crypto import Ciphertext, CryptoError, Point, select_engine
from ledger.events import BASE_HASH, ELECTION_ID, EventType
from ledger.record import CastRow

from . import _ballots, _booth, _ceremony, _kiosk, _ledger, _phases, _shards, _slices, _tally
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
from ._state import ZERO, Event, Options, ProgressFn, State
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


_UNBOUND: Final[tuple[str, str]] = (
    "election.manifest",
    "payload does not name this election's id and base hash",
)


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
    # Step 1: V1-V6 by ledger.record (chain, tree, checkpoints, cosignatures, consistency), from the facts of
    # each line that the slice workers computed (verifier._ledger.StructureCheck); its failures are listed
    # first, as if it had run before the pass (it runs beside it).
    found = Report(record=report.record)
    structure = _Structure(src, opts, found)
    ledger_view: _ledger.LedgerView | None = None
    st = State()
    with BallotIndex() as index:
        try:
            _Pass(src, opts, report, ex, progress, st, index, structure).run()
        finally:
            structure_check = structure.get()
            if structure_check is not None:
                ledger_view = structure_check.finish(found)
            report.add_first(found.failures)
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
        aggregate(src, report, st, index, ex)
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


class _Structure:
    """The record's header and checkpoints for V1-V6 (:func:`_ledger.open_structure`), with the witness
    keys' proofs of possession and the checkpoints' cosignatures (BLS pairings in pure Python, about half a
    second each): with more than one worker in a process of their own beside the pass
    (:func:`_ledger.header_job`), else here. :meth:`get` gives the :class:`_ledger.StructureCheck` (or None
    for an unreadable record.json), waiting for that process the first time."""

    def __init__(self, src: RecordSource, opts: Options, found: Report) -> None:
        self.src, self.found = src, found
        self._check: _ledger.StructureCheck | None = None
        self._pool: cf.ProcessPoolExecutor | None = None
        self._job: cf.Future[Any] | None = None
        if opts.workers > 1 or opts.scheduler or opts.dask_client is not None:
            self._pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._job = self._pool.submit(_ledger.header_job, str(src.directory), opts.log_key)
        else:
            rec = _ledger.open_structure(src, found, log_key=opts.log_key)
            self._check = None if rec is None else _ledger.StructureCheck(src, rec)

    def get(self) -> _ledger.StructureCheck | None:
        if self._job is not None and self._pool is not None:
            job, self._job = self._job, None
            try:
                failures, rec, cosigned = job.result()
            finally:
                self._pool.shutdown()
            for f in failures:
                self.found.add(CheckFailed(**f))
            if rec is not None:
                self._check = _ledger.StructureCheck(self.src, rec)
                self._check.cosigned = cosigned
        return self._check


def _batches_results(results: Iterator[_ballots.BatchResult], report: Report, st: State) -> None:
    for r in results:
        for f in r.failures:
            report.add(CheckFailed(**f))
        _add_sums(st, r.sums)


def _add_sums(st: State, sums: dict[tuple[str, str], tuple[str, str]]) -> None:
    for key, (a, b) in sums.items():
        ct = Ciphertext(Point.from_hex(a), Point.from_hex(b))
        prev = st.sums.get(key)
        st.sums[key] = ct if prev is None else prev + ct


class _Pass:
    """Pass one (module docstring, step 2): the entries before the first ballot are read and handled here;
    from the first ballot on, the rest of ``entries.jsonl`` is cut into slices that the workers read
    (:mod:`verifier._slices`), and this process replays what they return in ledger order.

    The ballots' worker failures are added in batches of ``batch_size`` ballots, after the main process's
    own failures of those ballots, as a serial run always added them (the report keeps the first
    ``MAX_FAILURES_PER_CHECK`` of each check, so the order they are added in matters)."""

    def __init__(
        self,
        src: RecordSource,
        opts: Options,
        report: Report,
        ex: BatchExecutor,
        progress: ProgressFn | None,
        st: State,
        index: BallotIndex,
        structure: _Structure,
    ) -> None:
        self.src, self.opts, self.report, self.ex, self.progress = src, opts, report, ex, progress
        self.st, self.index, self.structure = st, index, structure
        self.total = src.entries_size()
        self.ctx: _ballots.BallotContext | None = None
        self.ctx_roll: _ballots.RollCommitment | None = None
        self.ctx_key: tuple[int, bytes] | None = None  # (size, root) of ctx_roll
        #: the ballots of the current batch: (index, failures) checked by a worker, or
        #: (index, line, kiosk key) to check here
        self.batch: list[tuple[int, tuple[dict[str, Any], ...]] | tuple[int, bytes, bytes | None]] = []
        self.last_progress = 0.0
        self._file: BinaryIO | None = None
        self.shards: _shards.Shards | None = None

    # ------------------------------------------------------------------ shared by both modes
    def flush(self) -> None:
        if not self.batch:
            return
        todo = [(b[0], b[1]) for b in self.batch if len(b) == 3]
        found: list[dict[str, Any]] = []
        if todo:
            assert self.ctx is not None
            keys = {b[0]: b[2] for b in self.batch if len(b) == 3 and b[2] is not None}
            r = _ballots.verify_batch(self.ctx, todo, keys)
            found.extend(r.failures)
            _add_sums(self.st, r.sums)
        for b in self.batch:
            if len(b) == 2:
                found.extend(b[1])
        found.sort(key=lambda f: int(f["entry"]))  # stable: each entry's failures in the order found
        for f in found:
            self.report.add(CheckFailed(**f))
        self.batch = []

    def tick(self, pos: int) -> None:
        if self.progress is not None and (time.monotonic() - self.last_progress > 0.1 or pos == self.total):
            self.progress(pos, self.total)
            self.last_progress = time.monotonic()

    def context(self) -> _ballots.BallotContext:
        """The ballot context at this entry (rebuilt, after the batch so far is checked, when the roll
        commitment changed: as a serial run always did)."""
        st = self.st
        if st.roll_size is not None and st.roll_root is not None:
            key: tuple[int, bytes] | None = (st.roll_size, st.roll_root)
        else:
            key = None
        if self.ctx is not None and key == self.ctx_key:  # per ballot: no RollCommitment made to compare
            return self.ctx
        assert st.info is not None and st.joint_key is not None
        roll = None if key is None else _ballots.RollCommitment(*key)
        if self.ctx is None or self.ctx_roll != roll:  # a roll commitment after a ballot is a V8 failure
            self.flush()
            self.ctx = _ballots.BallotContext.create(st.info, st.joint_key, roll, self.report.engine)
            self.ctx_roll = roll
        self.ctx_key = key
        return self.ctx

    def entry(self, i: int, pos: int, line: bytes) -> bool:
        """Handle one entry from its line; False when the rest of the record cannot be interpreted."""
        report, st = self.report, self.st
        st.entries = i + 1
        self.tick(pos)
        entry = _record(report, _ledger.parse_entry, line, i)
        if entry is None:
            return i != 0  # without the manifest nothing else can be interpreted (V1 already failed)
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
                return False
            st.info = _record(report, read_manifest, payload)
            return st.info is not None
        if st.info is None:
            return False
        self.binding(i, payload)
        if etype in BALLOT_TYPES:
            if st.joint_key is None:
                return True  # reported by V8 (a ballot before the joint key) or V11
            self.context()
            _record(report, index_ballot, report, st, self.index, i, etype, payload)
            key = None
            if etype == EventType.BALLOT_CAST:
                key = _record(report, _kiosk.kiosk_ballot, report, st, i, payload)
            self.add_ballot((i, line, key))
            return True
        _record(report, _other_event, report, st, i, etype, payload)
        return True

    def binding(self, i: int, payload: dict[str, Any]) -> None:
        info = self.st.info
        assert info is not None
        if payload.get(ELECTION_ID) != info.election_id or payload.get(BASE_HASH) != info.base_hash.hex():
            self.report.fail(*_UNBOUND, entry=i)

    def add_ballot(self, b: tuple[int, tuple[dict[str, Any], ...]] | tuple[int, bytes, bytes | None]) -> None:
        self.batch.append(b)
        if len(self.batch) >= self.opts.batch_size:
            self.flush()

    # ------------------------------------------------------------------ the slices
    def ballots(self, run: list[_slices.BallotFacts], snapshot: _ballots.BallotContext) -> None:
        """Consecutive ballots a worker read: :meth:`entry`'s part for each, from what the worker returned
        (their V15 values are in the slice's shards: :mod:`verifier._shards`)."""
        for b in run:
            self.ballot(b, snapshot)
        cast = EventType.BALLOT_CAST
        self.index.add_lines([(b.entry_index, b.start, b.end) for b in run if b.etype == cast])

    def ballot(self, b: _slices.BallotFacts, snapshot: _ballots.BallotContext) -> None:
        """One ballot a worker read: :func:`index_ballot`'s effects but V15's (the shards'), V8, V7, V31."""
        report, st, i = self.report, self.st, b.entry_index
        if st.joint_key is None:  # never after the first ballot (the snapshot); handled as before if it were
            self.entry(i, b.end, self.read(b.start, b.end))
            return
        st.entries = i + 1
        self.tick(b.end)
        _record(report, check_order, st, i, b.etype)
        if not b.bound:
            self.report.fail(*_UNBOUND, entry=i)
        ctx = self.context()
        cast = b.etype == EventType.BALLOT_CAST
        if not b.hash_ok:
            report.fail("ballot.binding", "ballot_hash missing", entry=i)
        elif not cast:
            st.spoiled += 1  # a replay is taken off at the end (Shards.finish)
        else:
            st.cast += 1
            if b.counting is None:
                report.fail("ballot.binding", "cast ballot without voter_alias, channel or seq", entry=i)
            else:
                self.index.add_cast(CastRow(i, *b.counting))
        key = None
        if cast and b.kiosk is not None:
            key = _record(report, _kiosk.kiosk_ballot, report, st, i, b.kiosk)
        if ctx is snapshot and key == b.kiosk_key:
            self.add_ballot((i, b.failures))
            return
        # the worker checked this ballot in another context than this entry's: check it again here
        line = self.read(b.start, b.end)
        if b.summed:
            for k, ct in _ballots.ballot_ciphertexts(line).items():
                have = st.sums.get(k, ZERO)
                st.sums[k] = Ciphertext(have.a - ct.a, have.b - ct.b)
        self.add_ballot((i, line, key))

    def read(self, start: int, end: int) -> bytes:
        if self._file is None:
            self._file = self.src.entries_path.open("rb")
        self._file.seek(start)
        raw: bytes = self._file.read(min(end - start, _slices.MAX_LINE))
        return raw.rstrip(b"\n")  # as RecordSource.read_line (kept open: a fallback may re-read many)

    def slices(self, i: int, start: int) -> None:
        """Entries ``i``, ... (from byte ``start``) by slices, the first being a ballot whose context is the
        snapshot."""
        st = self.st
        snapshot = self.context()
        keys = {kid: k.public_key for kid, k in st.kiosks.items()}
        ctx: Any = self.ex.shared(snapshot) if isinstance(self.ex, DaskExecutor) else snapshot
        workers = max(1, self.opts.workers)
        stop = False
        shards = self.shards = _shards.Shards(_shards.shard_count(self.total))

        def consume(results: Iterator[_slices.SliceResult]) -> None:
            nonlocal stop
            for r in results:
                structure = self.structure.get()
                if structure is not None:
                    structure.feed(r.start, r.end, r.facts)
                if stop:
                    continue
                shards.add(r.shards)
                _add_sums(st, r.sums)
                run: list[_slices.BallotFacts] = []
                for item in r.items:
                    if isinstance(item, _slices.BallotFacts):
                        run.append(item)
                        continue
                    if run:
                        self.ballots(run, snapshot)
                        run = []
                    if not self.entry(*item):
                        stop = True
                        break
                if run and not stop:
                    self.ballots(run, snapshot)

        with self.src.entries_path.open("rb") as f:
            for first, pos, data in _slices.plan_slices(f, start, i, self.total, workers):
                job = (ctx, keys, first, pos, data, self.opts.batch_size, shards.count)
                consume(self.ex.submit(_slices.verify_slice, *job))
        consume(self.ex.drain())
        shards.finish(self.report, st, self.index, self.ex)

    def run(self) -> None:
        try:
            start = 0
            for i, (pos, line) in enumerate(self.src.lines()):
                st = self.st
                if i and st.info is not None and st.joint_key is not None and _slices.is_ballot_line(line):
                    self.slices(i, start)
                    break
                if not self.entry(i, pos, line):
                    return
                start = pos
            self.flush()
        finally:
            if self.shards is not None:
                self.shards.close()
            if self._file is not None:
                self._file.close()
        if self.progress is not None:
            self.progress(self.total, self.total)


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
