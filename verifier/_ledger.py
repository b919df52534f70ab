"""V1-V6 and V22: the record's structure, by ``ledger.record.check_record``, mapped to numbered checks.

The chain, tree, checkpoint, cosignature and consistency checks are the ledger's own
(``ledger.record.check_record``, format ``docs/record.md``); this module does not re-implement them.
It maps each of the ledger's typed error codes to the verifier's numbered check, adds what the ledger
cannot know (the witnesses must be the ones the *manifest* names, optional pinned keys given by the
auditor), and checks the result declaration (V22) with :func:`verifier._pdf.check_result_pdf`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import hashes

from ledger import LedgerError, RecordError
from ledger.record import (
    ENTRIES_FILE,
    READ_LIMIT,
    CheckpointRecord,
    EntryStream,
    LineFacts,
    Record,
    RecordSummary,
    check_sequence,
    cosignature_verdicts,
    dumps_header,
    line_facts,
    read_record,
)

from ._checks import fail, failure
from ._errors import CheckFailed
from ._lang import text
from ._manifest import ElectionInfo
from ._report import Report
from ._source import RecordSource, load_json

__all__ = [
    "Cosigned",
    "LedgerView",
    "StructureCheck",
    "check_declaration",
    "check_structure",
    "checkpoint_hash",
    "entry_of",
    "header_job",
    "open_structure",
    "parse_entry",
]

#: why V22 could not run (``Report.not_checked``): a missing input, not a failure of the record
NO_TRUST_ROOT: Final[str] = text("reason.no-trust-root")
NO_PINNED_ROOT: Final[str] = text("reason.no-pinned-root")
NO_PDF: Final[str] = text("reason.no-pdf")

#: ledger.record's error ``check`` codes → the verifier's numbered checks.
LEDGER_CODES: Final[dict[str, int]] = {
    "record-format": 1,
    "entry-format": 1,
    "entry-count": 1,
    "checkpoint-count": 1,
    "entry-duplicate": 2,
    "entry-inserted": 2,
    "entry-index": 2,
    "entry-chain": 2,
    "entry-root": 3,
    "entry-missing": 3,
    "entry-unsigned": 3,
    "checkpoint-fields": 3,
    "checkpoint-missing": 4,
    "checkpoint-signature": 4,
    "checkpoint-cosignature": 5,
    "checkpoint-witnessed": 5,
    "checkpoint-order": 6,
    "checkpoint-consistency": 6,
}
_IDS: Final[dict[int, str]] = {
    1: "record.format",
    2: "ledger.chain",
    3: "ledger.tree",
    4: "ledger.checkpoint-signature",
    5: "ledger.cosignatures",
    6: "ledger.consistency",
}


@dataclass(frozen=True)
class LedgerView:
    record: Record
    summary: RecordSummary | None

    @property
    def size(self) -> int:
        return self.record.header.entry_count if self.summary is None else self.summary.size

    @property
    def checkpoints(self) -> tuple[CheckpointRecord, ...]:
        return self.record.checkpoints


def checkpoint_hash(cp: CheckpointRecord) -> str:
    """The hash by which the result declaration cites a checkpoint: SHA-256 of its signed-note text."""
    return hashlib.sha256(cp.note.encode("utf-8")).hexdigest()


def map_ledger_error(e: LedgerError) -> CheckFailed:
    code = getattr(e, "check", "record-format")
    step = LEDGER_CODES.get(code, 1)
    msg = getattr(e, "message", str(e))
    return failure(_IDS[step], f"{msg} (ledger check '{code}')", entry=getattr(e, "index", None))


def open_structure(src: RecordSource, report: Report, *, log_key: str | None = None) -> Record | None:
    """V1's and V4's checks of ``record.json`` and ``checkpoints.jsonl``: the parsed record, or ``None`` if
    it is unreadable."""
    try:
        rec = read_record(src.directory)
    except LedgerError as e:
        report.fail("record.format", f"record.json or checkpoints.jsonl: {e}")
        return None
    # V1: record.json is not covered by any hash, so it must be byte-exact (no silent edits, even of
    # whitespace): it is the canonical rendering of what it says.
    try:
        if (src.directory / "record.json").read_bytes() != dumps_header(rec.header):
            report.fail("record.format", "record.json is not in its canonical form")
    except OSError as e:
        report.fail("record.format", f"record.json: {e}")
    if log_key is not None and rec.header.log_key.vkey != log_key:
        report.fail(
            "ledger.checkpoint-signature", "the record's log key is not the one pinned with --log-key"
        )
    return rec


def _sequence_failure(report: Report, e: LedgerError) -> None:
    if isinstance(e, RecordError):
        report.add(map_ledger_error(e))
    else:
        report.fail("record.format", str(e))


def check_structure(src: RecordSource, report: Report, *, log_key: str | None = None) -> LedgerView | None:
    """V1-V6 in one pass of this process over the record (the reference of :class:`StructureCheck`, which a
    run uses). Returns the parsed record (for checkpoints) or ``None`` if ``record.json`` is unreadable."""
    rec = open_structure(src, report, log_key=log_key)
    if rec is None:
        return None
    summary: RecordSummary | None = None
    try:
        summary = check_sequence(rec.header, rec.entry_lines(), rec.checkpoints)
    except LedgerError as e:
        _sequence_failure(report, e)
    for step in range(1, 7):
        report.passed(_IDS[step])
    return LedgerView(rec, summary)


@dataclass(frozen=True)
class Cosigned:
    """The checkpoints' cosignature verdicts (``ledger.record.cosignature_verdicts``) from another process."""

    verdicts: list[str | None]


