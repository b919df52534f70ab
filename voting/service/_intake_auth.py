"""The intake's authentication hand-off (steps 4 and 5 of a cast, :mod:`voting.service._intake`).

JPKI: a one-time server challenge (issued here, checked unexpired and unused before the signature is
verified, consumed under the locks) and the card's signature over (base hash, ballot hash, challenge),
verified by :class:`voting.auth.JpkiVerifier`. Digital ID: a login whose nonce is bound to the ballot hash
(its PKCE verifier kept in :class:`~voting._intake_db.OidcPending`), completed by
:class:`voting.auth.OidcRelyingParty`, then the face match against the reference photo of the roll resident
the verified claims matched. Either way the resident is matched to the roll (voter alias), and the outcome,
an :class:`_Authenticated`, carries the entry's public ``auth`` and the private evidence behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session, col, select

from voting.auth import JpkiSubmission, LiveCapture, PendingOidcLogin, require_match

from .._db import utcnow
from .._errors import Forbidden, InvalidRequest, Unauthenticated
from .._intake_db import IntakeChallenge, OidcPending, OidcSubjectBinding
from ._intake_checks import IntakeChecks, _Ballot, _rowcount

__all__ = ["IntakeAuth", "IssuedChallenge", "OidcStart"]

# A JPKI cast's challenge statements, built once and bound by name at each execution (building a statement
# costs SQLAlchemy more CPU than executing a compiled one); they run on the session's connection, where the
# session holds no pending ORM change
_CHALLENGE = select(IntakeChallenge.election_id, IntakeChallenge.used_at, IntakeChallenge.expires_at).where(
    col(IntakeChallenge.challenge) == bindparam("given")
)
#: step 6 checks the challenge and marks it used in one statement: the conditional UPDATE takes it unless
#: another submission took it first, and gives back what the check needs
_TAKE_CHALLENGE = (
    update(IntakeChallenge)
    .where(col(IntakeChallenge.challenge) == bindparam("given"))
    .where(col(IntakeChallenge.used_at).is_(None))
    .values(used_at=bindparam("now"))
    .returning(col(IntakeChallenge.election_id), col(IntakeChallenge.expires_at))
)


def _aware(t: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    """A one-time server challenge the card signature must cover, and when it expires."""

    challenge: bytes
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OidcStart:
    """Where to send the voter's browser, and the ``state`` to hand back with the code."""

    authorization_url: str
    state: str


@dataclass(frozen=True, slots=True)
class _Authenticated:
    """The outcome of step 4/5: who voted (alias) and what the public record says about the evidence."""

    alias: bytes
    #: the alias's leaf index in the committed roll tree (what its roll proof needs)
    leaf_index: int
    method: str
    evidence_hash: bytes
    evidence: dict[str, Any]
    public_auth: dict[str, Any]
    challenge: bytes | None = None
    oidc_state: str | None = None
    #: My Number card on the phone: the handle of the app's signing transaction (consumed with the challenge)
    dapp_transaction: str | None = None
    #: digital ID: ``voting.auth.subject_key`` of the account and its issuer (bound to ``alias``)
    oidc_subject: bytes | None = None
    oidc_issuer: str | None = None
    #: the intake clock when the evidence was verified (sealed with it: the audit re-checks at that time)
    verified_at: dt.datetime = field(default_factory=utcnow)


