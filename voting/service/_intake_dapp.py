"""My Number card on the phone: the intake's side of the Digital Authentication App's signing transaction.

A cast this way IS a JPKI cast: the card signs the protocol's JPKI message (``voting.auth.signed_message``:
base hash, ballot hash, server challenge) through the app, and the certificate and signature go through
:class:`voting.auth.JpkiVerifier` exactly as a card read by the booth would (step 4 of
:mod:`voting.service._intake`); the evidence, the public ``auth`` and the ledger entry are those of a JPKI
cast (``method: "jpki"``). What this module adds is the transaction around it:

1. :meth:`IntakeDapp.start_dapp` (``POST /voter/jpki-app/start``): voting open, ``jpki`` allowed by the
   manifest, the ballot hash never accepted, the one-time challenge issued here and still unused and
   unexpired, and bound to no other transaction; the server computes the JPKI message of exactly this ballot
   hash and challenge, submits its SHA-256 ``DigestInfo`` to the app and keeps a
   :class:`~voting._intake_db.DappTransaction` (a random handle for the booth, the app's id, the digest, the
   expiry: the earlier of the app's and the challenge's);
2. :meth:`IntakeDapp.dapp_status` (``GET /voter/jpki-app/{transaction}``): ``pending`` / ``approved`` /
   ``refused`` / ``expired`` (asked of the app while the transaction is live), or ``used``;
3. ``IntakeService.cast_dapp`` (``POST /voter/ballots`` with ``auth: {method: "jpki-app", transaction}``):
   the transaction is known, unused, unexpired and was started for this ballot's hash [``dapp.unknown``,
   ``dapp.used``, ``dapp.expired``, ``dapp.ballot_mismatch``]; the app's result is fetched and checked (its
   digest equal to the one submitted: ``dapp.digest_mismatch``), then the JPKI checks run with the
   transaction's challenge; the transaction is consumed under the locks with the challenge.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from voting.auth import SigningApp, sha256_digest_info, signed_message

from .._errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated
from .._intake_db import DappTransaction, IntakeChallenge
from ._intake_auth import IntakeAuth, _Authenticated, _aware
from ._intake_checks import _Ballot, _rowcount

__all__ = ["DappStart", "IntakeDapp"]

DappState = Literal["pending", "approved", "refused", "expired", "used"]


@dataclass(frozen=True, slots=True)
class DappStart:
    """A started signing transaction: the booth's handle, the address that opens the app, its expiry."""

    transaction: str
    app_url: str
    expires_at: dt.datetime