HeaderJob = tuple[list[dict[str, Any]], Record | None, Cosigned | None]


def header_job(directory: str, log_key: str | None) -> HeaderJob:
    """:func:`open_structure` and the checkpoints' witness cosignatures as a picklable job for another
    process, beside the pass: the witness keys' proofs of possession and the cosignatures are BLS pairings
    (about half a second each in pure Python), which do not depend on the entries. Returns the failures, the
    parsed record and the cosignature verdicts."""
    report = Report(record=directory)
    d = Path(directory)
    rec = open_structure(RecordSource(d, origin=d), report, log_key=log_key)
    cosigned = None if rec is None else Cosigned(cosignature_verdicts(rec.header, rec.checkpoints))
    return [f.to_dict() for f in report.failures], rec, cosigned


class StructureCheck:
    """V1-V6 of the entries (``ledger.record.check_sequence``) from their lines' facts, fed in ledger order.

    The slice workers compute the facts of their lines (:func:`ledger.record.line_facts`: the parse, the
    canonical form and the hash, the bulk of the work) and :meth:`feed` takes each slice's in turn; what no
    worker read (the entries before the first ballot, or the rest of a record that cannot be interpreted)
    :meth:`read_to` reads from the file itself, as the ledger's reader cuts it. One
    :class:`ledger.record.EntryStream` judges them (chain, first bad entry, Merkle roots at the checkpoint
    sizes): the check, and its errors, are exactly :func:`check_structure`'s."""

    def __init__(self, src: RecordSource, rec: Record) -> None:
        self.src, self.rec = src, rec
        self.stream = EntryStream(cp.size for cp in rec.checkpoints)
        self.offset = 0  # the bytes of entries.jsonl judged so far
        self.error: LedgerError | None = None
        #: the cosignature verdicts if another process computed them (:func:`header_job`), else checked here
        self.cosigned: Cosigned | None = None

    def _push(self, facts: LineFacts) -> None:
        try:
            self.stream.push(facts)
        except LedgerError as e:
            self.error = e

    def feed(self, start: int, end: int, facts: Sequence[LineFacts]) -> None:
        """The facts of the lines from byte ``start`` to ``end`` (a worker's slice), in order."""
        self.read_to(start)
        if self.error is None:
            try:
                self.stream.extend(facts)
            except LedgerError as e:
                self.error = e
        self.offset = max(self.offset, end)

    def read_to(self, end: int | None) -> None:
        """Judge the lines from :attr:`offset` up to byte ``end`` (the end of the file if None) itself."""
        if self.error is not None or (end is not None and self.offset >= end):
            return
        try:
            with self.src.entries_path.open("rb") as f:
                f.seek(self.offset)
                while end is None or self.offset < end:
                    line = f.readline(READ_LIMIT)  # as Record.entry_lines
                    if not line:
                        break
                    self.offset += len(line)
                    self._push(line_facts(line)[0])
                    if self.error is not None:
                        return
        except OSError as e:
            self.error = RecordError("record-format", f"cannot read {ENTRIES_FILE}: {e.strerror}")

    def finish(self, report: Report) -> LedgerView:
        """After the pass: the rest of the file, the checkpoints; failures go to ``report``."""
        self.read_to(None)
        summary: RecordSummary | None = None
        if self.error is None:
            try:
                verdicts = None if self.cosigned is None else self.cosigned.verdicts
                summary = self.stream.summary(self.rec.header, self.rec.checkpoints, cosignatures=verdicts)
            except LedgerError as e:
                self.error = e
        if self.error is not None:
            _sequence_failure(report, self.error)
        for step in range(1, 7):
            report.passed(_IDS[step])
        return LedgerView(self.rec, summary)


def check_witnesses_match(
    view: LedgerView | None, info: ElectionInfo, report: Report, *, allow_unwitnessed: bool = False
) -> None:
    """V5: "... cosigned by at least the quorum of witnesses listed in the manifest": record.json's witness
    policy must be the manifest's (otherwise whoever exports the record could name other witnesses).

    A manifest with no witnesses (quorum 0) fails V5 as *unwitnessed*: nothing independent of the server
    cosigned any checkpoint, so a split view (one log shown to some voters, another to others, and this
    record to the auditor) cannot be excluded. ``allow_unwitnessed`` (``--unsafe-allow-unwitnessed``, for
    development records) turns that failure into a note; it never excuses a missing cosignature when the
    manifest names witnesses (the ledger's ``checkpoint-witnessed`` check)."""
    if view is None:
        return
    pol = view.record.header.policy
    mine = sorted((w.name, w.public_key.hex(), w.pop.hex()) for w in pol.witnesses)
    theirs = sorted(info.witness_keys)
    if mine != theirs or pol.quorum != info.witness_quorum:
        report.fail(
            "ledger.cosignatures",
            "record.json's witnesses or quorum differ from the manifest's",
            entry=0,
        )
    if info.witness_quorum == 0:
        why = (
            "the ledger is unwitnessed: the manifest names no witnesses (quorum 0), so no checkpoint is "
            "cosigned and a split view (different logs shown to different voters) cannot be excluded"
        )
        if allow_unwitnessed:
            report.notes.append(
                f"V5 ledger.cosignatures: UNWITNESSED, accepted by --unsafe-allow-unwitnessed: {why}"
            )
        else:
            report.fail("ledger.cosignatures", why, entry=0)


