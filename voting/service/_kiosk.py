"""Stage 4b, the polling-place kiosks: the commission's side (``kiosk.enrolled``, ``kiosk.revoked``, the
poll-worker PINs, the list) and what both sides read (``docs/events.md`` rows 11c-11f and "Polling-place
kiosks"; ``docs/kiosk.md``, "The server's kiosk API"). The kiosks' own requests (signed requests, opening
and closing) are :mod:`voting.service._kiosk_sessions`'s; a kiosk's ballot is the intake's
(:meth:`voting.service.IntakeService.cast_kiosk`).

The same pattern as every stage: check everything, append the one entry (inside
:meth:`~voting.service._core.ServiceCore.appending`), then commit the private rows
(:mod:`voting._kiosk_db`). A refusal raises a :class:`~voting._errors.ServiceError` before anything is
written.

Enrolment checks the id (``kiosk.id``), the key (an Ed25519 point, ``kiosk.public_key``), the polling place
(the manifest text rule, ``kiosk.polling_place``), that kiosks can cast here at all (JPKI, ``kiosk.jpki``),
the phase (before voting closes) and that neither the id nor the key was enrolled before (``kiosk.exists``,
``kiosk.public_key_used``); it draws the 8-digit poll-worker PIN and keeps only its Argon2id hash.

Replay: each entry's applier rebuilds the kiosk's row (enrolment, revocation, session); the PIN hash is
never on the ledger and cannot be rebuilt (``voting._kiosk_db``): a kiosk rebuilt from its enrolment entry
has no PIN, and reconciliation lists it as a problem (the commission runs ``tvote admin kiosk pin``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

import nacl.exceptions
import nacl.pwhash
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.signing import VerifyKey
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from ledger.events import EventType
from ledger.record import TextRuleError, check_display_text

from .._errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated
from .._kiosk_db import KioskBallot, KioskRow
from .._kiosk_sign import KIOSK_ID_RE, POLL_WORKER_PIN_RE
from ._core import Replay, replays
from ._period import PeriodStage

__all__ = ["MAX_PIN_FAILURES", "KioskStage", "record_kiosk_ballot", "usable_kiosk", "verify_kiosk_signature"]

#: wrong poll-worker PINs in a row that lock the kiosk's PIN (the commission issues a new one)
MAX_PIN_FAILURES: Final[int] = 5
_MAX_PLACE: Final[int] = 200
_MAX_REASON: Final[int] = 500
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


def _hash_pin(pin: str) -> str:
    return nacl.pwhash.argon2id.str(pin.encode("ascii")).decode("ascii")


def _pin_matches(pin_hash: str, pin: str) -> bool:
    if not POLL_WORKER_PIN_RE.fullmatch(pin):
        return False
    try:
        return bool(nacl.pwhash.verify(pin_hash.encode("ascii"), pin.encode("ascii")))
    except nacl.exceptions.InvalidkeyError:
        return False


def fingerprint(public_key_hex: str) -> str:
    """The kiosk key's fingerprint (first 16 bytes of SHA-256, groups of 4 hex), as the kiosk shows it."""
    h = hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:32]
    return " ".join(h[i : i + 4] for i in range(0, 32, 4))


def verify_kiosk_signature(public_key_hex: str, digest: bytes, signature_hex: str) -> bool:
    """``True`` iff ``signature_hex`` (128 hex) is the kiosk key's Ed25519 signature of ``digest``."""
    if not _HEX128.fullmatch(signature_hex):
        return False
    try:
        VerifyKey(bytes.fromhex(public_key_hex)).verify(digest, bytes.fromhex(signature_hex))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def usable_kiosk(s: Session, election_id: str, kiosk_id: str) -> KioskRow:
    """The row of a kiosk that may act (its own requests and ballots): ``kiosk.unknown`` (401) when it is
    not enrolled, ``kiosk.revoked`` (403) once it is revoked."""
    row = s.get(KioskRow, (election_id, kiosk_id))
    if row is None:
        raise Unauthenticated("kiosk.unknown", "this kiosk is not enrolled")
    if row.revoked_index is not None:
        raise Forbidden("kiosk.revoked", f"this kiosk was revoked (ledger entry {row.revoked_index})")
    return row


def record_kiosk_ballot(s: Session, election_id: str, index: int, ballot_hash: str, kiosk: Any) -> bool:
    """Record the kiosk ballot of entry ``index`` (its ``kiosk`` member) if it is missing; ``True`` if it
    was. Used by the cast's commit and by the replay of ``ballot.cast``."""
    if s.get(KioskBallot, ballot_hash) is not None:
        return False
    s.add(
        KioskBallot(
            ballot_hash=ballot_hash,
            election_id=election_id,
            kiosk_id=str(kiosk["kiosk_id"]),
            session=int(kiosk["session"]),
            ledger_index=index,
        )
    )
    return True


