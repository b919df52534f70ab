"""The kiosk's state machine: what the local API (:mod:`kiosk._app`) drives.

::

    closed ──open(poll-worker PIN; server appends kiosk.opened; zero report)──▶ locked
    locked ──unlock(PIN, checked locally)──▶ ready (one voter: a random voter session)
    ready ──card──▶ ready + the card's fingerprint ──cast(ballot, signing PIN)──▶ receipt printed ──▶ locked
    ready ──idle for idle_seconds / lock──▶ locked (voter session and card forgotten)
    locked ──close(PIN; server appends kiosk.closed; closing report)──▶ closed
    any ──the server says kiosk.revoked──▶ revoked;  start with no server ──▶ offline (re-tried)

The poll-worker PIN is checked by the server at open and close, and by the kiosk itself in between
(:mod:`kiosk._pollworker`: a hash in memory only).

Cast (``docs/kiosk.md``, "Network trouble"): the ballot from the kiosk's page is decoded strictly and
verified for this election (the server verifies it again), a challenge is fetched, the card signs with the
voter's PIN (the card that was read for this voter only), and the server's receipt is awaited. The kiosk
never queues: no answer to the cast → the kiosk looks the ballot up by its tracking code; found → the
receipt is printed as usual, not found → ``kiosk.not_cast``, no answer again → ``kiosk.unconfirmed``, and
the kiosk stays on that ballot until it is re-checked (``recheck``) or a poll worker locks it.

Nothing here logs or keeps personal data: the card is remembered by its certificate fingerprint for one
voter only; the PINs are never stored or logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from crypto import CryptoError, EncryptedBallot, verify_ballot
from voting.clients.kiosk import KioskApi, KioskApiError
from voting.clients.voter import ElectionInfo, VoterClientError

from ._errors import KioskError
from ._pollworker import PollWorkerPin
from ._printing import Printed, Printer, closing_report_pdf, receipt_pdf, zero_report_pdf
from ._state import SessionRecord, StateDir
from .card import CardError, CardReader

__all__ = ["KioskService"]

log = logging.getLogger("tvote.kiosk")

LOOKUP_TRIES: Final[int] = 3
STATES: Final[frozenset[str]] = frozenset({"closed", "locked", "ready", "revoked", "offline"})


@dataclass(slots=True)
class _Voter:
    token: str = field(repr=False)
    last_activity: float
    card_fingerprint: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A ballot sent to the server without an answer: looked up by its tracking code until settled."""

    ballot_hash: str
    tracking_code: str


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KioskService:
    """One kiosk device. ``election`` returns the checked election data (``VoterClient.election``);
    ``clock`` (monotonic seconds) and ``now`` (wall clock) are injectable for tests."""

    def __init__(
        self,
        state_dir: StateDir,
        *,
        api: KioskApi,
        election: Callable[[], ElectionInfo],
        reader: CardReader,
        printer: Printer,
        public_url: str,
        idle_seconds: float = 90.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        lookup_pause: float = 1.0,
    ) -> None:
        self.dir = state_dir
        self.kiosk_id = state_dir.config().kiosk_id
        self.api = api
        self._election = election
        self.reader = reader
        self.printer = printer
        self.public_url = public_url.rstrip("/")
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.now = now
        self.lookup_pause = lookup_pause
        self.state = "offline"
        self.polling_place = ""
        self.session = 0
        self.count = 0
        self._pin = PollWorkerPin()
        self._voter: _Voter | None = None
        self._pending: _Pending | None = None
        self._lock = threading.RLock()
        self._last_refresh = float("-inf")

    # ------------------------------------------------------------------------------------------- state

    def refresh(self) -> None:
        """Ask the server for this kiosk's status (at start, and while ``offline``)."""
        with self._lock:
            self._last_refresh = self.clock()
            try:
                st = self.api.status()
            except KioskApiError as e:
                if e.code == "kiosk.revoked":
                    self._revoked()
                else:
                    log.warning("kiosk status refused: %s", e.code)
                    self.state = "offline"
                return
            except httpx.TransportError as e:
                log.warning("election server unreachable: %s", type(e).__name__)
                self.state = "offline"
                return
            with contextlib.suppress(VoterClientError, httpx.TransportError):
                self._election()  # fetched and checked once, while the server answers
            self.polling_place = str(st.get("polling_place", ""))
            self.session = int(st.get("session", 0))
            if st.get("state") == "open":
                local = self.dir.session()
                same = local is not None and local.session == self.session and local.open
                self.count = local.count if same and local is not None else int(st.get("ballots_cast", 0))
                if self.state not in ("locked", "ready"):
                    self.state = "locked"
            else:
                self.state = "closed"
                self._forget_voter()

    def snapshot(self) -> dict[str, Any]:
        """``GET /kiosk/api/state``."""
        self.tick()
        if self.state == "offline" and self.clock() - self._last_refresh > 5:
            self.refresh()
        return {
            "state": self.state,
            "kiosk_id": self.kiosk_id,
            "polling_place": self.polling_place,
            "session": self.session,
            "ballots_cast": self.count,
            "idle_seconds": self.idle_seconds,
            "card_present": self._voter is not None and self._voter.card_fingerprint is not None,
            "unconfirmed": self._pending.tracking_code if self._pending is not None else None,
        }

    def tick(self) -> None:
        """Idle reset: a ``ready`` kiosk untouched for ``idle_seconds`` locks and forgets the voter (not
        while a cast is running or a ballot is unconfirmed: that screen waits for the poll worker)."""
        if not self._lock.acquire(blocking=False):
            return  # an operation is running: it counts as activity
        try:
            v = self._voter
            if (
                self.state == "ready"
                and v is not None
                and self._pending is None
                and self.clock() - v.last_activity >= self.idle_seconds
            ):
                log.info("idle reset: locked")
                self._forget_voter()
                self.state = "locked"
        finally:
            self._lock.release()

    def _forget_voter(self) -> None:
        self._voter = None
        self._pending = None

    def _revoked(self) -> None:
        self.state = "revoked"
        self._forget_voter()
        self._pin.forget()

    def _need(self, *states: str) -> None:
        if self.state not in states:
            raise KioskError("kiosk.state", state=self.state)

    def _voter_for(self, token: object) -> _Voter:
        v = self._voter
        if (
            self.state != "ready"
            or v is None
            or not isinstance(token, str)
            or not hmac.compare_digest(token.encode(), v.token.encode())
        ):
            raise KioskError("kiosk.voter_session")
        v.last_activity = self.clock()
        return v

    def _server_error(self, e: KioskApiError) -> KioskError:
        if e.code == "kiosk.revoked":
            self._revoked()
        return KioskError.from_server(e.status, e.code, e.message, e.details)

    # ------------------------------------------------------------------------------------ poll workers

    def open(self, pin: str) -> dict[str, Any]:
        """Open polls: the server appends ``kiosk.opened`` (it checks the PIN); the zero report prints."""
        with self._lock:
            if self.state == "offline":
                self.refresh()
                if self.state == "offline":
                    raise KioskError("kiosk.offline")
            self._need("closed")
            session = self.session + 1
            when = self.now().replace(microsecond=0)
            try:
                answer = self.api.open(session, pin, opened_at=_rfc3339(when))
            except KioskApiError as e:
                if e.code == "kiosk.session":
                    self.refresh()
                raise self._server_error(e) from None
            except httpx.TransportError:
                raise KioskError("kiosk.offline") from None
            self._pin.remember(pin)
            self.session, self.count = session, 0
            self.dir.save_session(SessionRecord(session, True, 0))
            self.state = "locked"
            log.info("polls opened: session %d, ledger index %s", session, answer.get("ledger_index"))
            pdf = zero_report_pdf(
                kiosk_id=self.kiosk_id,
                polling_place=self.polling_place,
                session=session,
                opened_at=when,
                ledger_index=int(answer["ledger_index"]),
                entry_hash=str(answer["entry_hash"]),
            )
            printed = self._deliver(pdf, self.dir.reports / f"session-{session:04d}-zero-report.pdf")
            return {"state": self.state, "session": session, "report": printed.to_dict()}

    def close(self, pin: str) -> dict[str, Any]:
        """Close polls: the server appends ``kiosk.closed`` with its count and the kiosk's; the closing
        report prints."""
        with self._lock:
            self._need("locked", "ready")
            when = self.now().replace(microsecond=0)
            try:
                answer = self.api.close(self.session, self.count, pin, closed_at=_rfc3339(when))
            except KioskApiError as e:
                raise self._server_error(e) from None
            except httpx.TransportError:
                raise KioskError("kiosk.offline") from None
            entry = answer.get("entry", {})
            server_count = int(entry.get("ballots_cast", -1)) if isinstance(entry, Mapping) else -1
            self._forget_voter()
            self._pin.forget()
            self.dir.save_session(SessionRecord(self.session, False, self.count))
            self.state = "closed"
            log.info(
                "polls closed: session %d, kiosk count %d, server count %d",
                self.session,
                self.count,
                server_count,
            )
            pdf = closing_report_pdf(
                kiosk_id=self.kiosk_id,
                polling_place=self.polling_place,
                session=self.session,
                closed_at=when,
                kiosk_count=self.count,
                server_count=server_count,
                ledger_index=int(answer["ledger_index"]),
                entry_hash=str(answer["entry_hash"]),
            )
            printed = self._deliver(pdf, self.dir.reports / f"session-{self.session:04d}-closing-report.pdf")
            return {
                "state": self.state,
                "session": self.session,
                "kiosk_count": self.count,
                "server_count": server_count,
                "report": printed.to_dict(),
            }

    def unlock(self, pin: str) -> dict[str, Any]:
        """One voter: a fresh voter session the page's next calls carry."""
        with self._lock:
            self._need("locked")
            self._pin.check(pin)
            self._voter = _Voter(secrets.token_urlsafe(32), self.clock())
            self.state = "ready"
            return {"state": self.state, "voter_session": self._voter.token}

    def lock(self, *, voter_session: str | None = None, pin: str | None = None) -> dict[str, Any]:
        """End the voter's turn (the voter's cancel, with its session) or lock as a poll worker (PIN). An
        unconfirmed ballot waits for the poll worker: only the PIN locks then."""
        with self._lock:
            if pin is not None:
                self._pin.check(pin)
            elif self.state == "locked":
                return {"state": self.state}
            else:
                self._voter_for(voter_session)
                if self._pending is not None:
                    raise KioskError("kiosk.unconfirmed", tracking_code=self._pending.tracking_code)
            if self.state in ("ready", "locked"):
                self._forget_voter()
                self.state = "locked"
            return {"state": self.state}

    # -------------------------------------------------------------------------------------------- voter

    def card(self, voter_session: str) -> dict[str, Any]:
        """Read the card in the reader (no PIN) and remember it for this voter."""
        with self._lock:
            voter = self._voter_for(voter_session)
            try:
                info = self.reader.read_card()
            except CardError as e:
                raise KioskError.from_card(e) from None
            voter.card_fingerprint = info.fingerprint
            voter.last_activity = self.clock()
            return {"present": True}

    def _check_ballot(self, ballot: object) -> tuple[EncryptedBallot, ElectionInfo]:
        try:
            info = self._election()
        except (VoterClientError, httpx.TransportError):  # nothing was sent: nothing can be cast
            raise KioskError("kiosk.not_cast", reason="unreachable") from None
        try:
            decoded = EncryptedBallot.from_dict(ballot)
        except (CryptoError, ValueError, TypeError, KeyError):
            raise KioskError("kiosk.ballot_invalid") from None
        if decoded.election_hash != info.base_hash:
            raise KioskError("kiosk.ballot_election")
        try:
            verify_ballot(info.context, decoded)
        except CryptoError:
            raise KioskError("kiosk.ballot_invalid") from None
        return decoded, info

    def cast(self, voter_session: str, ballot: Mapping[str, Any], card_pin: str) -> dict[str, Any]:
        """Cast the voter's ballot with their card; print the receipt and lock (see the module text)."""
        with self._lock:
            voter = self._voter_for(voter_session)
            if self._pending is not None:  # the last try had no answer: settle it before another cast
                try:
                    settled = self._settle(self._pending)
                except KioskError as e:
                    if e.code != "kiosk.not_cast":
                        raise
                else:
                    return settled
            if voter.card_fingerprint is None:
                raise KioskError("kiosk.no_card")
            decoded, info = self._check_ballot(ballot)
            ballot_hash = decoded.ballot_hash()
            try:
                challenge = self.api.challenge()
            except KioskApiError as e:
                raise self._server_error(e) from None
            except httpx.TransportError:  # nothing was sent that could be appended
                raise KioskError("kiosk.not_cast", reason="unreachable") from None
            try:
                submission = self.reader.sign_ballot(
                    card_pin,
                    info.base_hash,
                    ballot_hash,
                    challenge,
                    expected_fingerprint=voter.card_fingerprint,
                )
            except CardError as e:
                voter.last_activity = self.clock()
                raise KioskError.from_card(e) from None
            pending = _Pending(ballot_hash.hex(), decoded.tracking_code())
            try:
                receipt = self.api.cast(decoded.to_dict(), submission, challenge, self.session)
            except KioskApiError as e:
                voter.last_activity = self.clock()
                raise self._server_error(e) from None
            except httpx.TransportError as e:
                log.warning(
                    "no answer to the cast of %s (%s): looking it up", pending.tracking_code, type(e).__name__
                )
                self._pending = pending
                return self._settle(pending)
            return self._cast_done(receipt, pending, info)

    def recheck(self, *, voter_session: str | None = None, pin: str | None = None) -> dict[str, Any]:
        """Look the unconfirmed ballot up again (the voter's screen, or a poll worker with the PIN)."""
        with self._lock:
            if pin is not None:
                self._pin.check(pin)
            else:
                self._voter_for(voter_session)
            if self._pending is None:
                raise KioskError("kiosk.state", state=self.state)
            return self._settle(self._pending)

    def _settle(self, pending: _Pending) -> dict[str, Any]:
        """Look ``pending`` up by its tracking code: found → its receipt is printed (returns the answer);
        not found → ``kiosk.not_cast`` (the voter may cast again); no answer → ``kiosk.unconfirmed``."""
        for attempt in range(LOOKUP_TRIES):
            if attempt:
                time.sleep(self.lookup_pause)
            try:
                found = self.api.lookup(pending.tracking_code)
            except httpx.TransportError:
                continue
            except KioskApiError as e:
                raise self._server_error(e) from None
            if (
                found is None
                or found.get("ballot_hash") != pending.ballot_hash
                or found.get("kind") != "cast"
            ):
                self._pending = None
                log.info("ballot %s is not on the ledger: not cast", pending.tracking_code)
                raise KioskError("kiosk.not_cast", reason="not_found", tracking_code=pending.tracking_code)
            log.info("ballot %s found on the ledger after a lost answer", pending.tracking_code)
            return self._cast_done(found, pending, self._election())
        raise KioskError("kiosk.unconfirmed", tracking_code=pending.tracking_code)

    def _cast_done(self, receipt: Mapping[str, Any], pending: _Pending, info: ElectionInfo) -> dict[str, Any]:
        """The server acknowledged (or the lookup found) the ballot: count it, print, lock."""
        if receipt.get("ballot_hash") != pending.ballot_hash:
            raise KioskError("kiosk.server", detail="the server's receipt is for another ballot")
        self.count += 1
        self.dir.save_session(SessionRecord(self.session, True, self.count))
        self._forget_voter()
        self.state = "locked"
        when = self.now().replace(microsecond=0)
        name = info.manifest.get("name", {})
        ledger_index = int(receipt.get("leaf_index", -1))
        log.info("ballot cast: %s at ledger index %d", pending.tracking_code, ledger_index)
        pdf = receipt_pdf(
            election_name=(str(name.get("ja", "")), str(name.get("en", ""))),
            tracking_code=pending.tracking_code,
            ledger_index=ledger_index,
            cast_at=when,
            kiosk_id=self.kiosk_id,
            public_url=self.public_url,
        )
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        printed = self._deliver(pdf, self.dir.receipts / f"{stamp}-{pending.tracking_code}.pdf")
        out = {
            "tracking_code": pending.tracking_code,
            "ballot_hash": pending.ballot_hash,
            "ledger_index": ledger_index,
            "entry_hash": receipt.get("entry_hash"),
            "channel": receipt.get("channel"),
            "election_id": receipt.get("election_id"),
            "cast_at": _rfc3339(when),
        }
        return {"receipt": out, "printed": printed.to_dict(), "state": self.state}

    def _deliver(self, pdf: bytes, path: Any) -> Printed:
        printed = self.printer.deliver(pdf, path)
        if printed.error:
            log.error("printing %s failed: %s", path.name, printed.error)
        return printed
