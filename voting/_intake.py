"""Ballot intake (no HTTP): challenges, authenticated casting, Benaloh spoiling, receipts.

:class:`IntakeService` sits beside the :class:`~voting.service.ElectionService` (which owns the engine,
the ledger and the election's phase) and follows the same rule: **check everything, then append the one
ledger entry, then commit the private state**. A rejected submission raises a
:class:`~voting._errors.ServiceError` (or a :class:`voting.auth.AuthError`) before anything is appended,
so it never changes the ledger.

Casting (``ballot.cast``), in this order::

    1. voting is open: phase "voting" and the (extended) voting period has not ended by the service's
       clock                                                          [voting.not_open, voting.closed]
       and the auth method is in the manifest's auth_methods
    2. the ballot decodes strictly and verify_ballot passes (ids, base hash, no selection encrypted with
       zero randomness, proofs: docs/protocol.md §9.5, the verifier's V13)                 [ballot.*]
       and no two of its selections share a ciphertext pad                     [ballot.repeated_ciphertext]
    3. the uniqueness rules (``ledger.record.ballot_unique_values``, protocol §9.6, the verifier's V15): its
       ballot hash, its ballot nonce and every ciphertext pad were never accepted before, cast or spoiled
                        [ballot.duplicate, ballot.duplicate_nonce, ballot.duplicate_ciphertext]
    4. the authentication covers this ballot hash                               [jpki.*, oidc.*, face.*]
       JPKI: a one-time server challenge (issued here, unexpired, unused)       [challenge.*]
       digital ID: the pending authorization's state, nonce = H(ballot hash, salt), acr and auth_time
       [oidc.*]; identity claims only from the configured verified source   [voter.unmatched]
    5. the resident is on the committed roll → voter alias                               [voter.not_on_roll]
       digital ID: the account ``(iss, sub)`` is bound to no other alias and the alias to no other account
       [oidc.subject_bound, oidc.alias_bound]; then the face match against the reference photo of THAT
       roll resident (``ReferencePhotoSource.photo(election_id, alias)``)       [face.*]
    6. under the voter's lock and the election's mutation lock (``election.appending()``): phase
       again, the kiosk rule (a kiosk ballot ends internet voting for this voter, a second kiosk ballot
       is refused)                                                                       [voter.kiosk_voted]
       the uniqueness rules again, the digital-ID binding again, then the authentication evidence is
       committed as a *pending* row (it is the one part of a cast the public entry cannot rebuild; with
       it, for an account's first ballot, its :class:`~voting._intake_db.OidcSubjectBinding`), one ledger
       append, and one commit of
       the private rows (evidence final, ballot row and its unique values, voter state, challenge used,
       ``ElectionRow.ledger_synced``).

If the process dies between the append and that last commit, :class:`BallotReplay` (run by
``ElectionService.reconcile`` at start-up) rebuilds the ballot row and its unique values, the voter's
``seq``/kiosk state and the consumed challenge from the ``ballot.cast`` entry and makes the pending evidence
final; pending evidence with no entry is an orphan of a submission that was never appended and is deleted,
with a digital-ID binding that was written with it.

Spoiling (``ballot.spoiled``, the Benaloh challenge) is anonymous by design (``docs/voting.md`` §3b): the
opening is checked (every re-encryption, hence the ballot's proofs), the same uniqueness rules apply, and
the election holds at most ``max_spoiled`` spoiled ballots (``spoil.cap_reached``); the route adds a
per-client rate limit (``spoil.rate_limited``, ``voting._deps.SpoilLimitDep``).

The expensive checks (ballot proofs, RSA chain) run outside every lock, and each runs once per submission;
only step 6 is serialised. Step 6 runs under an in-process per-voter lock and the election's mutation lock
and re-reads :class:`~voting._intake_db.VoterState`; only one process can append to an election's ledger
(the ledger's one-sequencer lock, an ``flock`` on SQLite and an advisory lock on PostgreSQL), so two
processes cannot both give a voter the same ``seq``. The unique keys ``(election, alias, seq)``, the ballot
hash, ``(election, value, kind)`` of every unique value, the evidence hash and the one-kiosk-ballot index
are the database's backstop.

Public record per cast ballot: voter alias and its roll inclusion proof (``roll_proof``: ``index``, ``path``;
the alias is a leaf of the published roll commitment's Merkle tree, so no ballot can name an invented voter
unnoticed), ``auth = {"method", "evidence_hash"[, "face"]}``, channel and
``seq``. The evidence itself (certificate, signature, ID-token claims, face-match answer) goes to the
private :class:`~voting._intake_db.AuthEvidence` table, only as a sealed box to the observers' oversight key
when the manifest names one (``voting._oversight``; required in production): the server cannot read it back.
:meth:`IntakeService.export_evidence` hands the sealed items to the observers and logs it on the ledger
(``evidence.exported``); ``tvote audit-evidence`` (``voting._audit``) re-verifies them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlencode

import rfc8785
from sqlalchemy import CursorResult, Delete, Update, delete, func, update
from sqlmodel import Session, col, select

from crypto import (
    CryptoError,
    ElectionContext,
    EncryptedBallot,
    InvalidEncoding,
    RevealedBallot,
    VerificationError,
    normalize_tracking_code,
    tracking_code_from_hash,
    verify_ballot,
    verify_revealed,
)
from ledger import NotFound as LedgerNotFound
from ledger.events import EventType
from ledger.record import UniqueValue, ballot_unique_values, repeats_within
from voting.auth import (
    FaceMatcher,
    JpkiSubmission,
    JpkiVerifier,
    LiveCapture,
    OidcRelyingParty,
    PendingOidcLogin,
    ReferencePhotoSource,
    require_match,
)

from ._db import RollEntryRow, utcnow
from ._errors import Conflict, Forbidden, InvalidRequest, NotFound, RejectedSubmission, Unauthenticated
from ._intake_db import (
    AuthEvidence,
    BallotUniqueValue,
    IntakeBallot,
    IntakeChallenge,
    OidcPending,
    OidcSubjectBinding,
    VoterState,
)
from ._oversight import EVIDENCE_EXPORT_FORMAT, EXPORT_EVENT, export_hash, sealed_evidence, sealed_roll
from .receipt import Receipt

__all__ = [
    "ALIAS_BOUND",
    "CHALLENGE_TTL",
    "DUPLICATE_CODES",
    "MAX_SPOILED",
    "SUBJECT_BOUND",
    "BallotReplay",
    "Channel",
    "IntakeService",
    "IssuedChallenge",
    "OidcStart",
    "Receipt",
]

_log = logging.getLogger("tvote.intake")


def _rowcount(s: Session, statement: Update | Delete) -> int:
    """How many rows an UPDATE or DELETE matched. SQLAlchemy answers DML with a CursorResult; sqlmodel's
    ``Session.execute`` is typed as returning a plain Result, which has no ``rowcount``."""
    result = s.execute(statement)
    if not isinstance(result, CursorResult):  # pragma: no cover - SQLAlchemy's answer to every DML statement
        raise TypeError(f"{type(result).__name__} for a DML statement")
    return result.rowcount


Channel = Literal["internet", "kiosk"]
CHALLENGE_TTL: Final[dt.timedelta] = dt.timedelta(minutes=10)
#: default per-election cap on spoiled (challenged) ballots (``Settings.max_spoiled_ballots``)
MAX_SPOILED: Final[int] = 50_000
#: the error code (409) for a ballot that repeats a value of an accepted ballot, per uniqueness rule
DUPLICATE_CODES: Final[dict[str, str]] = {
    "ballot_hash": "ballot.duplicate",
    "ballot_nonce": "ballot.duplicate_nonce",
    "pad": "ballot.duplicate_ciphertext",
}
#: 409: this digital-ID account already voted as another resident of the roll (first binding wins)
SUBJECT_BOUND: Final[str] = "oidc.subject_bound"
#: 409: this roll resident already voted with another digital-ID account (first binding wins)
ALIAS_BOUND: Final[str] = "oidc.alias_bound"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(t: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge: bytes
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OidcStart:
    """Where to send the voter's browser, and the ``state`` to hand back with the code."""

    authorization_url: str
    state: str


