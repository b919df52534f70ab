"""The intake's receipts: the receipt of a cast or spoiled ballot (an inclusion proof against a signed
checkpoint, or *pending* until the scheduled checkpoint covers it) and a fresh one found by tracking code
(``IntakeService.find``); a stage of :class:`~voting.service.IntakeService` (see ``_intake``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import select

from crypto import normalize_tracking_code
from ledger import NotFound as LedgerNotFound

from .._errors import InvalidRequest, NotFound
from .._intake_db import IntakeBallot
from ..receipt import Receipt
from ._intake_checks import IntakeChecks


@dataclass
class IntakeReceipts(IntakeChecks):
    def _receipt(
        self,
        kind: Literal["cast", "spoiled"],
        ballot_hash: str,
        tracking_code: str,
        index: int,
        entry_hash: bytes,
        *,
        channel: str | None = None,
        seq: int | None = None,
        appended: bool = False,
    ) -> Receipt:
        """The receipt of the ballot at ``index``: its inclusion proof against the newest signed checkpoint
        when one covers it, else (``checkpoint_per_receipt`` off) *pending*, else against a checkpoint signed
        for it.

        ``appended``: this call's caller has just appended the entry. With ``checkpoint_per_receipt`` off,
        while this process knows of no checkpoint covering it (``Ledger.known_checkpoint_size``, no storage
        read), the receipt is pending without reading the newest checkpoint: one covering the
        entry can only have been signed after its append, so a read at the moment of the append would have
        found none either (that is this receipt's moment; another process's checkpoint signed since is for
        :meth:`find`). When this process knows of one (its keeper signed it meanwhile), the newest is read."""

        def receipt(checkpoint: str | None, proof: tuple[str, ...] | None) -> Receipt:
            return Receipt(
                kind=kind,
                election_id=self.election_id,
                ballot_hash=ballot_hash,
                tracking_code=tracking_code,
                leaf_index=index,
                entry_hash=entry_hash.hex(),
                checkpoint=checkpoint,
                inclusion_proof=proof,
                channel=channel,
                seq=seq,
            )

        if appended and not self.checkpoint_per_receipt and int(self.ledger.known_checkpoint_size) <= index:
            return receipt(None, None)  # pending: the scheduled checkpoint will cover it
        try:
            stored = self.ledger.latest_checkpoint()
        except LedgerNotFound:
            stored = None
        if stored is None or int(stored.size) <= index:  # no checkpoint covers the entry yet
            if not self.checkpoint_per_receipt:  # pending: the scheduled checkpoint will cover it
                return receipt(None, None)
            stored = self.ledger.checkpoint()
        proof = self.ledger.inclusion_proof(index, int(stored.size))
        if proof.leaf_hash != entry_hash:  # pragma: no cover - the ledger contradicts its own append
            raise NotFound("ballot.not_found", "the ledger entry does not match this ballot")
        return receipt(stored.signed.note, tuple(p.hex() for p in proof.proof))

    def find(self, tracking_code: str) -> Receipt:
        """A fresh receipt (proof against the latest checkpoint) for a tracking code or ballot hash."""
        with self._session() as s:
            if len(tracking_code) == 64:
                row = s.get(IntakeBallot, tracking_code.lower())
            else:
                try:
                    code = normalize_tracking_code(tracking_code)
                except ValueError:
                    raise InvalidRequest("tracking_code.format", "not a tracking code") from None
                rows = list(s.exec(select(IntakeBallot).where(IntakeBallot.tracking_code == code)))
                row = rows[0] if len(rows) == 1 else None
            if row is None or row.election_id != self.election_id:
                raise NotFound("ballot.not_found", "no ballot with this tracking code is on the record")
        entry_hash = self.ledger.inclusion_proof(row.ledger_index, row.ledger_index + 1).leaf_hash
        kind: Literal["cast", "spoiled"] = "cast" if row.kind == "cast" else "spoiled"
        return self._receipt(
            kind,
            row.ballot_hash,
            row.tracking_code,
            row.ledger_index,
            bytes(entry_hash),
            channel=row.channel,
            seq=row.seq,
        )
