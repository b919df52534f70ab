"""Stage 3, the key ceremony: trustees register (``trustee.registered``), deal encrypted shares
(``trustee.shares``), complain (``trustee.complaint``) and answer (``trustee.answer``); the commission then
closes it (:mod:`._joint_key`).

The threshold cryptography is :mod:`crypto`'s; this module checks submissions against the phase and the other
trustees, publishes them, and keeps the private rows (tokens, shares, complaints).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session, select

from crypto import (
    Complaint,
    ComplaintAnswer,
    CryptoError,
    EncryptedShare,
    TrusteeCommitments,
    TrusteeEnrolment,
)
from ledger.events import BOUND_KEYS, EventType

from .._db import ComplaintRow, ShareRow, TrusteeRow
from .._errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RejectedSubmission,
    ServiceUnavailable,
    Unauthenticated,
)
from .._manifest import Manifest
from ._core import Replay, ServiceCore, _hash_secret, replays

__all__ = ["CeremonyStage"]


class CeremonyStage(ServiceCore):
    """The key ceremony, from registration to the joint key."""

    def trustee_for_token(self, token: str) -> int | None:
        h = _hash_secret(token)
        with self._session() as s:
            r = s.exec(select(TrusteeRow).where(TrusteeRow.token_hash == h)).first()
            return r.index if r is not None else None

    def register_trustee(
        self,
        invitation: str,
        name: str,
        commitments: Mapping[str, Any],
        enrolment: Mapping[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Check the registration code and the trustee's commitments; append ``trustee.registered``.

        When the manifest pins the trustees' enrolment keys, the registration must be signed by the key
        pinned for this index (``enrolment``: :class:`crypto.TrusteeEnrolment`, published in the entry);
        otherwise it is refused (``trustee.enrolment``), so the registration code alone (which the commission
        issues) cannot register a key in a trustee's place.

        Returns ``(index, token)``: the per-trustee bearer token (shown once; only its hash is stored).
        """
        try:
            index = int(invitation.split("-", 1)[0])
        except ValueError:
            raise Unauthenticated("trustee.invitation", "the registration code is not valid") from None
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidRequest("trustee.name", "the trustee's public role name must have 1..200 characters")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            t = s.get(TrusteeRow, (row.election_id, index))
            if (
                t is not None
                and t.status != "invited"
                and t.token_hash is None
                and t.commitments_json is not None
                and secrets.compare_digest(t.invite_hash, _hash_secret(invitation))
            ):
                # ``trustee.registered`` is on the ledger but the answer carrying the token never reached the
                # trustee (the server died; reconciliation restored the registration without a token): the
                # same code and the same commitments get a fresh token, nothing is appended.
                same = TrusteeCommitments.from_dict(dict(commitments)).to_dict()
                if same != json.loads(t.commitments_json):
                    raise Conflict("trustee.registered", f"trustee {index} registered other commitments")
                token = secrets.token_urlsafe(32)
                t.token_hash = _hash_secret(token)
                s.add(t)
                s.commit()
                return index, token
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "trustees register during the key ceremony only")
            if t is None or not secrets.compare_digest(t.invite_hash, _hash_secret(invitation)):
                raise Unauthenticated("trustee.invitation", "the registration code is not valid")
            if t.status != "invited":
                raise Conflict("trustee.registered", f"trustee {index} is already registered")
            c = TrusteeCommitments.from_dict(dict(commitments))
            if c.trustee != index:
                raise RejectedSubmission(
                    "trustee.index", f"the commitments are for trustee {c.trustee}, this code is for {index}"
                )
            m = self.manifest
            c.verify(base_hash=m.base_hash, threshold=m.trustees.threshold, trustees=m.trustees.n)
            enrolled = self._check_enrolment(m, index, name, c, enrolment)
            for other in self._commitments(s).values():
                if other.x25519_public_key == c.x25519_public_key:
                    raise RejectedSubmission("trustee.key_reuse", "this X25519 key is already registered")
            token = secrets.token_urlsafe(32)
            t.token_hash = _hash_secret(token)
            t.status = "registered"
            t.name = name
            t.x25519_public_key = c.x25519_public_key.hex()
            t.commitments_json = json.dumps(c.to_dict())
            t.registered_at = self._clock()
            s.add(t)
            self._append(
                EventType.TRUSTEE_REGISTERED,
                self._payload(
                    trustee=index,
                    name=name,
                    x25519_public_key=c.x25519_public_key.hex(),
                    commitments=c.to_dict(),
                    **({"enrolment": enrolled} if enrolled is not None else {}),
                ),
                row,
            )
            s.commit()
        return index, token

    @staticmethod
    def _check_enrolment(
        m: Manifest, index: int, name: str, c: TrusteeCommitments, enrolment: Mapping[str, Any] | None
    ) -> dict[str, str] | None:
        """The registration's enrolment (to publish), checked against ``pins.trustee_enrolment_keys``."""
        if m.pins is None:
            if enrolment is not None:
                raise RejectedSubmission(
                    "trustee.enrolment", "this election pins no enrolment keys: register without an enrolment"
                )
            return None
        if enrolment is None:
            raise RejectedSubmission(
                "trustee.enrolment",
                f"this election pins trustee {index}'s enrolment key: sign the registration with it "
                "(`tvote trustee init --enrolment-key`)",
            )
        try:
            e = TrusteeEnrolment.from_dict(dict(enrolment))
            e.verify(
                pinned_key=bytes.fromhex(m.pins.trustee_enrolment_keys[index - 1]),
                base_hash=m.base_hash,
                trustee=index,
                name=name,
                commitments=c,
            )
        except CryptoError as err:
            raise RejectedSubmission(
                "trustee.enrolment", f"the registration is not signed by trustee {index}'s pinned key ({err})"
            ) from None
        return e.to_dict()

    def ceremony_state(self) -> dict[str, Any]:
        """Public view of the key ceremony (who registered, dealt, complained; open complaints)."""
        with self._session() as s:
            row = self._row(s)
            trustees = self._trustees(s)
            complaints = list(s.exec(select(ComplaintRow).where(ComplaintRow.election_id == row.election_id)))
            return {
                "threshold": self.manifest.trustees.threshold,
                "n": self.manifest.trustees.n,
                "trustees": [
                    {
                        "index": i,
                        "status": r.status,
                        "name": r.name,
                        "shares_dealt": r.shares_dealt,
                        "commitments": json.loads(r.commitments_json) if r.commitments_json else None,
                    }
                    for i, r in trustees.items()
                ],
                "complaints": [
                    {
                        "complaint": json.loads(c.complaint_json),
                        "answer": json.loads(c.answer_json) if c.answer_json else None,
                        "status": c.status,
                    }
                    for c in complaints
                ],
                "joint_key": self.joint_key().to_dict() if row.joint_key_json else None,
            }

    def submit_shares(self, trustee: int, shares: Sequence[Mapping[str, Any]]) -> int:
        """Dealer ``trustee`` publishes one encrypted share for every other registered trustee."""
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "shares are dealt during the key ceremony only")
            trustees = self._trustees(s)
            me = trustees[trustee]
            if me.shares_dealt:
                raise Conflict("trustee.shares_dealt", "this trustee already dealt its shares")
            n = self.manifest.trustees.n
            registered = {i for i, r in trustees.items() if r.status == "registered"}
            if len(registered) != n:
                raise Conflict("ceremony.waiting", "shares are dealt once all trustees have registered")
            parsed = [EncryptedShare.from_dict(dict(d)) for d in shares]
            if any(p.sender != trustee for p in parsed):
                raise Forbidden("trustee.sender", "a trustee can only deal its own shares")
            recipients = sorted(p.recipient for p in parsed)
            if recipients != sorted(registered - {trustee}):
                raise RejectedSubmission(
                    "trustee.recipients", "exactly one share for every other trustee is required"
                )
            parsed.sort(key=lambda p: p.recipient)
            for p in parsed:
                s.add(
                    ShareRow(
                        election_id=row.election_id,
                        sender=trustee,
                        recipient=p.recipient,
                        ciphertext=p.ciphertext.hex(),
                    )
                )
            me.shares_dealt = True
            s.add(me)
            index = self._append(
                EventType.TRUSTEE_SHARES,
                self._payload(
                    sender=trustee,
                    shares=[{"recipient": p.recipient, "ciphertext": p.ciphertext.hex()} for p in parsed],
                ),
                row,
            )
            s.commit()
        return index

    def shares_for(self, recipient: int) -> list[dict[str, Any]]:
        with self._session() as s:
            row = self._row(s)
            rows = s.exec(
                select(ShareRow).where(
                    ShareRow.election_id == row.election_id, ShareRow.recipient == recipient
                )
            )
            return [
                EncryptedShare(r.sender, r.recipient, bytes.fromhex(r.ciphertext)).to_dict()
                for r in sorted(rows, key=lambda r: r.sender)
            ]

    def submit_complaint(self, trustee: int, complaint: Mapping[str, Any]) -> int:
        """Trustee ``trustee`` publicly accuses a dealer (evidence: their Box shared key)."""
        c = Complaint.from_dict(dict(complaint))
        if c.complainant != trustee:
            raise Forbidden("trustee.complainant", "a trustee can only complain in its own name")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "complaints are made during the key ceremony only")
            dealer = s.get(TrusteeRow, (row.election_id, c.dealer))
            if dealer is None or dealer.status != "registered":
                raise Conflict("complaint.dealer", f"trustee {c.dealer} is not a registered dealer")
            dup = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id,
                    ComplaintRow.complainant == trustee,
                    ComplaintRow.dealer == c.dealer,
                )
            ).first()
            if dup is not None:
                raise Conflict("complaint.duplicate", "this complaint was already made")
            s.add(
                ComplaintRow(
                    election_id=row.election_id,
                    complainant=trustee,
                    dealer=c.dealer,
                    complaint_json=json.dumps(c.to_dict()),
                )
            )
            index = self._append(EventType.TRUSTEE_COMPLAINT, self._payload(**c.to_dict()), row)
            s.commit()
        return index

    def complaints_against(self, dealer: int) -> list[dict[str, Any]]:
        with self._session() as s:
            row = self._row(s)
            rows = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id, ComplaintRow.dealer == dealer
                )
            )
            return [{**json.loads(r.complaint_json), "answered": r.answer_json is not None} for r in rows]

    def submit_answer(self, trustee: int, answer: Mapping[str, Any]) -> int:
        """The accused dealer reveals the disputed share (``trustee.answer``)."""
        a = ComplaintAnswer.from_dict(dict(answer))
        if a.dealer != trustee:
            raise Forbidden("trustee.dealer", "a trustee can only answer complaints against itself")
        with self.appending(), self._session() as s, s.no_autoflush:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "answers are given during the key ceremony only")
            c = s.exec(
                select(ComplaintRow).where(
                    ComplaintRow.election_id == row.election_id,
                    ComplaintRow.complainant == a.complainant,
                    ComplaintRow.dealer == trustee,
                )
            ).first()
            if c is None:
                raise NotFound("complaint.none", "there is no such complaint against you")
            if c.answer_json is not None:
                raise Conflict("complaint.answered", "this complaint was already answered")
            c.answer_json = json.dumps(a.to_dict())
            s.add(c)
            index = self._append(EventType.TRUSTEE_ANSWER, self._payload(**a.to_dict()), row)
            s.commit()
        return index

    @staticmethod
    def _complaint_row(s: Session, eid: str, complainant: int, dealer: int) -> ComplaintRow | None:
        return s.exec(
            select(ComplaintRow).where(
                ComplaintRow.election_id == eid,
                ComplaintRow.complainant == complainant,
                ComplaintRow.dealer == dealer,
            )
        ).first()

    @replays(EventType.TRUSTEE_REGISTERED)
    def _replay_registered(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        t = s.get(TrusteeRow, (eid, p["trustee"]))
        if t is None:
            raise ServiceUnavailable("reconcile.trustee", f"entry {index} registers an unknown trustee")
        if t.status != "invited":
            return False
        # the token was never delivered: the trustee registers again with the same code and commitments
        t.status, t.name, t.token_hash = "registered", p["name"], None
        t.x25519_public_key = p["x25519_public_key"]
        t.commitments_json = json.dumps(TrusteeCommitments.from_dict(p["commitments"]).to_dict())
        t.registered_at = self._clock()
        s.add(t)
        return True

    @replays(EventType.TRUSTEE_SHARES)
    def _replay_shares(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        changed = False
        for share in p["shares"]:
            if s.get(ShareRow, (eid, p["sender"], share["recipient"])) is None:
                s.add(
                    ShareRow(
                        election_id=eid,
                        sender=p["sender"],
                        recipient=share["recipient"],
                        ciphertext=share["ciphertext"],
                    )
                )
                changed = True
        dealer = s.get(TrusteeRow, (eid, p["sender"]))
        if dealer is not None and not dealer.shares_dealt:
            dealer.shares_dealt = True
            s.add(dealer)
            changed = True
        return changed

    @replays(EventType.TRUSTEE_COMPLAINT)
    def _replay_complaint(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        body = {k: v for k, v in p.items() if k not in BOUND_KEYS}
        c = Complaint.from_dict(body)
        if self._complaint_row(s, eid, c.complainant, c.dealer) is not None:
            return False
        s.add(
            ComplaintRow(
                election_id=eid,
                complainant=c.complainant,
                dealer=c.dealer,
                complaint_json=json.dumps(c.to_dict()),
            )
        )
        return True

    @replays(EventType.TRUSTEE_ANSWER)
    def _replay_answer(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        s, eid = r.s, r.row.election_id
        body = {k: v for k, v in p.items() if k not in BOUND_KEYS}
        a = ComplaintAnswer.from_dict(body)
        crow = self._complaint_row(s, eid, a.complainant, a.dealer)
        if crow is None:
            raise ServiceUnavailable("reconcile.answer", f"entry {index} answers an unknown complaint")
        if crow.answer_json is not None:
            return False
        crow.answer_json = json.dumps(a.to_dict())
        s.add(crow)
        return True
