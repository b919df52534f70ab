"""Stage 3b, the end of the key ceremony: resolve the complaints, disqualify dealers
(``trustee.disqualified``) and publish the joint key (``election.joint-key``) — one batch of entries.

The trustees' submissions before it (registration, shares, complaints, answers) are :mod:`._ceremony`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from crypto import (
    Complaint,
    ComplaintAnswer,
    EncryptedShare,
    JointKey,
    ThresholdError,
    TrusteeCommitments,
    qualify,
    resolve_complaint,
)
from ledger.events import EventType

from .._db import ComplaintRow, ElectionRow, ShareRow, TrusteeRow
from .._errors import Conflict
from ._core import Replay, ServiceCore, replays

__all__ = ["JointKeyStage"]


class JointKeyStage(ServiceCore):
    """Close the key ceremony: complaints resolved, dealers disqualified, the joint key published."""

    def _resolve(
        self, s: Session, row: ElectionRow, crow: ComplaintRow, commitments: Mapping[int, TrusteeCommitments]
    ) -> tuple[Complaint, Any]:
        """Resolve one stored complaint (``crypto.resolve_complaint``)."""
        c = Complaint.from_dict(json.loads(crow.complaint_json))
        share = s.get(ShareRow, (row.election_id, c.dealer, c.complainant))
        res = resolve_complaint(
            c,
            dealer=commitments[c.dealer],
            encrypted_share=(
                EncryptedShare(c.dealer, c.complainant, bytes.fromhex(share.ciphertext)) if share else None
            ),
            answer=ComplaintAnswer.from_dict(json.loads(crow.answer_json)) if crow.answer_json else None,
            base_hash=self.base_hash,
        )
        return c, res

    def finalize_key_ceremony(self) -> JointKey:
        """Resolve complaints, disqualify dealers, and publish the joint key (``election.joint-key``)."""
        m = self.manifest
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "the key ceremony is already finished")
            trustees = self._trustees(s)
            commitments = self._commitments(s)
            out: dict[int, str] = {}
            complaints = list(s.exec(select(ComplaintRow).where(ComplaintRow.election_id == row.election_id)))
            accused = {c.dealer for c in complaints}
            for i, r in trustees.items():
                if r.status != "registered":
                    out[i] = "did not register"
                elif not r.shares_dealt and i not in accused:
                    # a silent dealer is disqualified only through complaints (publicly checkable cause)
                    raise Conflict(
                        "ceremony.waiting",
                        f"trustee {i} has not dealt its shares; the others must complain about the missing "
                        "share (tvote trustee verify-shares --complain-missing) first",
                    )
            resolutions = []
            for crow in complaints:
                c, res = self._resolve(s, row, crow, commitments)
                crow.status = "upheld" if res.dealer_disqualified else str(res.outcome)
                s.add(crow)
                resolutions.append(res)
                if res.dealer_disqualified:
                    out.setdefault(c.dealer, f"complaint by trustee {c.complainant}: {res.reason}")
            eligible = [c for i, c in commitments.items() if i not in out]
            try:
                q = qualify(
                    eligible,
                    base_hash=m.base_hash,
                    threshold=m.trustees.threshold,
                    trustees=m.trustees.n,
                    resolutions=resolutions,
                )
            except ThresholdError as e:
                raise Conflict("ceremony.too_few", e.operator_message) from e
            for i, why in q.disqualified.items():
                out.setdefault(i, why)
            jk = JointKey.from_commitments(eligible, q, base_hash=m.base_hash)
            for i in sorted(out):
                if trustees[i].status == "registered":
                    trustees[i].status = "disqualified"
                    s.add(trustees[i])
            row.joint_key_json = json.dumps(jk.to_dict())
            s.add(row)
            d = jk.to_dict()
            items = [
                (EventType.TRUSTEE_DISQUALIFIED, self._payload(dealer=i, reason=out[i])) for i in sorted(out)
            ]
            items.append(
                (
                    EventType.JOINT_KEY,
                    self._payload(
                        qualified=d["qualified"],
                        joint_key=d["joint_key"],
                        public_shares=d["public_shares"],
                        threshold=d["threshold"],
                    ),
                )
            )
            self._append_many(items, row)
            s.commit()
        self._cache.clear()
        return jk

    @replays(EventType.TRUSTEE_DISQUALIFIED)
    def _replay_disqualified(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        t = s.get(TrusteeRow, (eid, p["dealer"]))
        if t is None or t.status != "registered":
            return False
        t.status = "disqualified"
        s.add(t)
        return True

    @replays(EventType.JOINT_KEY)
    def _replay_joint_key(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, row, eid = r.s, r.row, r.row.election_id
        if row.joint_key_json is not None:
            return False
        fields = ("base_hash", "threshold", "qualified", "joint_key", "public_shares")
        jk = JointKey.from_dict({k: p[k] for k in fields})
        commitments = self._commitments(s)
        for crow in s.exec(select(ComplaintRow).where(ComplaintRow.election_id == eid)):
            _, res = self._resolve(s, row, crow, commitments)
            crow.status = "upheld" if res.dealer_disqualified else str(res.outcome)
            s.add(crow)
        row.joint_key_json = json.dumps(jk.to_dict())
        return True
