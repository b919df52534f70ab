"""The intake's authentication evidence: kept as a *pending* row before a cast's append (sealed to the
observers' oversight key when the manifest names one, ``voting._oversight``), dropped if nothing was
appended, read back by auditors (development only: sealed evidence cannot be read by the server), and
exported sealed to the observers (``evidence.exported``, whose replay leaves no private state).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import rfc8785
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from ledger.events import EventType

from .._db import RollEntryRow
from .._errors import Conflict, NotFound
from .._intake_db import AuthEvidence
from .._oversight import EVIDENCE_EXPORT_FORMAT, EXPORT_EVENT, export_hash, sealed_evidence, sealed_roll
from ._core import Replay, ServiceCore, ledger_entries, replays
from ._intake_auth import _Authenticated
from ._intake_checks import IntakeChecks, drop_pending
from ._intake_replay import settle_pending

__all__ = ["IntakeEvidence"]

_log = logging.getLogger("tvote.intake")

# A voter's pending evidence (an attempt that ended without its record), built once and bound by name at each
# execution: the ORM rows that settle_pending needs, read when a cast's read under the voter's lock
# (``voting._intake_db.VOTER_AT_LOCK``) found any (rarely)
_PENDING_OF = (
    select(AuthEvidence)
    .where(col(AuthEvidence.election_id) == bindparam("eid"))
    .where(col(AuthEvidence.status) == "pending")
    .where(col(AuthEvidence.voter_alias) == bindparam("alias"))
)


class IntakeEvidence(IntakeChecks):
    """The pending evidence of a cast, and the observers' export of the sealed evidence."""

    # -------------------------------------------------------------------------- pending evidence (step 6)

    def _kept_evidence(self, auth: _Authenticated, ballot_hash: str) -> dict[str, Any]:
        """The evidence columns of :class:`AuthEvidence`: with the manifest's oversight key, only a sealed box
        to it (the server keeps no plaintext copy and cannot open it); without one (development), the
        plaintext."""
        oversight = self.election.manifest.oversight
        if oversight is None:
            return {"evidence": rfc8785.dumps(auth.evidence).decode("utf-8")}
        sealed = sealed_evidence(
            oversight.x25519_public_key,
            election_id=self.election_id,
            base_hash=self.election.base_hash,
            ballot_hash=ballot_hash,
            voter_alias=auth.alias.hex(),
            evidence_hash=auth.evidence_hash.hex(),
            method=auth.method,
            verified_at=auth.verified_at,
            evidence=auth.evidence,
        )
        return {"evidence": "", "sealed": sealed}

    def _drop_pending(self, evidence_hash: str) -> None:
        """After an append that did not happen: the attempt's pending evidence goes, with what it held."""
        try:
            with self._session() as s:
                row = s.get(AuthEvidence, evidence_hash)
                if row is not None and row.status == "pending":
                    drop_pending(s, [row])
                s.commit()
        except Exception:  # noqa: S110 - reconciliation deletes orphan pending rows anyway
            pass

    def _drop_unless_appended(self, evidence_hash: str, ballot_hash: str, floor: int) -> None:
        """After a failed append: unless the cast is on the ledger after all (:meth:`_on_ledger`), its
        pending evidence goes with what it held (best effort)."""
        if not self._on_ledger(ballot_hash, floor):
            self._drop_pending(evidence_hash)

    def _on_ledger(self, ballot_hash: str, floor: int) -> bool:
        """After a failed append: whether this ballot's cast is on the ledger after all (the commit's answer
        was lost), searched from ``floor`` (a size of the ledger known before the append; other voters'
        casts may follow it). ``True`` when the ledger cannot tell, so that evidence is never dropped for a
        ballot that may be on the ledger (reconciliation deletes a real orphan later)."""
        try:
            return any(
                etype == EventType.BALLOT_CAST and p.get("ballot_hash") == ballot_hash
                for _i, etype, p in ledger_entries(self.ledger, start=floor)
            )
        except Exception:
            return True

    def _settle_pending_of(self, s: Session, alias: str, now: dt.datetime) -> None:
        """Under the voter's lock (no attempt of this voter in flight, in any process): this voter's pending
        evidence belongs to attempts that ended without their record. One whose entry is on the ledger is
        replayed (its ``seq`` counts), the others are deleted with what they held; in ``s``'s transaction.
        A cast calls it only when its read under the locks found such a row (``VOTER_AT_LOCK``)."""
        rows = list(s.scalars(_PENDING_OF, {"eid": self.election_id, "alias": alias}))
        if rows:
            settle_pending(s, self.ledger, self.election_id, rows, now)

    # ----------------------------------------------------------------------------- auditors and observers

    def evidence(self, evidence_hash: str) -> dict[str, Any]:
        """The private authentication evidence behind a published ``evidence_hash`` (auditors only)."""
        with self._session() as s:
            row = s.get(AuthEvidence, evidence_hash.lower())
            if row is None or row.election_id != self.election_id:
                raise NotFound("evidence.not_found", "no evidence with this hash")
            if row.sealed is not None:
                raise Conflict(
                    "evidence.sealed",
                    "this evidence is sealed to the observers' oversight key: the server cannot read it; the "
                    "observers open the export (tvote admin export-evidence, tvote audit-evidence)",
                )
            out: dict[str, Any] = json.loads(row.evidence)
            return out

    def export_evidence(self) -> dict[str, Any]:
        """The observers' export (``voting._oversight``, ``tvote-evidence-export/1``): the sealed evidence of
        every published cast ballot, the roll key and roll sealed to the observers, and the digital-ID
        relying party's public configuration. Appends ``evidence.exported`` (oversight key, count, the
        export's SHA-256) first: every access to the evidence is on the public record.

        409 ``evidence.no_oversight_key`` when the manifest names no oversight key (nothing is sealed), and
        ``election.phase`` before voting opened."""
        oversight = self.election.manifest.oversight
        if oversight is None:
            raise Conflict(
                "evidence.no_oversight_key",
                "this election's manifest names no observers' oversight key: no evidence is sealed to export",
            )
        eid, key = self.election_id, oversight.x25519_public_key
        with self.election.appending():
            self.election.require_phase("voting", "closed", "tallied", "decrypted", "declared")
            with self._session() as s:
                rows = s.exec(
                    select(AuthEvidence)
                    .where(AuthEvidence.election_id == eid)
                    .where(AuthEvidence.status == "final")
                    .order_by(AuthEvidence.ledger_index)  # type: ignore[arg-type]
                ).all()
                roll = s.exec(
                    select(RollEntryRow.alias, RollEntryRow.match_key).where(RollEntryRow.election_id == eid)
                ).all()
            oidc = None
            if self.oidc is not None:
                c = self.oidc.config
                oidc = {
                    "issuer": c.issuer,
                    "client_id": c.client_id,
                    "acr_values": list(c.acr_values),
                    "claims_source": c.claims_source,
                    "trust_frameworks": list(c.trust_frameworks),
                    "verified_scope": c.verified_scope,
                    "max_auth_age": c.max_auth_age,
                }
            export: dict[str, Any] = {
                "format": EVIDENCE_EXPORT_FORMAT,
                "election_id": eid,
                "base_hash": self.election.base_hash.hex(),
                "oversight_key": key,
                "roll": sealed_roll(
                    key, election_id=eid, roll_key=self.election.roll_key, entries=[(a, m) for a, m in roll]
                ),
                "oidc": oidc,
                "evidence": [
                    {"evidence_hash": r.evidence_hash, "ledger_index": r.ledger_index, "sealed": r.sealed}
                    for r in rows
                    if r.sealed is not None
                ],
            }
            payload = {
                "election_id": eid,
                "base_hash": self.election.base_hash.hex(),
                "oversight_key": key,
                "evidence_count": len(export["evidence"]),
                "export_hash": export_hash(export),
            }
            appended = self.election.append_entry(EXPORT_EVENT, payload)
            with self._session() as s:
                self.election.record_synced(s, int(appended.index))
                s.commit()
        _log.info(
            "sealed evidence exported to the observers: %d items, ledger entry %d",
            len(export["evidence"]),
            int(appended.index),
        )
        return export


@replays(EventType.EVIDENCE_EXPORTED)
def _replay_evidence_exported(
    service: ServiceCore, r: Replay, index: int, etype: str, p: dict[str, Any]
) -> bool:
    """An export of the sealed evidence leaves no private state."""
    return False