@dataclass(frozen=True, slots=True)
class EnrolledKiosk:
    """What enrolment answers: the entry, and the poll-worker PIN (shown once, never stored in clear)."""

    kiosk_id: str
    ledger_index: int
    poll_worker_pin: str
    fingerprint: str


class KioskStage(PeriodStage):
    """The commission's kiosk commands, the kiosks' rows and their replay (see the module docstring)."""

    # ------------------------------------------------------------------------------------ reading

    def _kiosk(self, s: Session, kiosk_id: str) -> KioskRow:
        row = s.get(KioskRow, (self.election_id, kiosk_id))
        if row is None:
            raise NotFound("kiosk.unknown", f"no kiosk '{kiosk_id}' is enrolled")
        return row

    def _ballots_cast(self, s: Session, kiosk_id: str, session: int) -> int:
        n = s.exec(
            select(func.count())
            .select_from(KioskBallot)
            .where(KioskBallot.election_id == self.election_id)
            .where(KioskBallot.kiosk_id == kiosk_id)
            .where(KioskBallot.session == session)
        ).one()
        return int(n)

    def kiosk_row(self, kiosk_id: str) -> KioskRow:
        """A detached copy of the kiosk's row (private columns included: never return it from a route)."""
        with self._session() as s:
            return self._kiosk(s, kiosk_id)

    def kiosk_status(self, kiosk_id: str) -> dict[str, Any]:
        """``GET /kiosk/status``: the kiosk, its election, whether a session is open, its count."""
        with self._session() as s:
            row = self._kiosk(s, kiosk_id)
            return {
                "kiosk_id": row.kiosk_id,
                "polling_place": row.polling_place,
                "election_id": self.election_id,
                "base_hash": self.base_hash.hex(),
                "state": "open" if row.session_open else "closed",
                "session": row.session,
                "ballots_cast": self._ballots_cast(s, row.kiosk_id, row.session) if row.session else 0,
            }

    def kiosks(self) -> list[dict[str, Any]]:
        """The commission's list (``GET /admin/kiosks``): no PIN hash, no request time."""
        with self._session() as s:
            rows = s.exec(
                select(KioskRow)
                .where(KioskRow.election_id == self.election_id)
                .order_by(col(KioskRow.enrolled_index))
            ).all()
            out = []
            for r in rows:
                if r.pin_hash is None:
                    pin = "none"
                elif r.pin_failures >= MAX_PIN_FAILURES:
                    pin = "locked"
                else:
                    pin = "issued"
                out.append(
                    {
                        "kiosk_id": r.kiosk_id,
                        "public_key": r.public_key,
                        "fingerprint": fingerprint(r.public_key),
                        "polling_place": r.polling_place,
                        "enrolled_index": r.enrolled_index,
                        "revoked_index": r.revoked_index,
                        "state": "revoked"
                        if r.revoked_index is not None
                        else ("open" if r.session_open else "closed"),
                        "session": r.session,
                        "ballots_cast": self._ballots_cast(s, r.kiosk_id, r.session) if r.session else 0,
                        "poll_worker_pin": pin,
                    }
                )
            return out

    # ------------------------------------------------------------------------- the commission's commands

    def enrol_kiosk(self, kiosk_id: str, public_key: str, polling_place: str) -> EnrolledKiosk:
        """Append ``kiosk.enrolled`` and issue the kiosk's first poll-worker PIN (8 digits, returned once)."""
        if not isinstance(kiosk_id, str) or not KIOSK_ID_RE.fullmatch(kiosk_id):
            raise InvalidRequest(
                "kiosk.id", "a kiosk id is 1-63 lowercase letters, digits and '-', not starting with '-'"
            )
        key = public_key.strip().lower() if isinstance(public_key, str) else ""
        if not _HEX64.fullmatch(key) or not crypto_core_ed25519_is_valid_point(bytes.fromhex(key)):
            raise InvalidRequest(
                "kiosk.public_key", "the kiosk's public key is an Ed25519 key, 64 hex digits"
            )
        try:
            place = check_display_text(
                polling_place.strip() if isinstance(polling_place, str) else polling_place,
                max_chars=_MAX_PLACE,
            )
        except TextRuleError as e:
            raise InvalidRequest("kiosk.polling_place", f"polling_place: {e}") from None
        if "jpki" not in self.manifest.auth_methods or self.settings.jpki_trust_anchors is None:
            raise Conflict(
                "kiosk.jpki",
                "a kiosk casts with My Number cards: the manifest must allow 'jpki' and the server must have "
                "the JPKI trust anchors (TVOTE_JPKI_TRUST_ANCHORS)",
            )
        pin = f"{secrets.randbelow(10**8):08d}"
        pin_hash = _hash_pin(pin)
        with self.appending():
            with self._session() as s:
                row = self._row(s)
                if row.phase not in ("setup", "voting"):
                    raise Conflict(
                        "election.phase", f"kiosks are enrolled before voting closes, not in '{row.phase}'"
                    )
                if s.get(KioskRow, (row.election_id, kiosk_id)) is not None:
                    raise Conflict(
                        "kiosk.exists",
                        f"a kiosk '{kiosk_id}' is already enrolled (a new device is a new kiosk)",
                    )
                used = s.exec(
                    select(KioskRow)
                    .where(KioskRow.election_id == row.election_id)
                    .where(KioskRow.public_key == key)
                ).first()
                if used is not None:
                    raise Conflict(
                        "kiosk.public_key_used", f"this key is already enrolled (kiosk '{used.kiosk_id}')"
                    )
            payload = self._payload(kiosk_id=kiosk_id, public_key=key, polling_place=place)
            index = int(self.append_entry(EventType.KIOSK_ENROLLED, payload).index)
            with self._session() as s:
                s.add(self._enrolled_row(index, payload, pin_hash))
                self.record_synced(s, index)
                s.commit()
        return EnrolledKiosk(kiosk_id, index, pin, fingerprint(key))

    def _enrolled_row(self, index: int, p: dict[str, Any], pin_hash: str | None) -> KioskRow:
        return KioskRow(
            election_id=self.election_id,
            kiosk_id=p["kiosk_id"],
            public_key=p["public_key"],
            polling_place=p["polling_place"],
            enrolled_index=index,
            pin_hash=pin_hash,
        )

    def revoke_kiosk(self, kiosk_id: str, reason: str) -> int:
        """Append ``kiosk.revoked``: from this entry on the kiosk's requests are refused."""
        try:
            why = check_display_text(
                reason.strip() if isinstance(reason, str) else reason, max_chars=_MAX_REASON
            )
        except TextRuleError as e:
            raise InvalidRequest("kiosk.reason", f"reason: {e}") from None
        with self.appending():
            with self._session() as s:
                self._row(s)
                k = self._kiosk(s, kiosk_id)
                if k.revoked_index is not None:
                    raise Conflict(
                        "kiosk.revoked", f"kiosk '{kiosk_id}' was revoked at entry {k.revoked_index}"
                    )
            index = int(
                self.append_entry(EventType.KIOSK_REVOKED, self._payload(kiosk_id=kiosk_id, reason=why)).index
            )
            with self._session() as s:
                s.execute(
                    update(KioskRow)
                    .where(col(KioskRow.election_id) == self.election_id)
                    .where(col(KioskRow.kiosk_id) == kiosk_id)
                    .values(revoked_index=index)
                )
                self.record_synced(s, index)
                s.commit()
        return index

    def new_poll_worker_pin(self, kiosk_id: str) -> str:
        """A new poll-worker PIN for the kiosk (the old one stops working; a lock is cleared). Not on the
        ledger: the PIN is a private credential of the polling place."""
        pin = f"{secrets.randbelow(10**8):08d}"
        pin_hash = _hash_pin(pin)
        with self._session() as s:
            k = self._kiosk(s, kiosk_id)
            if k.revoked_index is not None:
                raise Conflict("kiosk.revoked", f"kiosk '{kiosk_id}' is revoked")
            k.pin_hash, k.pin_failures = pin_hash, 0
            s.add(k)
            s.commit()
        return pin

    # ------------------------------------------------------------------------------------------ replay

    @replays(EventType.KIOSK_ENROLLED)
    def _replay_kiosk_enrolled(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = r.s.get(KioskRow, (r.row.election_id, p["kiosk_id"]))
        if row is not None:
            if row.public_key != p["public_key"]:
                r.problems.append(f"entry {index}: kiosk {p['kiosk_id']} is stored with another public key")
            return False
        r.s.add(self._enrolled_row(index, p, None))
        r.problems.append(
            f"entry {index}: kiosk {p['kiosk_id']} was enrolled but its poll-worker PIN was lost; issue one "
            "with `tvote admin kiosk pin`"
        )
        return True

    def _replayed_kiosk(self, r: Replay, index: int, p: dict[str, Any]) -> KioskRow | None:
        r.s.flush()
        row = r.s.get(KioskRow, (r.row.election_id, p["kiosk_id"]))
        if row is None:
            r.problems.append(f"entry {index}: kiosk {p['kiosk_id']} names a kiosk that is not enrolled")
        return row

    @replays(EventType.KIOSK_REVOKED)
    def _replay_kiosk_revoked(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = self._replayed_kiosk(r, index, p)
        if row is None or row.revoked_index is not None:
            return False
        row.revoked_index = index
        r.s.add(row)
        return True
