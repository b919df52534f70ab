"""Stage 4b, the polling-place kiosks' own requests: every request signed by the kiosk's key, and the poll
worker's opening and closing (``kiosk.opened``, ``kiosk.closed``; ``docs/kiosk.md``, "The server's kiosk
API"; ``docs/events.md``, "Polling-place kiosks"). The commission's side is :mod:`voting.service._kiosk`'s.

Signed requests (:meth:`KioskSessions.authenticate_kiosk`), refused in this order, changing nothing::

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
otherwise stall every ballot). A wrong PIN is the one refusal that changes something: it counts (five in a
row lock the kiosk's PIN; a right one resets the count). Under the election's mutation lock the kiosk's row
is read again (revoked, session, the same PIN hash) before the append; ``kiosk.closed.ballots_cast`` is
counted there, so no kiosk ballot can land between the count and the closing (a kiosk ballot is appended
under the same lock, :meth:`voting.service.IntakeService.cast_kiosk`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from ledger.events import EventType

from .._errors import Conflict, Forbidden, RejectedSubmission, Unauthenticated
from .._kiosk_db import KioskRow
from .._kiosk_sign import (
    CLOCK_SKEW_SECONDS,
    KIOSK_ID_RE,
    closed_digest,
    format_time,
    opened_digest,
    parse_time,
    request_digest,
)
from ._core import Replay, replays
from ._intake_checks import _rowcount
from ._kiosk import MAX_PIN_FAILURES, KioskStage, _pin_matches, usable_kiosk, verify_kiosk_signature

__all__ = ["KioskSessions"]

_HEX128 = re.compile(r"[0-9a-f]{128}")
_TIME = re.compile(r"[0-9]{1,16}")


class KioskSessions(KioskStage):
    """The kiosks' signed requests, opening and closing (see the module docstring)."""

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
            row = usable_kiosk(s, self.election_id, kiosk_id)
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
            accepted = _rowcount(
                s,
                update(KioskRow)
                .where(col(KioskRow.election_id) == self.election_id)
                .where(col(KioskRow.kiosk_id) == kiosk_id)
                .where(col(KioskRow.last_request_ms) < t)
                .where(col(KioskRow.revoked_index).is_(None))
                .values(last_request_ms=t),
            )
            if accepted != 1:
                s.rollback()
                now = self._kiosk(s, kiosk_id)
                if now.revoked_index is not None:  # revoked since it was read above
                    raise Forbidden(
                        "kiosk.revoked", f"this kiosk was revoked (ledger entry {now.revoked_index})"
                    )
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
        """The poll-worker PIN of ``k`` (slow: Argon2id). Each try is counted *before* the PIN is checked (one
        conditional ``UPDATE``), so tries sent in parallel cannot exceed the five; a right PIN resets the
        count, a wrong one leaves it: the fifth wrong one in a row locks the PIN."""
        locked = Forbidden(
            "kiosk.poll_worker_locked",
            f"this kiosk's poll-worker PIN is locked ({MAX_PIN_FAILURES} wrong PINs in a row) or was never "
            "issued: the commission issues a new one (tvote admin kiosk pin)",
        )
        if k.pin_hash is None:
            raise locked
        mine = (
            (col(KioskRow.election_id) == self.election_id),
            (col(KioskRow.kiosk_id) == k.kiosk_id),
            (col(KioskRow.pin_hash) == k.pin_hash),
        )
        with self._session() as s:
            taken = _rowcount(
                s,
                update(KioskRow)
                .where(*mine)
                .where(col(KioskRow.pin_failures) < MAX_PIN_FAILURES)
                .values(pin_failures=KioskRow.pin_failures + 1),
            )
            s.commit()
        if taken != 1:  # locked, or the PIN was renewed meanwhile (then the try is against the old one)
            raise locked
        if _pin_matches(k.pin_hash, pin):
            with self._session() as s:
                s.execute(update(KioskRow).where(*mine).values(pin_failures=0))
                s.commit()
            return
        with self._session() as s:
            failures = self._kiosk(s, k.kiosk_id).pin_failures
        left = max(0, MAX_PIN_FAILURES - failures)
        if left == 0:
            raise locked
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