class IntakeDapp(IntakeAuth):
    """The signing-app transaction around a JPKI cast (``dapp``, a field of the intake, is the app client;
    ``None``: refused with ``auth.unavailable``)."""

    def _require_dapp(self) -> SigningApp:
        self._require_method("jpki")
        if self.dapp is None or self.jpki is None:
            raise Forbidden(
                "auth.unavailable", "My Number card signing on the phone is not configured on this server"
            )
        return self.dapp

    def start_dapp(self, ballot_hash: bytes, challenge: bytes) -> DappStart:
        """Start a signing transaction at the app for the JPKI message of ``ballot_hash``, ``challenge``."""
        self._require_voting()
        app = self._require_dapp()
        if len(ballot_hash) != 32:
            raise InvalidRequest("ballot.hash_format", "a ballot hash is 32 bytes (64 hex digits)")
        if len(challenge) != 32:
            raise InvalidRequest("challenge.format", "the server challenge is 32 bytes (64 hex digits)")
        with self._session() as s:
            self._check_unused(s, ballot_hash.hex())
            self._check_challenge_free(s, challenge)
        self._check_challenge(challenge)
        digest_info = sha256_digest_info(signed_message(self.election.base_hash, ballot_hash, challenge))
        handle = secrets.token_urlsafe(32)
        # the app's ``state`` is its own random value: the handle is the booth's bearer and never appears in
        # the app's address (a QR code can be seen over a shoulder)
        tx = app.start(digest_info, state=secrets.token_urlsafe(24))
        now = self.clock()
        with self._session() as s:
            row = s.get(IntakeChallenge, challenge.hex())
            if row is None:  # checked above; a challenge is purged only a day after it expired
                raise Unauthenticated("challenge.unknown", "unknown server challenge; ask for a new one")
            expires = min(_aware(row.expires_at), tx.expires_at)
            self._check_challenge_free(s, challenge)
            s.add(
                DappTransaction(
                    handle=handle,
                    election_id=self.election_id,
                    app_transaction_id=tx.transaction_id,
                    ballot_hash=ballot_hash.hex(),
                    challenge=challenge.hex(),
                    digest_info=digest_info.hex(),
                    issued_at=now,
                    expires_at=expires,
                )
            )
            try:
                s.commit()
            except IntegrityError:  # another start bound the challenge between the check and the insert
                raise Conflict(
                    "challenge.used", "this server challenge is already bound to a signing transaction"
                ) from None
        return DappStart(handle, tx.app_url, expires)

    def _check_challenge_free(self, s: Session, challenge: bytes) -> None:
        bound = s.exec(select(DappTransaction).where(DappTransaction.challenge == challenge.hex())).first()
        if bound is not None:
            raise Conflict(
                "challenge.used",
                "this server challenge is already bound to a signing transaction; ask for a new one",
            )

    def _dapp_row(self, handle: str) -> DappTransaction:
        with self._session() as s:
            row = s.get(DappTransaction, handle)
        if row is None or row.election_id != self.election_id:
            raise NotFound("dapp.unknown", "unknown signing transaction; start a new one")
        return row

    def dapp_status(self, handle: str) -> DappState:
        """Where the signing transaction stands (the app is asked only while it is live)."""
        app = self._require_dapp()
        row = self._dapp_row(handle)
        if row.used_at is not None:
            return "used"
        if _aware(row.expires_at) <= self.clock():
            return "expired"
        return app.status(row.app_transaction_id)

    def _auth_dapp(self, b: _Ballot, handle: str) -> _Authenticated:
        """Step 4 for a ballot signed through the app's transaction ``handle``: a JPKI check in every
        respect."""
        app = self._require_dapp()
        try:
            row = self._dapp_row(handle)
        except NotFound:
            raise Unauthenticated("dapp.unknown", "unknown signing transaction; start a new one") from None
        if row.used_at is not None:
            raise Unauthenticated("dapp.used", "this signing transaction was already used for a ballot")
        if _aware(row.expires_at) <= self.clock():
            raise Unauthenticated("dapp.expired", "this signing transaction expired; start a new one")
        if row.ballot_hash != b.hex:
            raise Unauthenticated(
                "dapp.ballot_mismatch", "this signing transaction was started for another ballot"
            )
        submission = app.result(row.app_transaction_id, digest_info=bytes.fromhex(row.digest_info))
        auth = self._auth_jpki(b, submission, bytes.fromhex(row.challenge))
        return replace(auth, dapp_transaction=handle)

    # ------------------------------------------------------------------------- under the locks (step 6)

    def _check_dapp_unused(self, s: Session, handle: str) -> None:
        row = s.get(DappTransaction, handle)
        if row is None or row.used_at is not None:
            raise Unauthenticated("dapp.used", "this signing transaction is unknown or already used")

    def _consume_dapp(self, s: Session, handle: str, now: dt.datetime) -> None:
        used = _rowcount(
            s,
            update(DappTransaction)
            .where(DappTransaction.handle == handle)  # type: ignore[arg-type]
            .where(DappTransaction.used_at.is_(None))  # type: ignore[union-attr]
            .values(used_at=now),
        )
        if used != 1:
            raise Unauthenticated("dapp.used", "this signing transaction was already used for a ballot")
