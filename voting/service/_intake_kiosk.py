"""The intake's side of a polling-place kiosk ballot (:meth:`voting.service.IntakeService.cast_kiosk`):
the kiosk's signature of the ballot and its open session (``docs/events.md``, "Polling-place kiosks", rule
4). The kiosks themselves (enrolment, sessions) are :mod:`voting.service._kiosk`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from .._errors import Conflict, RejectedSubmission
from .._kiosk_sign import ballot_digest
from ._intake_checks import IntakeChecks
from ._kiosk import usable_kiosk, verify_kiosk_signature

__all__ = ["IntakeKiosk"]


@dataclass(frozen=True, slots=True)
class _KioskCast:
    """The kiosk that casts a ballot: what ``ballot.cast.kiosk`` records."""

    kiosk_id: str
    session: int
    signature: str

    @property
    def record(self) -> dict[str, Any]:
        return {"kiosk_id": self.kiosk_id, "session": self.session, "signature": self.signature}


class IntakeKiosk(IntakeChecks):
    """Checks of a kiosk ballot: before the locks (:meth:`_kiosk_cast`) and under them
    (:meth:`_check_kiosk_open`, also in step 6)."""

    def _kiosk_cast(
        self, s: Session, kiosk_id: str, session: int, signature: str, ballot_hash: bytes
    ) -> _KioskCast:
        """The kiosk's signature of (base hash, kiosk id, session, ballot hash) verifies under its key (the
        kiosk read in ``s``)."""
        row = usable_kiosk(s, self.election_id, kiosk_id)
        if not isinstance(session, int) or isinstance(session, bool) or not 1 <= session < 2**63:
            raise Conflict("kiosk.session", "the session is a positive integer")
        digest = ballot_digest(self.election.base_hash, kiosk_id, session, ballot_hash)
        if not verify_kiosk_signature(row.public_key, digest, signature):
            raise RejectedSubmission(
                "kiosk.ballot_signature", "the kiosk's signature of this ballot does not verify under its key"
            )
        return _KioskCast(kiosk_id, session, signature)

    def _check_kiosk_open(self, s: Session, kiosk: _KioskCast) -> None:
        """The kiosk is not revoked and ``kiosk.session`` is its open session (read in ``s``)."""
        row = usable_kiosk(s, self.election_id, kiosk.kiosk_id)
        if not row.session_open:
            raise Conflict("kiosk.not_open", "this kiosk has no open session: a poll worker opens it first")
        if row.session != kiosk.session:
            raise Conflict("kiosk.session", f"session {kiosk.session} is not open (session {row.session} is)")
