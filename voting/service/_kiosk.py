"""Stage 4b, the polling-place kiosks: enrolment, revocation, poll-worker PINs, signed requests, opening and
closing (``kiosk.enrolled``, ``kiosk.revoked``, ``kiosk.opened``, ``kiosk.closed``; ``docs/events.md``
rows 11c-11f and "Polling-place kiosks"; ``docs/kiosk.md``, "The server's kiosk API").

The same pattern as every stage: check everything, append the one entry (inside
:meth:`~voting.service._core.ServiceCore.appending`), then commit the private rows
(:mod:`voting._kiosk_db`). A refusal raises a :class:`~voting._errors.ServiceError` before anything is
written, except a wrong poll-worker PIN, which counts (five in a row lock the kiosk's PIN).

Signed requests (:meth:`KioskStage.authenticate_kiosk`), refused in this order, changing nothing::

    kiosk.required   401  a header missing or malformed
    kiosk.unknown    401  no such kiosk enrolled
    kiosk.revoked    403  the kiosk is revoked
    kiosk.signature  401  the signature does not verify under the kiosk's enrolled key
    kiosk.clock      401  Tvote-Kiosk-Time more than 300 s from the server's clock
    kiosk.replay     401  Tvote-Kiosk-Time not later than the last one accepted from this kiosk

The accepted time is stored by one conditional ``UPDATE`` (``last_request_ms < t``), so two copies of one
request sent at once cannot both pass, and a replay is refused after a restart too.

Opening and closing check, outside the lock: voting open (opening only), the kiosk not revoked, the time
(``kiosk.opened_at`` / ``kiosk.closed_at``), the session (``kiosk.session``), the kiosk's signature of the
report (``kiosk.report_signature``), then the poll-worker PIN (Argon2id, ``kiosk.poll_worker`` with
``tries_left`` / ``kiosk.poll_worker_locked``; slow by design, so it is checked before the lock, which would
otherwise stall every ballot). Under the election's mutation lock the kiosk's row is read again (revoked,
session, the same PIN hash) before the append; ``kiosk.closed.ballots_cast`` is counted there, so no kiosk
ballot can land between the count and the closing (a kiosk ballot is appended under the same lock,
:meth:`voting.service.IntakeService.cast_kiosk`).

Replay: each entry's applier rebuilds the kiosk's row (enrolment, revocation, session); the PIN hash is
never on the ledger and cannot be rebuilt (``voting._kiosk_db``).
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

from .._errors import Conflict, Forbidden, InvalidRequest, NotFound, RejectedSubmission, Unauthenticated
from .._kiosk_db import KioskBallot, KioskRow
from .._kiosk_sign import (
    CLOCK_SKEW_SECONDS,
    KIOSK_ID_RE,
    POLL_WORKER_PIN_RE,
    closed_digest,
    format_time,
    opened_digest,
    parse_time,
    request_digest,
)
from ._core import Replay, replays
from ._period import PeriodStage

__all__ = ["MAX_PIN_FAILURES", "KioskStage", "record_kiosk_ballot", "verify_kiosk_signature"]

#: wrong poll-worker PINs in a row that lock the kiosk's PIN (the commission issues a new one)
MAX_PIN_FAILURES: Final[int] = 5
_MAX_PLACE: Final[int] = 200
_MAX_REASON: Final[int] = 500
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_TIME = re.compile(r"[0-9]{1,16}")


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
    """The commission's kiosk commands and the kiosks' own requests (see the module docstring)."""

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

    # ---------------------------------------------------------------------------- signed requests

    def authenticate_kiosk(
        self,
        kiosk_id: str | None,
        time_ms: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
    ) -> KioskRow:
        """Check a kiosk request's headers (module docstring); store its time; the kiosk's row."""
        if (
            kiosk_id is None
            or time_ms is None
            or signature is None
            or not KIOSK_ID_RE.fullmatch(kiosk_id)
            or not _TIME.fullmatch(time_ms)
            or not _HEX128.fullmatch(signature)
        ):
            raise Unauthenticated(
                "kiosk.required",
                "a kiosk request carries Tvote-Kiosk-Id, Tvote-Kiosk-Time (ms) and Tvote-Kiosk-Signature "
                "(128 hex)",
            )
        with self._session() as s:
            row = s.get(KioskRow, (self.election_id, kiosk_id))
        if row is None:
            raise Unauthenticated("kiosk.unknown", "this kiosk is not enrolled")
        if row.revoked_index is not None:
            raise Forbidden("kiosk.revoked", f"this kiosk was revoked (ledger entry {row.revoked_index})")
        t = int(time_ms)
        digest = request_digest(self.base_hash, kiosk_id, t, method, path, body)
        if not verify_kiosk_signature(row.public_key, digest, signature):
            raise Unauthenticated(
                "kiosk.signature", "the request's signature does not verify under the kiosk's key"
            )
        now_ms = int(self.clock().timestamp() * 1000)
        if abs(now_ms - t) > CLOCK_SKEW_SECONDS * 1000:
            raise Unauthenticated(
                "kiosk.clock", f"the kiosk's clock is more than {CLOCK_SKEW_SECONDS} s from the server's"
            )
        with self._session() as s:
            accepted = s.execute(
                update(KioskRow)
                .where(col(KioskRow.election_id) == self.election_id)
                .where(col(KioskRow.kiosk_id) == kiosk_id)
                .where(col(KioskRow.last_request_ms) < t)
                .where(col(KioskRow.revoked_index).is_(None))
                .values(last_request_ms=t)
            )
            if getattr(accepted, "rowcount", 0) != 1:
                s.rollback()
                raise Unauthenticated(
                    "kiosk.replay", "this request (or a later one) was already accepted from this kiosk"
                )
            s.commit()
        row.last_request_ms = t
        return row

    # ---------------------------------------------------------------------------- opening and closing

    def _report_time(self, value: str, what: str) -> None:
        try:
            t = parse_time(value)
        except (ValueError, TypeError):
            raise RejectedSubmission(
                f"kiosk.{what}", f"{what} is RFC 3339 UTC to the second (2027-04-18T09:00:00Z)"
            ) from None
        if abs((self.clock() - t).total_seconds()) > CLOCK_SKEW_SECONDS:
            raise RejectedSubmission(
                f"kiosk.{what}",
                f"{what} is more than {CLOCK_SKEW_SECONDS} s from the server's clock "
                f"({format_time(self.clock())})",
            )

    def _check_pin(self, k: KioskRow, pin: str) -> None:
        """The poll-worker PIN of ``k`` (slow: Argon2id). A wrong one counts; the fifth in a row locks."""
        if k.pin_hash is None or k.pin_failures >= MAX_PIN_FAILURES:
            raise Forbidden(
                "kiosk.poll_worker_locked",
                "this kiosk's poll-worker PIN is locked or was never issued: the commission issues a new one "
                "(tvote admin kiosk pin)",
            )
        if _pin_matches(k.pin_hash, pin):
            return
        with self._session() as s:
            s.execute(
                update(KioskRow)
                .where(col(KioskRow.election_id) == self.election_id)
                .where(col(KioskRow.kiosk_id) == k.kiosk_id)
                .where(col(KioskRow.pin_hash) == k.pin_hash)
                .values(pin_failures=KioskRow.pin_failures + 1)
            )
            s.commit()
            failures = self._kiosk(s, k.kiosk_id).pin_failures
        left = max(0, MAX_PIN_FAILURES - failures)
        if left == 0:
            raise Forbidden(
                "kiosk.poll_worker_locked",
                f"{MAX_PIN_FAILURES} wrong poll-worker PINs in a row: the commission issues a new one "
                "(tvote admin kiosk pin)",
            )
        raise Forbidden(
            "kiosk.poll_worker", f"wrong poll-worker PIN ({left} tries left)", details={"tries_left": left}
        )

    def _current(self, s: Session, kiosk_id: str) -> KioskRow:
        k = self._kiosk(s, kiosk_id)
        if k.revoked_index is not None:
            raise Forbidden("kiosk.revoked", f"this kiosk was revoked (ledger entry {k.revoked_index})")
        return k

    @staticmethod
    def _reported(index: int, entry_hash: bytes, payload: dict[str, Any]) -> dict[str, Any]:
        return {"ledger_index": index, "entry_hash": entry_hash.hex(), "entry": payload}

    def open_kiosk(
        self, kiosk_id: str, session: int, opened_at: str, poll_worker_pin: str, kiosk_signature: str
    ) -> dict[str, Any]:
        """Append ``kiosk.opened`` (the zero report): the poll worker opens the kiosk's next session."""
        self.require_voting()
        self._report_time(opened_at, "opened_at")
        with self._session() as s:
            k = self._current(s, kiosk_id)
        self._check_session(k, session, opening=True)
        digest = opened_digest(self.base_hash, kiosk_id, session, opened_at)
        if not verify_kiosk_signature(k.public_key, digest, kiosk_signature):
            raise RejectedSubmission(
                "kiosk.report_signature", "the kiosk's signature of the opening does not verify"
            )
        self._check_pin(k, poll_worker_pin)
        with self.appending():
            with self._session() as s:
                self.require_voting()
                now = self._current(s, kiosk_id)
                self._check_session(now, session, opening=True)
                if now.pin_hash != k.pin_hash or now.pin_failures >= MAX_PIN_FAILURES:
                    raise Forbidden(
                        "kiosk.poll_worker_locked", "the poll-worker PIN changed meanwhile; try again"
                    )
            payload = self._payload(
                kiosk_id=kiosk_id, session=session, opened_at=opened_at, kiosk_signature=kiosk_signature
            )
            appended = self.append_entry(EventType.KIOSK_OPENED, payload)
            index = int(appended.index)
            with self._session() as s:
                s.execute(
                    update(KioskRow)
                    .where(col(KioskRow.election_id) == self.election_id)
                    .where(col(KioskRow.kiosk_id) == kiosk_id)
                    .values(session=session, session_open=True, opened_index=index, pin_failures=0)
                )
                self.record_synced(s, index)
                s.commit()
                return self._reported(index, bytes(appended.entry_hash), payload)

    @staticmethod
    def _check_session(k: KioskRow, session: int, *, opening: bool) -> None:
        if opening:
            if k.session_open:
                raise Conflict("kiosk.session", f"session {k.session} of this kiosk is open; close it first")
            if session != k.session + 1:
                raise Conflict("kiosk.session", f"the next session of this kiosk is {k.session + 1}")
        elif not k.session_open or session != k.session:
            open_now = f"session {k.session} is open" if k.session_open else "no session is open"
            raise Conflict(
                "kiosk.session", f"session {session} is not this kiosk's open session ({open_now})"
            )

    def close_kiosk(
        self,
        kiosk_id: str,
        session: int,
        closed_at: str,
        kiosk_count: int,
        poll_worker_pin: str,
        kiosk_signature: str,
    ) -> dict[str, Any]:
        """Append ``kiosk.closed`` (the closing report), with the server's own count of the session's
        ballots (``ballots_cast``) beside the kiosk's (``kiosk_count``)."""
        self._report_time(closed_at, "closed_at")
        with self._session() as s:
            k = self._current(s, kiosk_id)
        self._check_session(k, session, opening=False)
        digest = closed_digest(self.base_hash, kiosk_id, session, closed_at, kiosk_count)
        if not verify_kiosk_signature(k.public_key, digest, kiosk_signature):
            raise RejectedSubmission(
                "kiosk.report_signature", "the kiosk's signature of the closing does not verify"
            )
        self._check_pin(k, poll_worker_pin)
        with self.appending():
            with self._session() as s:
                now = self._current(s, kiosk_id)
                self._check_session(now, session, opening=False)
                if now.pin_hash != k.pin_hash or now.pin_failures >= MAX_PIN_FAILURES:
                    raise Forbidden(
                        "kiosk.poll_worker_locked", "the poll-worker PIN changed meanwhile; try again"
                    )
                cast = self._ballots_cast(s, kiosk_id, session)
            payload = self._payload(
                kiosk_id=kiosk_id,
                session=session,
                closed_at=closed_at,
                ballots_cast=cast,
                kiosk_count=kiosk_count,
                kiosk_signature=kiosk_signature,
            )
            appended = self.append_entry(EventType.KIOSK_CLOSED, payload)
            index = int(appended.index)
            with self._session() as s:
                s.execute(
                    update(KioskRow)
                    .where(col(KioskRow.election_id) == self.election_id)
                    .where(col(KioskRow.kiosk_id) == kiosk_id)
                    .values(session_open=False, pin_failures=0)
                )
                self.record_synced(s, index)
                s.commit()
                return self._reported(index, bytes(appended.entry_hash), payload)

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

    @replays(EventType.KIOSK_OPENED)
    def _replay_kiosk_opened(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = self._replayed_kiosk(r, index, p)
        n = int(p["session"])
        if row is None or row.session >= n:
            return False
        row.session, row.session_open, row.opened_index = n, True, index
        r.s.add(row)
        return True

    @replays(EventType.KIOSK_CLOSED)
    def _replay_kiosk_closed(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        row = self._replayed_kiosk(r, index, p)
        if row is None or row.session != int(p["session"]) or not row.session_open:
            return False
        if row.opened_index is not None and row.opened_index > index:  # pragma: no cover - a later session
            return False
        row.session_open = False
        r.s.add(row)
        return True
