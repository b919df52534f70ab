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
from ledger.record import CheckpointRecord, Record, RecordSummary, check_sequence, dumps_header, read_record

from ._checks import fail, failure
from ._errors import CheckFailed
from ._lang import text
from ._manifest import ElectionInfo
from ._report import Report
from ._source import RecordSource, load_json

__all__ = [
    "LedgerView",
    "check_declaration",
    "check_structure",
    "checkpoint_hash",
    "parse_entry",
    "structure_job",
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


def check_structure(src: RecordSource, report: Report, *, log_key: str | None = None) -> LedgerView | None:
    """V1-V6. Returns the parsed record (for checkpoints) or ``None`` if ``record.json`` is unreadable."""
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
    summary: RecordSummary | None = None
    try:
        summary = check_sequence(rec.header, rec.entry_lines(), rec.checkpoints)
    except RecordError as e:
        report.add(map_ledger_error(e))
    except LedgerError as e:
        report.fail("record.format", str(e))
    for step in range(1, 7):
        report.passed(_IDS[step])
    return LedgerView(rec, summary)


def structure_job(directory: str, log_key: str | None) -> tuple[list[dict[str, Any]], LedgerView | None]:
    """:func:`check_structure` as a picklable job for another process (runs beside the ballot checks)."""
    report = Report(record=directory)
    d = Path(directory)
    view = check_structure(RecordSource(d, origin=d), report, log_key=log_key)
    return [f.to_dict() for f in report.failures], view


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