class _KeyedLocks:
    """One :class:`threading.Lock` per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            slot = self._locks.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                yield
        finally:
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._locks[key]


@dataclass(frozen=True, slots=True)
class _Ballot:
    """A decoded ballot with its hash, tracking code, record form and the values the uniqueness rules make
    unique, computed once (each re-serialises the ballot)."""

    ballot: EncryptedBallot
    hash: bytes
    hex: str
    tracking_code: str
    record: dict[str, Any]
    unique: tuple[UniqueValue, ...]

    @classmethod
    def of(cls, b: EncryptedBallot) -> _Ballot:
        h = b.ballot_hash()
        record = b.to_dict()
        return cls(b, h, h.hex(), tracking_code_from_hash(h), record, ballot_unique_values(h.hex(), record))

    def check_shape(self) -> None:
        """What one ballot must not repeat by itself: a pad used twice (422 ``ballot.repeated_ciphertext``).
        Zero randomness (a pad that is the identity) is refused before, by ``verify_ballot`` (protocol
        §9.5 ``selection-randomness``, the verifier's V13: one definition for both)."""
        for earlier, later in repeats_within(self.unique):
            raise RejectedSubmission(
                "ballot.repeated_ciphertext",
                f"the {later.describe()} repeats the {earlier.describe()}: every selection is encrypted "
                "with fresh randomness; the device must encrypt again",
            )

    def rows(self, election_id: str, ledger_index: int) -> list[BallotUniqueValue]:
        """The :class:`BallotUniqueValue` rows of this ballot, published at ``ledger_index``."""
        return [
            BallotUniqueValue(
                election_id=election_id,
                kind=v.kind,
                value=v.value,
                ballot_hash=self.hex,
                ledger_index=ledger_index,
            )
            for v in self.unique
        ]


@contextmanager
def _rejecting(what: str) -> Iterator[None]:
    """Map a ballot's decoding or verification failure to a :class:`RejectedSubmission` (``ballot.*``)."""
    try:
        yield
    except VerificationError as e:
        raise RejectedSubmission(f"ballot.{e.check}", e.operator_message) from e
    except (InvalidEncoding, ValueError, TypeError) as e:
        raise RejectedSubmission("ballot.encoding", f"{what} does not decode: {e}") from e
    except CryptoError as e:  # pragma: no cover - every crypto error is one of the above
        raise RejectedSubmission("ballot.invalid", str(e)) from e


@dataclass(frozen=True, slots=True)
class _Authenticated:
    """The outcome of step 4/5: who voted (alias) and what the public record says about the evidence."""

    alias: bytes
    method: str
    evidence_hash: bytes
    evidence: dict[str, Any]
    public_auth: dict[str, Any]
    challenge: bytes | None = None
    oidc_state: str | None = None
    #: digital ID: ``voting.auth.subject_key`` of the account and its issuer (bound to ``alias``)
    oidc_subject: bytes | None = None
    oidc_issuer: str | None = None
    #: the intake clock when the evidence was verified (sealed with it: the audit re-checks at that time)
    verified_at: dt.datetime = field(default_factory=utcnow)


@dataclass
class IntakeService:
    """Ballot intake for the one election of ``election`` (a :class:`~voting.service.ElectionService`).

    ``jpki`` verifies card signatures; ``oidc`` is a relying party (``voting.auth`` digital-ID client),
    ``face`` a face-match engine and ``face_reference`` the authoritative source of the reference photos of
    the residents on the roll, asked by voter alias (:class:`voting.auth.ReferencePhotoSource`); a method
    whose verifier is ``None`` is refused with ``auth.unavailable``.
    ``kiosk_tokens`` are the bearer tokens of opened polling-place kiosks (only their SHA-256 is kept);
    ``kiosk_token_hashes`` are such SHA-256 digests (hex) given directly (what the server settings hold).
    ``max_spoiled`` caps the election's spoiled ballots. ``clock`` and ``randbytes`` are injectable for tests.
    ``checkpoint_per_receipt`` signs a checkpoint for a receipt whose entry no checkpoint covers yet (every
    ballot then gets its own public timestamp); ``False`` (what ``tvote serve`` runs: checkpoints on a
    schedule, :func:`voting.app.keep_checkpoints`) returns such a receipt *pending*: index and entry hash,
    no checkpoint and no proof yet; :meth:`find` gives the proof once the next checkpoint covers it.
    """

    election: Any
    jpki: JpkiVerifier | None = None
    oidc: OidcRelyingParty | None = None
    face: FaceMatcher | None = None
    face_reference: ReferencePhotoSource | None = None
    kiosk_tokens: frozenset[str] = frozenset()
    kiosk_token_hashes: frozenset[str] = frozenset()
    clock: Callable[[], dt.datetime] = utcnow
    randbytes: Callable[[int], bytes] = secrets.token_bytes
    challenge_ttl: dt.timedelta = CHALLENGE_TTL
    #: at most this many spoiled (challenged) ballots per election
    max_spoiled: int = MAX_SPOILED
    checkpoint_per_receipt: bool = True
    _voter_locks: _KeyedLocks = field(default_factory=_KeyedLocks, init=False, repr=False)
    _ctx: ElectionContext | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        hashed = frozenset(hashlib.sha256(t.encode()).hexdigest() for t in self.kiosk_tokens)
        self.kiosk_tokens = hashed | frozenset(h.lower() for h in self.kiosk_token_hashes)

    # ---------------------------------------------------------------------------------------- helpers

    @property
    def engine(self) -> Any:
        return self.election.engine

    @property
    def ledger(self) -> Any:
        return self.election.ledger

    @property
    def election_id(self) -> str:
        return str(self.election.election_id)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def context(self) -> ElectionContext:
        """The :class:`ElectionContext` ballots are checked against (needs the joint key)."""
        if self._ctx is None:
            self._ctx = ElectionContext(
                base_hash=self.election.base_hash,
                public_key=self.election.joint_key().public_key,
                contests=tuple(self.election.manifest.contest_specs()),
            )
        return self._ctx

    def _require_voting(self) -> None:
        # the phase and the voting period (``voting.not_open`` / ``voting.closed``), by the service's clock
        self.election.require_voting()

    def _require_method(self, method: str) -> None:
        if method not in self.election.manifest.auth_methods:
            raise Forbidden(
                "auth.method_not_allowed", f"this election does not accept '{method}' authentication"
            )

    def is_kiosk_token(self, token: str) -> bool:
        h = hashlib.sha256(token.encode()).hexdigest()
        return any(hmac.compare_digest(h, k) for k in self.kiosk_tokens)

    @staticmethod
    def _decode_ballot(ballot: Mapping[str, Any]) -> _Ballot:
        with _rejecting("the ballot"):
            return _Ballot.of(EncryptedBallot.from_dict(dict(ballot)))

    def _parse_ballot(self, ballot: Mapping[str, Any]) -> _Ballot:
        """Decode ``ballot`` and check it (:func:`verify_ballot`); :meth:`spoil` checks it via the opening."""
        b = self._decode_ballot(ballot)
        with _rejecting("the ballot"):
            verify_ballot(self.context(), b.ballot)
        b.check_shape()
        return b

    def _check_unused(self, s: Session, ballot_hash: str) -> None:
        row = s.get(IntakeBallot, ballot_hash)
        if row is not None:
            what = "cast" if row.kind == "cast" else "spoiled (challenged)"
            raise Conflict("ballot.duplicate", f"this ballot was already {what}; encrypt a fresh one")

    def _check_unique(self, s: Session, b: _Ballot) -> None:
        """The uniqueness rules (``ledger.record.ballot_unique_values``; the verifier's V15): no value of
        ``b`` was published by an accepted ballot, cast or spoiled. Raises 409 with the rule's code."""
        self._check_unused(s, b.hex)  # the friendlier message for the whole ballot
        used = {
            (r.kind, r.value): r
            for r in s.exec(
                select(BallotUniqueValue)
                .where(BallotUniqueValue.election_id == self.election_id)
                .where(BallotUniqueValue.value.in_([v.value for v in b.unique]))  # type: ignore[attr-defined]
            )
        }
        for v in b.unique:  # in rule order: hash, nonce, then the pads in ballot order
            row = used.get((v.kind, v.value))
            if row is None:
                continue
            if v.kind == "ballot_nonce":
                why = "a ballot nonce is used once (a contest moved with its nonce is a copied ballot)"
            else:
                why = "a copied or re-used ciphertext is refused"
            raise Conflict(
                DUPLICATE_CODES[v.kind],
                f"the {v.describe()} was already published (ledger entry {row.ledger_index}): {why}; "
                "encrypt a fresh ballot",
            )

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

    def _check_challenge(self, challenge: bytes) -> None:
        with self._session() as s:
            row = s.get(IntakeChallenge, challenge.hex())
            if row is None or row.election_id != self.election_id:
                raise Unauthenticated("challenge.unknown", "unknown server challenge; ask for a new one")
            if row.used_at is not None:
                raise Unauthenticated("challenge.used", "the server challenge was already used")
            if _aware(row.expires_at) <= self.clock():
                raise Unauthenticated("challenge.expired", "the server challenge expired; ask for a new one")

    def _consume_challenge(self, s: Session, challenge: bytes, now: dt.datetime) -> None:
        """Atomically mark the challenge used (fails if another submission used it first)."""
        used = _rowcount(
            s,
            update(IntakeChallenge)
            .where(IntakeChallenge.challenge == challenge.hex())  # type: ignore[arg-type]
            .where(IntakeChallenge.used_at.is_(None))  # type: ignore[union-attr]
            .values(used_at=now),
        )
        if used != 1:
            raise Unauthenticated("challenge.used", "the server challenge was already used")

    # -------------------------------------------------------------------------------- authentication

    def _alias_for(self, match_key: bytes) -> bytes:
        alias = self.election.lookup_alias(match_key)
        if alias is None:
            raise Forbidden("voter.not_on_roll", "the authenticated resident is not on this election's roll")
        return bytes(alias)

    def _auth_jpki(self, b: _Ballot, submission: JpkiSubmission, challenge: bytes) -> _Authenticated:
        self._require_method("jpki")
        if self.jpki is None:
            raise Forbidden("auth.unavailable", "JPKI authentication is not configured on this server")
        if len(challenge) != 32:
            raise InvalidRequest("challenge.format", "the server challenge is 32 bytes (64 hex digits)")
        self._check_challenge(challenge)
        verified_at = self.clock()
        ident = self.jpki.verify(
            submission,
            election_base_hash=self.election.base_hash,
            ballot_hash=b.hash,
            challenge=challenge,
            now=verified_at,
        )
        alias = self._alias_for(ident.match_key.digest)
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
            method="jpki",
            evidence_hash=ident.evidence_hash,
            evidence=evidence,
            public_auth={"method": "jpki", "evidence_hash": ident.evidence_hash.hex()},
            challenge=challenge,
            verified_at=verified_at,
        )

    # ----------------------------------------------------------------------------------------- casting

    def cast_jpki(
        self,
        ballot: Mapping[str, Any],
        submission: JpkiSubmission,
        challenge: bytes,
        *,
        channel: Channel = "internet",
    ) -> Receipt:
        """Cast ``ballot`` authenticated by a My Number card signature over (base hash, ballot hash,
        challenge). ``channel="kiosk"`` only for callers the route authenticated as a kiosk."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._session() as s:
            self._check_unique(s, b)
        auth = self._auth_jpki(b, submission, challenge)
        return self._commit_cast(b, auth, channel)

    def _commit_cast(self, b: _Ballot, auth: _Authenticated, channel: Channel) -> Receipt:
        """Step 6: serialised per voter (and against phase changes), re-check, append, record.

        The checks read in a transaction that ends before the ledger append: the ledger writes through its
        own connection, and an open SQLite transaction here would block it. Nothing is written to the
        private tables before the append succeeds; the locks keep the read-append-write sequence atomic
        within the (single) process that owns the election, and the unique keys on the ballot hash,
        ``(alias, seq)`` and the evidence hash are the backstop.
        """
        if channel not in ("internet", "kiosk"):
            raise InvalidRequest("ballot.channel", "channel is 'internet' or 'kiosk'")
        bh = b.hex
        alias = auth.alias.hex()
        eid = self.election_id
        evh = auth.evidence_hash.hex()
        # The roll is immutable once committed (voting needs the commitment): its proof is read outside the
        # locks, O(log n) stored rows, and checked against the published root before it is used.
        roll_proof = self.election.roll_proof(auth.alias).to_dict()
        with self._voter_locks.hold((eid, alias)), self.election.appending():
            now = self.clock()
            with self._session() as s:
                self._require_voting()
                self._check_unique(s, b)
                if auth.challenge is not None:
                    self._check_challenge(auth.challenge)
                if auth.oidc_state is not None:
                    self._check_oidc_unused(s, auth.oidc_state)
                binding = self._check_binding(s, auth)
                evidence = s.get(AuthEvidence, evh)
                # a pending row seen here (under both locks) is an orphan of an attempt that never appended
                if evidence is not None and evidence.status != "pending":
                    raise Conflict("ballot.duplicate", "this authentication evidence was already used")
                state = s.get(VoterState, (eid, alias))
                if state is not None and state.kiosk_index is not None:
                    raise Conflict(
                        "voter.kiosk_voted",
                        "this voter already voted at a polling-place kiosk; that ballot counts and "
                        "cannot be replaced",
                    )
                seq = (state.seq if state is not None else 0) + 1
                # The evidence cannot be rebuilt from the public entry: commit it (pending) BEFORE the append.
                if evidence is not None:
                    s.delete(evidence)
                    s.flush()
                s.add(
                    AuthEvidence(
                        evidence_hash=evh,
                        election_id=eid,
                        voter_alias=alias,
                        ballot_hash=bh,
                        method=auth.method,
                        challenge=auth.challenge.hex() if auth.challenge is not None else None,
                        created_at=now,
                        status="pending",
                        **self._kept_evidence(auth, bh),
                    )
                )
                if auth.oidc_subject is not None and binding is None:  # the account's first ballot
                    assert auth.oidc_issuer is not None
                    s.add(
                        OidcSubjectBinding(
                            election_id=eid,
                            subject_key=auth.oidc_subject.hex(),
                            voter_alias=alias,
                            issuer=auth.oidc_issuer,
                            evidence_hash=evh,
                            created_at=now,
                        )
                    )
                s.commit()
            payload = {
                "election_id": eid,
                "base_hash": self.election.base_hash.hex(),
                "ballot": b.record,
                "ballot_hash": bh,
                "tracking_code": b.tracking_code,
                "voter_alias": alias,
                "roll_proof": roll_proof,
                "channel": channel,
                "auth": auth.public_auth,
                "seq": seq,
            }
            before = self.ledger.size
            try:
                appended = self.election.append_entry(EventType.BALLOT_CAST, payload)
            except BaseException:
                if self.ledger.size == before:  # nothing appended: drop the pending evidence (best effort)
                    self._drop_pending(evh)
                raise
            index = int(appended.index)
            with self._session() as s:
                if auth.challenge is not None:
                    self._consume_challenge(s, auth.challenge, now)
                if auth.oidc_state is not None:
                    self._consume_oidc(s, auth.oidc_state, now)
                state = s.get(VoterState, (eid, alias)) or VoterState(election_id=eid, voter_alias=alias)
                state.seq = seq
                state.last_index = index
                if channel == "kiosk":
                    state.kiosk_index = index
                s.add(state)
                s.execute(
                    update(AuthEvidence)
                    .where(AuthEvidence.evidence_hash == evh)  # type: ignore[arg-type]
                    .values(status="final", ledger_index=index)
                )
                self.election.record_synced(s, index)
                s.add(
                    IntakeBallot(
                        ballot_hash=bh,
                        election_id=eid,
                        kind="cast",
                        tracking_code=b.tracking_code,
                        ledger_index=index,
                        voter_alias=alias,
                        channel=channel,
                        seq=seq,
                        created_at=now,
                    )
                )
                s.add_all(b.rows(eid, index))
                s.commit()
        return self._receipt(
            "cast", bh, b.tracking_code, index, bytes(appended.entry_hash), channel=channel, seq=seq
        )

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
        try:
            with self._session() as s:
                gone = _rowcount(
                    s,
                    delete(AuthEvidence)
                    .where(AuthEvidence.evidence_hash == evidence_hash)  # type: ignore[arg-type]
                    .where(AuthEvidence.status == "pending"),  # type: ignore[arg-type]
                )
                if gone:  # a binding written with this pending evidence goes with it
                    s.execute(
                        delete(OidcSubjectBinding).where(
                            OidcSubjectBinding.evidence_hash == evidence_hash  # type: ignore[arg-type]
                        )
                    )
                s.commit()
        except Exception:  # noqa: S110 - reconciliation deletes orphan pending rows anyway
            pass

    # ------------------------------------------------------------------------------------ spoiling

    def spoil(self, ballot: Mapping[str, Any], revealed: Mapping[str, Any]) -> Receipt:
        """Publish a challenged ballot with its opening (``ballot.spoiled``); it is never counted.

        Anonymous (a challenge must not identify the voter), so bounded: at most ``max_spoiled`` spoiled
        ballots per election (``spoil.cap_reached``), and the HTTP route rate-limits each client."""
        self._require_voting()
        with self._session() as s:
            self._check_spoil_cap(s)
        b = self._decode_ballot(ballot)
        b.check_shape()
        with self._session() as s:  # cheap, before the opening's re-encryptions are checked
            self._check_unique(s, b)
        with _rejecting("the opening"):
            r = RevealedBallot.from_dict(dict(revealed))
        with _rejecting("the opening"):
            verify_revealed(self.context(), b.ballot, r)  # verifies the ballot itself first
        bh = b.hex
        with self.election.appending():
            with self._session() as s:
                self._require_voting()
                self._check_spoil_cap(s)
                self._check_unique(s, b)
            now = self.clock()
            payload = {
                "election_id": self.election_id,
                "base_hash": self.election.base_hash.hex(),
                "ballot": b.record,
                "ballot_hash": bh,
                "tracking_code": b.tracking_code,
                "revealed": r.to_dict(),
            }
            appended = self.election.append_entry(EventType.BALLOT_SPOILED, payload)
            index = int(appended.index)
            with self._session() as s:
                s.add(
                    IntakeBallot(
                        ballot_hash=bh,
                        election_id=self.election_id,
                        kind="spoiled",
                        tracking_code=b.tracking_code,
                        ledger_index=index,
                        created_at=now,
                    )
                )
                s.add_all(b.rows(self.election_id, index))
                self.election.record_synced(s, index)
                s.commit()
        return self._receipt("spoiled", bh, b.tracking_code, index, bytes(appended.entry_hash))

    def _check_spoil_cap(self, s: Session) -> None:
        spoiled = s.exec(
            select(func.count())
            .select_from(IntakeBallot)
            .where(IntakeBallot.election_id == self.election_id)
            .where(IntakeBallot.kind == "spoiled")
        ).one()
        if spoiled >= self.max_spoiled:
            raise Conflict(
                "spoil.cap_reached",
                f"this election already holds {self.max_spoiled} challenged ballots, its limit; a ballot "
                "can still be cast",
            )

    # -------------------------------------------------------------------------------------- receipts

    def _receipt(
        self,
        kind: Literal["cast", "spoiled"],
        ballot_hash: str,
        tracking_code: str,
        index: int,
        entry_hash: bytes,
        *,
        channel: str | None = None,
        seq: int | None = None,
    ) -> Receipt:
        try:
            stored = self.ledger.latest_checkpoint()
        except LedgerNotFound:
            stored = None
        if stored is None or int(stored.size) <= index:  # no checkpoint covers the entry yet
            if not self.checkpoint_per_receipt:  # pending: the scheduled checkpoint will cover it
                return Receipt(
                    kind=kind,
                    election_id=self.election_id,
                    ballot_hash=ballot_hash,
                    tracking_code=tracking_code,
                    leaf_index=index,
                    entry_hash=entry_hash.hex(),
                    checkpoint=None,
                    inclusion_proof=None,
                    channel=channel,
                    seq=seq,
                )
            stored = self.ledger.checkpoint()
        proof = self.ledger.inclusion_proof(index, int(stored.size))
        if proof.leaf_hash != entry_hash:  # pragma: no cover - the ledger contradicts its own append
            raise NotFound("ballot.not_found", "the ledger entry does not match this ballot")
        return Receipt(
            kind=kind,
            election_id=self.election_id,
            ballot_hash=ballot_hash,
            tracking_code=tracking_code,
            leaf_index=index,
            entry_hash=entry_hash.hex(),
            checkpoint=stored.signed.note,
            inclusion_proof=tuple(p.hex() for p in proof.proof),
            channel=channel,
            seq=seq,
        )

    def find(self, tracking_code: str) -> Receipt:
        """A fresh receipt (proof against the latest checkpoint) for a tracking code or ballot hash."""
        with self._session() as s:
            if len(tracking_code) == 64:
                row = s.get(IntakeBallot, tracking_code.lower())
            else:
                try:
                    code = normalize_tracking_code(tracking_code)
                except ValueError:
                    raise InvalidRequest("tracking_code.format", "not a tracking code") from None
                rows = list(s.exec(select(IntakeBallot).where(IntakeBallot.tracking_code == code)))
                row = rows[0] if len(rows) == 1 else None
            if row is None or row.election_id != self.election_id:
                raise NotFound("ballot.not_found", "no ballot with this tracking code is on the record")
        entry_hash = self.ledger.inclusion_proof(row.ledger_index, row.ledger_index + 1).leaf_hash
        kind: Literal["cast", "spoiled"] = "cast" if row.kind == "cast" else "spoiled"
        return self._receipt(
            kind,
            row.ballot_hash,
            row.tracking_code,
            row.ledger_index,
            bytes(entry_hash),
            channel=row.channel,
            seq=row.seq,
        )

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
        alias = self._alias_for(ident.match_key.digest)
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

    def cast_oidc(self, ballot: Mapping[str, Any], *, state: str, code: str, live: LiveCapture) -> Receipt:
        """Cast ``ballot`` authenticated by a digital-ID login (nonce bound to its hash) and a face match."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._session() as s:
            self._check_unique(s, b)
        auth = self._auth_oidc(b, state, code, live)
        return self._commit_cast(b, auth, "internet")

    def _check_binding(self, s: Session, auth: _Authenticated) -> OidcSubjectBinding | None:
        """Under the locks: the digital-ID binding of ``auth`` (``None`` for JPKI or a first ballot)."""
        if auth.oidc_subject is None:
            return None
        return self._check_binding_of(s, auth.oidc_subject, auth.alias)

    def _check_binding_of(self, s: Session, subject: bytes, alias: bytes) -> OidcSubjectBinding | None:
        """First binding wins: refuse the account if it is bound to another alias (``oidc.subject_bound``)
        and the alias if another account is bound to it (``oidc.alias_bound``); return the existing
        binding of this account and alias, or ``None`` if there is none yet. Logs only keyed hashes."""
        rows = s.exec(
            select(OidcSubjectBinding)
            .where(OidcSubjectBinding.election_id == self.election_id)
            .where(
                (OidcSubjectBinding.subject_key == subject.hex())
                | (OidcSubjectBinding.voter_alias == alias.hex())
            )
        ).all()
        for row in rows:
            if row.subject_key == subject.hex() and row.voter_alias != alias.hex():
                _log.warning(
                    "refused %s: digital-ID account %s is bound to voter alias %s, not %s",
                    SUBJECT_BOUND,
                    subject.hex()[:16],
                    row.voter_alias[:16],
                    alias.hex()[:16],
                )
                raise Conflict(
                    SUBJECT_BOUND,
                    "this digital-ID account already voted as another resident of this election's roll",
                )
            if row.voter_alias == alias.hex() and row.subject_key != subject.hex():
                _log.warning(
                    "refused %s: voter alias %s is bound to digital-ID account %s, not %s",
                    ALIAS_BOUND,
                    alias.hex()[:16],
                    row.subject_key[:16],
                    subject.hex()[:16],
                )
                raise Conflict(
                    ALIAS_BOUND,
                    "this resident already voted with another digital-ID account in this election",
                )
        return rows[0] if rows else None

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