def parse_entry(line: bytes, i: int) -> tuple[str, dict[str, Any]]:
    """Decode one entry line for the semantic checks (V1 if it is not an entry object, or if it is larger or
    nested deeper than an entry may be: checked before it is decoded)."""
    try:
        obj = load_json(line)
    except ValueError as e:  # InvalidEntry (size, nesting), JSONDecodeError, UnicodeDecodeError
        fail("record.format", f"entry is not JSON within the entry limits: {e}", entry=i)
    return entry_of(obj, i)


def entry_of(obj: Any, i: int) -> tuple[str, dict[str, Any]]:
    """:func:`parse_entry` of the entry at ``i`` already decoded (a worker has it from
    ``ledger.record.line_facts`` when the line is a canonical entry: the same object ``load_json`` gives)."""
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("type"), str)
        or not isinstance(obj.get("payload"), dict)
    ):
        fail("record.format", "entry is not an object with a type and a payload", entry=i)
    if obj.get("index") != i:
        fail("ledger.chain", f"entry at position {i} carries index {obj.get('index')!r}", entry=i)
    return obj["type"], obj["payload"]


def check_declaration(
    src: RecordSource,
    report: Report,
    declaration: dict[str, Any],
    entry: int | None,
    result_payload: dict[str, Any] | None,
    view: LedgerView | None,
    pdf_path: Path | None,
    trust_roots: Sequence[Any],
    *,
    pinned_root: str | None = None,
    manifest: dict[str, Any] | None = None,
    roll_size: int | None = None,
) -> None:
    """V22 result.pdf: "result.pdf hashes to the declaration's pdf_sha256, its PAdES signature verifies
    against the commission's trust root, and every figure it prints and its checkpoint agree with the record"
    (the result, the roll size from ``manifest`` and ``roll_size``, turnout and blank ballots;
    :func:`verifier._pdf.check_result_pdf`)."

    With a ``pinned_root`` (the SHA-256 fingerprint pinned by the pins file or the manifest) the trust root
    is the certificate with that fingerprint, taken from ``trust_roots`` (``--trust-root``) or from the
    certificates the PDF's signature carries; any other given root is not trusted."""
    from ._pdf import ResultPdfError, check_result_pdf, pdf_embedded_certificates

    path = pdf_path or src.find("result.pdf")
    if path is None:
        # a missing input, not a failure: the record's entries may be sound; without the PDF the declaration
        # cannot be checked (the verdict is then NOT FULLY VERIFIED, never VALID)
        report.not_checked("result.pdf", NO_PDF)
        return
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != declaration.get("pdf_sha256"):
        report.fail("result.pdf", "result.pdf does not hash to the declaration's pdf_sha256", entry=entry)
    size, cited = declaration.get("checkpoint_size"), declaration.get("checkpoint_hash")
    if view is not None:
        match = [cp for cp in view.checkpoints if cp.size == size]
        if not match or checkpoint_hash(match[0]) != cited:
            report.fail(
                "result.pdf",
                f"the declaration cites no checkpoint of size {size!r} with that hash",
                entry=entry,
            )
    if result_payload is None:
        report.fail("result.pdf", "a declaration without a tally.result", entry=entry)
        return
    if manifest is None or roll_size is None:
        report.fail(
            "result.pdf",
            "a declaration in a record without a manifest or roll commitment to check its figures against",
            entry=entry,
        )
        return
    if pinned_root is not None:
        given = bool(trust_roots)
        candidates = [*trust_roots, *pdf_embedded_certificates(data)]
        trust_roots = [c for c in candidates if c.fingerprint(hashes.SHA256()).hex() == pinned_root][:1]
        if not trust_roots and given:
            report.fail(
                "result.pdf",
                "neither --trust-root nor the PDF's signature holds the pinned commission root "
                f"(SHA-256 {pinned_root})",
                entry=entry,
            )
            return
        if not trust_roots:
            report.not_checked("result.pdf", NO_PINNED_ROOT)
            return
    if not trust_roots:
        report.not_checked("result.pdf", NO_TRUST_ROOT)
        return
    try:
        check_result_pdf(
            data, trust_roots, result_payload, str(cited), manifest=manifest, roll_size=roll_size
        )
    except ResultPdfError as e:
        report.fail("result.pdf", e.operator_message, entry=entry)
        return
    report.passed("result.pdf")