class IntakeAuth(IntakeChecks):
    """Challenges, JPKI, and the digital ID with its face match."""

    # ------------------------------------------------------------------------------------- challenges

    def issue_challenge(self) -> IssuedChallenge:
        """A fresh one-time challenge the card signature must cover (valid ``challenge_ttl``)."""
        self._require_voting()
        c = self.randbytes(32)
        if len(c) != 32:
            raise ValueError("randomness source returned the wrong length")
        now = self.clock()
        exp = now + self.challenge_ttl
        with self._session() as s:
            self._purge_expired(s, now)
            s.add(
                IntakeChallenge(
                    challenge=c.hex(), election_id=self.election_id, issued_at=now, expires_at=exp
                )
            )
            s.commit()
        return IssuedChallenge(c, exp)

    def _purge_expired(self, s: Session, now: dt.datetime) -> None:
        """Delete up to 1000 challenges expired for over a day, in one statement. Concurrent requests purge
        the same rows: on PostgreSQL each skips rows another one has locked (no waiting, no deadlock) and a
        row already gone is simply not deleted again (an ORM delete per row warned, or raised, on that)."""
        cutoff = now - dt.timedelta(days=1)
        stale = (
            select(IntakeChallenge.challenge)
            .where(IntakeChallenge.expires_at < cutoff)
            .limit(1000)
            .with_for_update(skip_locked=True)  # not rendered on SQLite (one writer at a time anyway)
        )
        s.execute(delete(IntakeChallenge).where(IntakeChallenge.challenge.in_(stale)))  # type: ignore[attr-defined]

    def _check_challenge(self, challenge: bytes, s: Session | None = None) -> None:
        """The challenge was issued here, is unused and unexpired (read in ``s``, or a session of its own)."""
        if s is None:
            with self._session() as own:
                return self._check_challenge(challenge, own)
        row = s.connection().execute(_CHALLENGE, {"given": challenge.hex()}).first()
        if row is None or row.election_id != self.election_id:
            raise Unauthenticated("challenge.unknown", "unknown server challenge; ask for a new one")
        if row.used_at is not None:
            raise Unauthenticated("challenge.used", "the server challenge was already used")
        if _aware(row.expires_at) <= self.clock():
            raise Unauthenticated("challenge.expired", "the server challenge expired; ask for a new one")
        return None

    def _take_challenge(self, s: Session, challenge: bytes, now: dt.datetime) -> None:
        """Under the locks (step 6): check the challenge as :meth:`_check_challenge` does, at ``now``, and
        mark it used, atomically, in one statement (a conditional UPDATE that another submission's use
        refuses). It is taken in ``s``'s transaction: a refusal after it rolls the transaction back and leaves
        the challenge unused. One that matched nothing (unknown, or used) is read again for its refusal."""
        row = s.connection().execute(_TAKE_CHALLENGE, {"given": challenge.hex(), "now": now}).first()
        self._challenge_taken(s, challenge, row, now)

    def _challenge_taken(self, s: Session, challenge: bytes, row: Any, now: dt.datetime) -> None:
        """Refuse a take of ``challenge`` that returned ``row`` (its election and expiry; ``None``: it matched
        nothing) unless it was this election's and unexpired at ``now``."""
        if row is None:
            self._check_challenge(challenge, s)  # raises challenge.unknown or challenge.used
            raise Unauthenticated("challenge.used", "the server challenge was already used")
        if row.election_id != self.election_id:
            raise Unauthenticated("challenge.unknown", "unknown server challenge; ask for a new one")
        if _aware(row.expires_at) <= now:
            raise Unauthenticated("challenge.expired", "the server challenge expired; ask for a new one")

    # -------------------------------------------------------------------------------- authentication

    def _voter_for(self, match_key: bytes, s: Session | None = None) -> tuple[bytes, int]:
        """The voter alias and its roll leaf index for a resident's match key (``voter.not_on_roll``)."""
        found = self.election.lookup_voter(match_key, s)
        if found is None:
            raise Forbidden("voter.not_on_roll", "the authenticated resident is not on this election's roll")
        return bytes(found[0]), int(found[1])

    def _auth_jpki(
        self, b: _Ballot, submission: JpkiSubmission, challenge: bytes, s: Session | None = None
    ) -> _Authenticated:
        """Steps 4 and 5 of a JPKI cast: the challenge, the card's signature, the roll. Reads in ``s`` (the
        caller's read session, open across the signature's verification: no network call), or a read
        session of its own (a few ms open)."""
        self._require_method("jpki")
        if self.jpki is None:
            raise Forbidden("auth.unavailable", "JPKI authentication is not configured on this server")
        if len(challenge) != 32:
            raise InvalidRequest("challenge.format", "the server challenge is 32 bytes (64 hex digits)")
        if s is None:
            with self._read_session() as own:
                return self._auth_jpki(b, submission, challenge, own)
        self._check_challenge(challenge, s)
        verified_at = self.clock()
        ident = self.jpki.verify(
            submission,
            election_base_hash=self.election.base_hash,
            ballot_hash=b.hash,
            challenge=challenge,
            now=verified_at,
        )
        alias, leaf = self._voter_for(ident.match_key.digest, s)
        evidence = {
            "method": "jpki",
            "election_base_hash": self.election.base_hash.hex(),
            "ballot_hash": b.hex,
            "challenge": challenge.hex(),
            "signature": submission.signature.hex(),
            "certificate": submission.certificate_der.hex(),
            "intermediates": [d.hex() for d in submission.intermediates_der],
            "trust_anchor_key_id": ident.trust_anchor_key_id,
        }
        return _Authenticated(
            alias=alias,
            leaf_index=leaf,
            method="jpki",
            evidence_hash=ident.evidence_hash,
            evidence=evidence,
            public_auth={"method": "jpki", "evidence_hash": ident.evidence_hash.hex()},
            challenge=challenge,
            verified_at=verified_at,
        )

    # ------------------------------------------------------------------------ digital ID (OIDC + face)

    def begin_oidc(self, ballot_hash: bytes, *, redirect_uri: str | None = None) -> OidcStart:
        """Start a digital-ID login whose nonce is bound to ``ballot_hash`` (PKCE verifier kept here)."""
        self._require_voting()
        self._require_method("oidc+face")
        if self.oidc is None:
            raise Forbidden("auth.unavailable", "digital-ID authentication is not configured on this server")
        if redirect_uri is not None and redirect_uri != self.oidc.config.redirect_uri:
            raise InvalidRequest("oidc.redirect_uri", "redirect_uri is not this server's registered callback")
        if len(ballot_hash) != 32:
            raise InvalidRequest("ballot.hash_format", "a ballot hash is 32 bytes (64 hex digits)")
        with self._session() as s:
            self._check_unused(s, ballot_hash.hex())
        pending = self.oidc.begin(election_base_hash=self.election.base_hash, ballot_hash=ballot_hash)
        now = self.clock()
        with self._session() as s:
            s.add(
                OidcPending(
                    state=pending.state,
                    election_id=self.election_id,
                    ballot_hash=ballot_hash.hex(),
                    code_verifier=pending.code_verifier,
                    nonce_salt=pending.nonce_salt.hex(),
                    issued_at=now,
                    expires_at=now + self.challenge_ttl,
                )
            )
            s.commit()
        return OidcStart(pending.authorization_url, pending.state)

    def _auth_oidc(self, b: _Ballot, state: str, code: str, live: LiveCapture) -> _Authenticated:
        self._require_method("oidc+face")
        if self.oidc is None or self.face is None:
            raise Forbidden("auth.unavailable", "digital-ID authentication is not configured on this server")
        bh = b.hash
        with self._session() as s:
            row = s.get(OidcPending, state)
            if row is None or row.election_id != self.election_id:
                raise Unauthenticated("oidc.state", "unknown digital-ID login; start a new one")
            if row.used_at is not None:
                raise Unauthenticated("oidc.state", "this digital-ID login was already used")
            if _aware(row.expires_at) <= self.clock():
                raise Unauthenticated("oidc.expired", "this digital-ID login expired; start a new one")
            if row.ballot_hash != bh.hex():
                raise Unauthenticated("oidc.nonce", "this digital-ID login was started for another ballot")
        pending = PendingOidcLogin(
            authorization_url="",
            state=row.state,
            code_verifier=row.code_verifier,
            nonce_salt=bytes.fromhex(row.nonce_salt),
            election_base_hash=self.election.base_hash,
            ballot_hash=bh,
        )
        callback = f"{self.oidc.config.redirect_uri}?{urlencode({'code': code, 'state': state})}"
        if self.face_reference is None:
            raise Forbidden("auth.unavailable", "no reference-photo source is configured for face matching")
        verified_at = self.clock()
        ident = self.oidc.complete(pending, callback, now=verified_at)
        if ident.match_key is None:
            raise Forbidden(
                "voter.unmatched",
                "the digital ID released no verified name, birth date and address (from the configured "
                "verified source) to match the roll",
            )
        alias, leaf = self._voter_for(ident.match_key.digest)
        with self._session() as s:  # early, before the face engine is asked; again under the lock
            self._check_binding_of(s, ident.subject_key, alias)
        # the reference photo of the resident on the roll the verified claims matched: never one chosen
        # by the caller, and never one found by the caller's own account
        reference = self.face_reference.photo(self.election_id, alias)
        result = require_match(self.face.match(reference, live))
        ev = ident.evidence
        evidence = {
            "method": "oidc+face",
            "election_base_hash": ev.election_base_hash.hex(),
            "ballot_hash": ev.ballot_hash.hex(),
            "nonce_salt": ev.nonce_salt.hex(),
            "issuer": ev.issuer,
            "id_token": ev.id_token,
            "face": {
                "decision": result.decision,
                "score": result.score,
                "threshold": result.threshold,
                "liveness": result.liveness,
                "engine_id": result.engine_id,
            },
        }
        return _Authenticated(
            alias=alias,
            leaf_index=leaf,
            method="oidc+face",
            evidence_hash=ident.evidence_hash,
            evidence=evidence,
            public_auth={
                "method": "oidc+face",
                "evidence_hash": ident.evidence_hash.hex(),
                "face": result.record_entry(),
            },
            oidc_state=state,
            oidc_subject=ident.subject_key,
            oidc_issuer=ident.issuer,
            verified_at=verified_at,
        )

    # --------------------------------------------------------------------------- under the locks (step 6)

    def _check_binding(self, s: Session, auth: _Authenticated) -> OidcSubjectBinding | None:
        """Under the locks: the digital-ID binding of ``auth`` (``None`` for JPKI or a first ballot)."""
        if auth.oidc_subject is None:
            return None
        return self._check_binding_of(s, auth.oidc_subject, auth.alias)

    def _check_oidc_unused(self, s: Session, state: str) -> None:
        row = s.get(OidcPending, state)
        if row is None or row.used_at is not None:
            raise Unauthenticated("oidc.state", "this digital-ID authorization is unknown or already used")

    def _consume_oidc(self, s: Session, state: str, now: dt.datetime) -> None:
        used = _rowcount(
            s,
            update(OidcPending)
            .where(OidcPending.state == state)  # type: ignore[arg-type]
            .where(OidcPending.used_at.is_(None))  # type: ignore[union-attr]
            .values(used_at=now),
        )
        if used != 1:
            raise Unauthenticated("oidc.state", "this digital-ID authorization was already used")