# ------------------------------------------------------------------------------------- reconciliation


class BallotReplay:
    """Rebuilds intake's private rows from ``ballot.cast`` / ``ballot.spoiled`` entries (idempotent).

    Used by ``ElectionService.reconcile`` in one session: :meth:`apply` per entry (``True`` if something was
    missing and is now recorded), then :meth:`finish`, which deletes orphan pending evidence and, after a full
    replay, compares the private tables with what the ledger holds (differences go to ``problems``).

    The unique values of every replayed ballot (:class:`BallotUniqueValue`) are rebuilt too. A value the
    ledger itself repeats (a record that fails V15, which this intake never appends) is not recorded twice:
    it is reported in ``problems``, naming both entries.
    """

    def __init__(self, election_id: str, now: dt.datetime) -> None:
        self.election_id = election_id
        self.now = now
        self.problems: list[str] = []
        self._max_seq: dict[str, int] = {}
        self._ballots = 0
        self._evidence = 0
        self._values = 0

    def apply(self, s: Session, index: int, etype: str, p: Mapping[str, Any]) -> bool:
        eid = self.election_id
        if p.get("election_id") != eid:
            from ._errors import ServiceUnavailable

            raise ServiceUnavailable("reconcile.foreign_entry", f"entry {index} is not of this election")
        bh = str(p["ballot_hash"])
        self._ballots += 1
        changed = False
        if s.get(IntakeBallot, bh) is None:
            cast = etype == EventType.BALLOT_CAST
            s.add(
                IntakeBallot(
                    ballot_hash=bh,
                    election_id=eid,
                    kind="cast" if cast else "spoiled",
                    tracking_code=p["tracking_code"],
                    ledger_index=index,
                    voter_alias=p["voter_alias"] if cast else None,
                    channel=p["channel"] if cast else None,
                    seq=p["seq"] if cast else None,
                    created_at=self.now,
                )
            )
            changed = True
        changed = self._unique_values(s, index, bh, p) or changed
        if etype != EventType.BALLOT_CAST:
            return changed
        alias, seq, channel = str(p["voter_alias"]), int(p["seq"]), p["channel"]
        self._max_seq[alias] = max(self._max_seq.get(alias, 0), seq)
        state = s.get(VoterState, (eid, alias)) or VoterState(election_id=eid, voter_alias=alias)
        moved = False
        if state.seq < seq:
            state.seq, moved = seq, True
        if state.last_index is None or state.last_index < index:
            state.last_index, moved = index, True
        if channel == "kiosk" and state.kiosk_index is None:
            state.kiosk_index, moved = index, True
        if moved:
            s.add(state)
            changed = True
        evh = str(p["auth"]["evidence_hash"])
        evidence = s.get(AuthEvidence, evh)
        if evidence is None:
            self.problems.append(f"entry {index}: the authentication evidence {evh} was never stored")
            return changed
        self._evidence += 1
        if evidence.status != "final" or evidence.ledger_index != index:
            evidence.status, evidence.ledger_index = "final", index
            s.add(evidence)
            challenge = evidence.challenge
            if challenge is None and evidence.evidence:  # a row written before the challenge column
                challenge = json.loads(evidence.evidence).get("challenge")
            if challenge is not None:  # JPKI: the one-time challenge the signature covers is now used
                s.execute(
                    update(IntakeChallenge)
                    .where(col(IntakeChallenge.challenge) == challenge)
                    .where(IntakeChallenge.used_at.is_(None))  # type: ignore[union-attr]
                    .values(used_at=self.now)
                )
            s.execute(  # digital ID: the authorization bound to this ballot hash is now used
                update(OidcPending)
                .where(OidcPending.ballot_hash == bh)  # type: ignore[arg-type]
                .where(OidcPending.used_at.is_(None))  # type: ignore[union-attr]
                .values(used_at=self.now)
            )
            changed = True
        return changed

    def _unique_values(self, s: Session, index: int, bh: str, p: Mapping[str, Any]) -> bool:
        """Record the ballot's unique values that are missing (one query per entry); ``True`` if any was."""
        values = ballot_unique_values(bh, p.get("ballot"))
        for earlier, later in repeats_within(values):
            self.problems.append(f"entry {index}: the {later.describe()} repeats the {earlier.describe()}")
        have = {
            (r.kind, r.value): r
            for r in s.exec(  # autoflush: rows added for earlier entries of this replay are seen
                select(BallotUniqueValue)
                .where(BallotUniqueValue.election_id == self.election_id)
                .where(BallotUniqueValue.value.in_([v.value for v in values]))  # type: ignore[attr-defined]
            )
        }
        changed = False
        for v in {(v.kind, v.value): v for v in values}.values():  # each value once
            key = (v.kind, v.value)
            row = have.get(key)
            if row is None:
                row = BallotUniqueValue(
                    election_id=self.election_id,
                    kind=v.kind,
                    value=v.value,
                    ballot_hash=bh,
                    ledger_index=index,
                )
                s.add(row)
                have[key] = row
                changed = True
            elif row.ballot_hash != bh:
                self.problems.append(
                    f"entry {index}: the {v.describe()} was already published at entry {row.ledger_index} "
                    "(the record fails V15 ballot.unique)"
                )
                continue
            self._values += 1
        return changed

    def finish(self, s: Session, *, full: bool) -> int:
        """Delete orphan pending evidence (returns how many); after a full replay compare the tables."""
        eid = self.election_id
        orphans = _rowcount(
            s,
            delete(AuthEvidence)
            .where(AuthEvidence.election_id == eid)  # type: ignore[arg-type]
            .where(AuthEvidence.status == "pending"),  # type: ignore[arg-type]
        )
        s.execute(  # a digital-ID binding lives and dies with the evidence of its first ballot
            delete(OidcSubjectBinding)
            .where(OidcSubjectBinding.election_id == eid)  # type: ignore[arg-type]
            .where(
                OidcSubjectBinding.evidence_hash.not_in(  # type: ignore[attr-defined]
                    select(AuthEvidence.evidence_hash).where(AuthEvidence.election_id == eid)
                )
            )
        )
        if not full:
            return int(orphans or 0)
        s.flush()
        rows = s.exec(
            select(func.count()).select_from(IntakeBallot).where(IntakeBallot.election_id == eid)
        ).one()
        if rows != self._ballots:
            self.problems.append(f"{rows} ballot rows, the ledger holds {self._ballots} ballots")
        final = s.exec(
            select(func.count()).select_from(AuthEvidence).where(AuthEvidence.election_id == eid)
        ).one()
        if final != self._evidence:
            self.problems.append(f"{final} evidence rows, the ledger's ballots name {self._evidence}")
        values = s.exec(
            select(func.count()).select_from(BallotUniqueValue).where(BallotUniqueValue.election_id == eid)
        ).one()
        if values != self._values:
            self.problems.append(f"{values} unique-value rows, the ledger's ballots hold {self._values}")
        voters = s.exec(select(VoterState).where(VoterState.election_id == eid))
        states = {v.voter_alias: v.seq for v in voters}
        if states != self._max_seq:
            bad = sorted(set(states.items()) ^ set(self._max_seq.items()))[:3]
            self.problems.append(f"voter seq counters differ from the ledger's (e.g. {bad})")
        return int(orphans or 0)
