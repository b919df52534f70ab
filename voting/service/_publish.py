"""Stage 6, decryption and publication: the trustees' partial decryptions (``tally.partial``, and
``tally.excluded`` for one whose proofs fail), the combined result (``tally.result``), the signed result
declaration PDF (``result.declaration``), and the export of the election record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select

from crypto import CryptoError, InvalidEncoding, PartialDecryption, ThresholdError, verify_partial
from ledger.events import BOUND_KEYS, EventType
from ledger.files import write_atomic
from ledger.record import RESULT_FILE, archive_record

from .._db import PartialRow
from .._errors import Conflict, Forbidden, NotFound, RejectedSubmission, ServiceUnavailable
from ._core import Replay, replays
from ._tally import TallyStage

__all__ = ["PartialOutcome", "PublishStage", "ledger_checkpoint"]


@dataclass(frozen=True, slots=True)
class PartialOutcome:
    trustee: int
    accepted: bool
    ledger_index: int
    reason: str | None = None


def ledger_checkpoint(ledger: Any) -> tuple[int, str, str]:
    """A fresh signed checkpoint: ``(tree size, SHA-256 of its signed-note text, that text)``
    (docs/record.md)."""
    cp = ledger.checkpoint()
    note = str(cp.signed.note)
    return int(cp.size), hashlib.sha256(note.encode("utf-8")).hexdigest(), note


class PublishStage(TallyStage):
    """Decrypt the tally with the trustees' partials, publish and declare the result, export the record."""

    def submit_partials(self, trustee: int, partials: Mapping[str, Mapping[str, Any]]) -> PartialOutcome:
        """Record trustee ``trustee``'s partial decryptions (``tally.partial``).

        A malformed submission (wrong shape, undecodable, another trustee's index) is refused with a 4xx and
        changes nothing. A well-formed one is published; if any of its Chaum–Pedersen proofs fails, a
        ``tally.excluded`` entry names the trustee and the failed check, and the partial is never combined.
        """
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "tallied":
                raise Conflict(
                    "election.phase",
                    f"partial decryptions are accepted after the tally (phase '{row.phase}')",
                )
            if s.get(PartialRow, (row.election_id, trustee)) is not None:
                raise Conflict("partial.duplicate", "this trustee already submitted its partial decryptions")
            cts = self._tally_ciphertexts(self._tally(row)["payload"])
            expected = {c: {sel for (cc, sel) in cts if cc == c} for (c, _) in cts}
            if set(partials) != set(expected) or any(set(partials[c]) != expected[c] for c in expected):
                raise RejectedSubmission(
                    "partial.shape", "partials must cover exactly the manifest's contests and selections"
                )
            parsed: dict[tuple[str, str], PartialDecryption] = {}
            for key in cts:
                try:
                    pd = PartialDecryption.from_dict(partials[key[0]][key[1]])
                except (InvalidEncoding, CryptoError) as e:
                    raise RejectedSubmission("partial.encoding", f"{key[0]}/{key[1]}: {e}") from e
                if pd.trustee != trustee:
                    raise Forbidden(
                        "partial.trustee", "a trustee can only submit its own partial decryptions"
                    )
                parsed[key] = pd
            jk = self.joint_key()
            reason: str | None = None
            for key, pd in parsed.items():
                try:
                    verify_partial(pd, cts[key], jk)
                except ThresholdError as e:
                    reason = f"{key[0]}/{key[1]}: {e.check}"
                    break
            published: dict[str, dict[str, Any]] = {}
            for (c, sel), pd in parsed.items():
                published.setdefault(c, {})[sel] = pd.to_dict()
            s.add(
                PartialRow(
                    election_id=row.election_id,
                    trustee=trustee,
                    partials_json=json.dumps(published),
                    status="accepted" if reason is None else "excluded",
                    reason=reason,
                )
            )
            items = [(EventType.TALLY_PARTIAL, self._payload(trustee=trustee, partials=published))]
            if reason is not None:
                items.append((EventType.TALLY_EXCLUDED, self._payload(trustee=trustee, reason=reason)))
            index = self._append_many(items, row)
            s.commit()
        return PartialOutcome(trustee, reason is None, index, reason)

    def publish_result(self) -> dict[str, Any]:
        """Combine ``t`` accepted partials per selection, decode the counts, append ``tally.result``."""
        from crypto import combine, discrete_log

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "tallied":
                raise Conflict(
                    "election.phase", f"the result is computed after the tally (phase '{row.phase}')"
                )
            tally = self._tally(row)
            cts = self._tally_ciphertexts(tally["payload"])
            accepted = {
                p.trustee: json.loads(p.partials_json)
                for p in s.exec(
                    select(PartialRow).where(
                        PartialRow.election_id == row.election_id, PartialRow.status == "accepted"
                    )
                )
            }
            jk = self.joint_key()
            if len(accepted) < jk.threshold:
                raise Conflict(
                    "tally.too_few_partials",
                    f"{len(accepted)} valid partial decryptions, need t = {jk.threshold}",
                )
            used = tuple(sorted(accepted)[: jk.threshold])
            bound = tally["summary"]["counted"]
            results: dict[str, dict[str, int]] = {}
            for (c, sel), ct in cts.items():
                parts = [PartialDecryption.from_dict(accepted[j][c][sel]) for j in used]
                comb = combine(ct, parts, jk)
                if comb.excluded:  # pragma: no cover - partials were verified on submission
                    raise Conflict("tally.partial_invalid", f"a stored partial fails for {c}/{sel}")
                results.setdefault(c, {})[sel] = discrete_log(comb.point, bound)
            payload = self._payload(results=results, trustees_used=list(used), **tally["summary"])
            row.phase = "decrypted"
            row.result_json = json.dumps(payload)
            s.add(row)
            index = self._append(EventType.TALLY_RESULT, payload, row)
            s.commit()
        return {"ledger_index": index, **payload}

    def result(self) -> dict[str, Any]:
        row = self.election()
        if row.result_json is None:
            raise Conflict("result.none", "the result has not been published")
        r: dict[str, Any] = json.loads(row.result_json)
        return r

    # -------------------------------------------------------------------------------- declaration, export

    def record_url(self) -> str:
        """The public record's address printed on the declaration (``TVOTE_PUBLIC_RECORD_URL``)."""
        return self.settings.effective_public_record_url

    def declare_result(self, signer: Any | None = None) -> dict[str, Any]:
        """Build the signed result declaration PDF citing a fresh checkpoint; append ``result.declaration``.

        ``signer`` is a :class:`voting._result_pdf.CommissionSigner`; by default the commission key in
        ``data_dir`` (created on first use in development/test, required in production).
        """
        from .._result_pdf import build_result_pdf

        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "decrypted":
                raise Conflict("election.phase", f"the declaration follows the result (phase '{row.phase}')")
            result = json.loads(row.result_json or "{}")
            if row.roll_size is None:  # pragma: no cover - voting opened only after the roll commitment
                raise Conflict("roll.none", "the roll was never committed")
            size, cp_hash, note = ledger_checkpoint(self.ledger)
            pdf = build_result_pdf(
                self.manifest.to_dict(),
                {k: v for k, v in result.items() if k not in BOUND_KEYS},
                checkpoint_note=note,
                record_url=self.record_url(),
                roll_size=row.roll_size,
                signer=signer or self.commission_signer(),
                commission=self.settings.commission_name,
                signatory=self.settings.signatory_title,
            )
            pdf_path = self.settings.data_dir / "result.pdf"
            pdf_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(pdf_path, pdf)  # before the append: the entry names its hash
            digest = hashlib.sha256(pdf).hexdigest()
            row.phase = "declared"
            s.add(row)
            index = self._append(
                EventType.RESULT_DECLARATION,
                self._payload(pdf_sha256=digest, checkpoint_size=size, checkpoint_hash=cp_hash),
                row,
            )
            s.commit()
        return {
            "ledger_index": index,
            "pdf_sha256": digest,
            "checkpoint_size": size,
            "checkpoint_hash": cp_hash,
            "pdf_path": str(pdf_path),
        }

    def result_pdf(self) -> bytes:
        p = self.settings.data_dir / "result.pdf"
        if self.phase != "declared" or not p.exists():
            raise NotFound("result.no_pdf", "the result declaration has not been produced")
        return p.read_bytes()

    def commission_signer(self) -> Any:
        """The commission's PDF-signing key and certificate from ``data_dir`` (see docs/operator-guide.md)."""
        from .._commission_key import load_or_create_commission_signer

        return load_or_create_commission_signer(self.settings)

    def export(self, directory: str | Path) -> Path:
        """Write the election record (ledger export plus ``result.pdf``) into ``directory``."""
        out = Path(directory)
        self.ledger.checkpoint()  # cover every committed entry
        pdf = self.settings.data_dir / RESULT_FILE
        self.ledger.export(out, {RESULT_FILE: pdf.read_bytes()} if pdf.exists() else None)
        return out

    def export_archive_bytes(self) -> bytes:
        """The record archive (docs/record.md §1, with ``result.pdf``): the record format's one writer."""
        import io
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            buf = io.BytesIO()
            archive_record(self.export(Path(tmp) / "record"), buf)
            return buf.getvalue()

    @replays(EventType.TALLY_PARTIAL)
    def _replay_partial(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        if s.get(PartialRow, (eid, p["trustee"])) is not None:
            return False
        s.add(
            PartialRow(
                election_id=eid,
                trustee=p["trustee"],
                partials_json=json.dumps(p["partials"]),
                status="accepted",  # a tally.excluded entry follows in the same batch if it was not
            )
        )
        return True

    @replays(EventType.TALLY_EXCLUDED)
    def _replay_excluded(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        part = s.get(PartialRow, (eid, p["trustee"]))
        if part is None:
            raise ServiceUnavailable("reconcile.partial", f"entry {index} excludes an unknown partial")
        if part.status == "excluded":
            return False
        part.status, part.reason = "excluded", p["reason"]
        s.add(part)
        return True

    @replays(EventType.TALLY_RESULT)
    def _replay_result(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.row
        changed = row.result_json is None
        if changed:
            row.result_json = json.dumps(p)
        return self._advance(row, "decrypted") or changed

    @replays(EventType.RESULT_DECLARATION)
    def _replay_declaration(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        pdf = self.settings.data_dir / "result.pdf"
        if not pdf.exists() or hashlib.sha256(pdf.read_bytes()).hexdigest() != p["pdf_sha256"]:
            r.problems.append(f"entry {index}: result.pdf is missing or not the declared PDF (restore it)")
        return self._advance(r.row, "declared")
