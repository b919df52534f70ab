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
       (My Number card on the phone: the same, the signature fetched from the Digital Authentication App
       through a transaction bound to this ballot hash and challenge, ``_intake_dapp``   [dapp.*])
       digital ID: the pending authorization's state, nonce = H(ballot hash, salt), acr and auth_time
       [oidc.*]; identity claims only from the configured verified source   [voter.unmatched]
    5. the resident is on the committed roll → voter alias                               [voter.not_on_roll]
       digital ID: the account ``(iss, sub)`` is bound to no other alias and the alias to no other account
       [oidc.subject_bound, oidc.alias_bound]; then the face match against the reference photo of THAT
       roll resident (``ReferencePhotoSource.photo(election_id, alias)``)       [face.*]
    6. under the voter's lock and the election's mutation lock held *shared* (``election.casting(alias)``):
       the voter's pending evidence left by an attempt that ended without its record is settled (replayed
       if its entry is on the ledger, else deleted with what it held), phase again, the kiosk rule (a kiosk
       ballot ends internet voting for this voter, a second kiosk ballot is refused)   [voter.kiosk_voted]
       a kiosk ballot: its kiosk again, not revoked and its session open (a revocation or a closing takes
       the election's lock exclusive, so it is either before the cast or after it)
                                                           [kiosk.revoked, kiosk.not_open, kiosk.session]
       the uniqueness rules again (the ballot's values inserted *reserved*, ``BallotUniqueValue.ledger_index``
       -1: the primary key refuses a value another ballot holds, on the ledger or reserved, so no read
       decides it), the digital-ID binding again, then ONE commit BEFORE the append of what
       the public entry cannot rebuild and what no other submission may take meanwhile: the authentication
       evidence as a *pending* row (holding, until the cast is recorded, a size of the ledger this process
       knew before the append, ``Ledger.known_size``: a lower bound of its entry's index), for an
       account's first ballot its :class:`~voting._intake_db.OidcSubjectBinding`, the ballot's reserved
       unique values and the one-time challenge, authorization or signing transaction marked used; the
       database's unique keys refuse a second voter's identical values or binding here [ballot.duplicate*,
       challenge.used, oidc.*]; then one ledger append, and one commit of
       the private rows (evidence final, reserved values given their index, ballot row, voter state,
       ``ElectionRow.ledger_synced``). On PostgreSQL the commit before the append of a JPKI internet cast
       that no voter rule refuses is one statement (the challenge taken, then the values reserved and the
       evidence pending, ``jpki_pending_pg``), and an internet cast's record after it is one statement in
       autocommit (``CAST_RECORDED_PG``): fewer round trips, the same rows and refusals.

If the process dies between the append and that last commit, :class:`BallotReplay` (run by
``ElectionService.reconcile`` at start-up and under every exclusive hold that finds the private state
behind, from the smallest bound of the pending rows, since casts of different voters record out of order;
and by the voter's next cast, ``settle_pending``) rebuilds the ballot row and its unique values, the voter's
``seq``/kiosk state and the consumed challenge from the ``ballot.cast`` entry and makes the pending evidence
final; pending evidence with no entry is an orphan of a submission that was never appended and is deleted
(reconciliation: once older than ``ORPHAN_MIN_AGE``), with the digital-ID binding written with it and its
reserved values, and the challenge or authorization it consumed is released.

Spoiling (``ballot.spoiled``, the Benaloh challenge) is anonymous by design (``docs/voting.md`` §3b): the
opening is checked (every re-encryption, hence the ballot's proofs), the same uniqueness rules apply, and
the election holds at most ``max_spoiled`` spoiled ballots (``spoil.cap_reached``); the route adds a
per-client rate limit (``spoil.rate_limited``, ``voting._deps.SpoilLimitDep``).

The expensive checks (ballot proofs, RSA chain) run outside every lock, and each runs once per submission;
only step 6 is serialised, and only **per voter**: the intake's in-process lock of the voter and
``election.casting(alias)`` (on PostgreSQL the database's transaction-level advisory lock of (election,
voter) and the election's advisory lock in shared mode, on one dedicated connection; in-process a
reader-writer lock), so the step 6 of different voters runs side by side in one process and across every
server process on the database, and two processes cannot both give one voter the same ``seq`` (each
re-reads :class:`~voting._intake_db.VoterState` under the voter's lock). What used to be ordered by the one
election lock is now the database's or an exclusive holder's: the uniqueness of values across voters (the
reservation in the pending commit; the primary key of ``(election, value, kind)``), the one-time
challenge (a conditional update in the same commit), the digital-ID binding (its two unique keys); the
phase, the kiosks and the spoiled count (every phase change, kiosk command, spoil and export takes the
election's lock exclusive with :meth:`~voting.service.ElectionService.appending`, which waits for the casts
under way and keeps new ones out). The ledger orders the appends themselves (its own transaction-level lock
on PostgreSQL, its sequencer lock on SQLite, where one process serves). The unique keys ``(election, alias,
seq)``, the ballot hash, the evidence hash and the one-kiosk-ballot index are the database's backstop.

Public record per cast ballot: voter alias and its roll inclusion proof (``roll_proof``: ``index``, ``path``;
the alias is a leaf of the published roll commitment's Merkle tree, so no ballot can name an invented voter
unnoticed), ``auth = {"method", "evidence_hash"[, "face"]}``, channel and
``seq``. The evidence itself (certificate, signature, ID-token claims, face-match answer) goes to the
private :class:`~voting._intake_db.AuthEvidence` table, only as a sealed box to the observers' oversight key
when the manifest names one (``voting._oversight``; required in production): the server cannot read it back.
:meth:`IntakeService.export_evidence` hands the sealed items to the observers and logs it on the ledger
(``evidence.exported``); ``tvote audit-evidence`` (``voting._audit``) re-verifies them.

The intake is a stage of the service with its own modules: this one (the forward path: cast, spoil),
``_intake_receipts`` (receipts, and finding one by tracking code), ``_intake_checks`` (its settings; steps
1 to 3 and the binding), ``_intake_auth`` (steps 4 and 5: challenges, JPKI, digital ID and face),
``_intake_pending`` (step 6's checks under the locks and its commit before the append),
``_intake_evidence`` (the pending and sealed evidence, the observers' export) and ``_intake_replay``
(:class:`BallotReplay`, registered with the core's reconciliation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crypto import RevealedBallot, verify_revealed
from ledger.events import BASE_HASH, ELECTION_ID, EventType
from voting.auth import JpkiSubmission, LiveCapture

from .._db import once_more_if_disconnected
from .._errors import InvalidRequest
from .._intake_db import (
    BALLOT_CAST,
    CAST_RECORDED_PG,
    EVIDENCE_FINAL,
    VOTER_AT_LOCK,
    VOTER_FIRST,
    VOTER_RECORDED,
    IntakeBallot,
)
from .._roll import RollProof
from ..receipt import Receipt
from ._intake_auth import _Authenticated
from ._intake_checks import Channel, _Ballot, _rejecting
from ._intake_evidence import IntakeEvidence
from ._intake_kiosk import _KioskCast
from ._intake_pending import IntakePending
from ._intake_receipts import IntakeReceipts
from ._kiosk import record_kiosk_ballot

__all__ = ["IntakeService"]


@dataclass
class IntakeService(IntakePending, IntakeEvidence, IntakeReceipts):
    """Ballot intake for the one election of ``election`` (a :class:`~voting.service.ElectionService`).

    ``jpki`` verifies card signatures; ``oidc`` is a relying party (``voting.auth`` digital-ID client),
    ``face`` a face-match engine and ``face_reference`` the authoritative source of the reference photos of
    the residents on the roll, asked by voter alias (:class:`voting.auth.ReferencePhotoSource`); a method
    whose verifier is ``None`` is refused with ``auth.unavailable``.
    A polling-place kiosk's ballot (:meth:`cast_kiosk`) comes from an enrolled kiosk whose signed request
    the route checked (:meth:`voting.service.ElectionService.authenticate_kiosk`).
    ``max_spoiled`` caps the election's spoiled ballots. ``clock`` and ``randbytes`` are injectable for tests.
    ``checkpoint_per_receipt`` signs a checkpoint for a receipt whose entry no checkpoint covers yet (every
    ballot then gets its own public timestamp); ``False`` (what ``tvote serve`` runs: checkpoints on a
    schedule, :func:`voting.app.keep_checkpoints`) returns such a receipt *pending*: index and entry hash,
    no checkpoint and no proof yet; :meth:`find` gives the proof once the next checkpoint covers it.
    """

    # ----------------------------------------------------------------------------------------- casting

    def cast_jpki(self, ballot: Mapping[str, Any], submission: JpkiSubmission, challenge: bytes) -> Receipt:
        """Cast ``ballot`` authenticated by a My Number card signature over (base hash, ballot hash,
        challenge), over the internet."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._read_session() as s:  # steps 3 to 5 and the roll proof: reads, no network call between
            self._check_unique(s, b)
            auth = self._auth_jpki(b, submission, challenge, s)
            roll_proof = self.election.roll_proof(auth.alias, s, leaf_index=auth.leaf_index)
        return self._commit_cast(b, auth, "internet", roll_proof=roll_proof)

    def cast_kiosk(
        self,
        kiosk_id: str,
        ballot: Mapping[str, Any],
        submission: JpkiSubmission,
        challenge: bytes,
        *,
        session: int,
        kiosk_signature: str,
    ) -> Receipt:
        """Cast ``ballot`` at the polling-place kiosk ``kiosk_id`` (whose signed request the route checked):
        a JPKI cast whose entry also names the kiosk, its open ``session`` and the kiosk's signature of
        (base hash, kiosk id, session, ballot hash) (``docs/events.md``, "Polling-place kiosks", rule 4).
        The kiosk is checked here and again under the locks of step 6, so a revocation or a closing that
        races the cast is either before it (refused) or after it."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._read_session() as s:  # reads, no network call between them
            kiosk = self._kiosk_cast(s, kiosk_id, session, kiosk_signature, b.hash)
            self._check_unique(s, b)
            self._check_kiosk_open(s, kiosk)
            auth = self._auth_jpki(b, submission, challenge, s)
            roll_proof = self.election.roll_proof(auth.alias, s, leaf_index=auth.leaf_index)
        return self._commit_cast(b, auth, "kiosk", kiosk, roll_proof=roll_proof)

    def _commit_cast(
        self,
        b: _Ballot,
        auth: _Authenticated,
        channel: Channel,
        kiosk: _KioskCast | None = None,
        *,
        roll_proof: RollProof | None = None,
    ) -> Receipt:
        """Step 6: serialised per voter (and against phase changes), re-check, reserve, append, record.

        The checks and the pending commit run in a transaction that ends before the ledger append: the
        ledger writes through its own connection, and an open SQLite transaction here would block it.
        Before the append only the pending commit writes (evidence, binding, reserved unique values, the
        one-time challenge used); the voter's lock keeps the voter's read-append-write sequence atomic
        across every server process on the database, the database's unique keys order different voters.
        """
        if channel not in ("internet", "kiosk") or (channel == "kiosk") != (kiosk is not None):
            raise InvalidRequest("ballot.channel", "channel is 'internet', or 'kiosk' with its kiosk")
        bh = b.hex
        alias = auth.alias.hex()
        eid = self.election_id
        evh = auth.evidence_hash.hex()
        # The roll is immutable once committed (voting needs the commitment): its proof is read outside the
        # locks (by the caller's read session, or here), O(log n) stored rows, and checked against the
        # published root before it is used.
        if roll_proof is None:
            roll_proof = self.election.roll_proof(auth.alias, leaf_index=auth.leaf_index)
        proof = roll_proof.to_dict()
        with self._voter_locks.hold((eid, alias)), self.election.casting(alias) as held:
            now = self.clock()
            with self._session() as s:
                self._require_voting(s, held)  # as read under the locks (PostgreSQL), else read here
                c = s.connection()
                # the voter as the locks keep it until the record (one statement): a pending row of this voter
                # is of an attempt that ended without its record, replayed if its entry is on the ledger, else
                # deleted with what it held; then this cast's evidence unused and the voter's state
                mine = {"eid": eid, "alias": alias, "evh": evh}
                voter = c.execute(VOTER_AT_LOCK, mine).one()
                if voter.pending is not None:
                    self._settle_pending_of(s, alias, now)
                    voter = c.execute(VOTER_AT_LOCK, mine).one()
                state = None if voter.seq is None else voter  # no state yet: the voter's first ballot
                seq = (state.seq if state is not None else 0) + 1
                # What the public entry cannot rebuild (the evidence) and what no other submission may take
                # meanwhile (the ballot's unique values, reserved; the one-time challenge or authorization)
                # are committed BEFORE the append: the database refuses a second voter's identical values.
                # While pending the evidence holds a lower bound of its entry's index (what this process
                # knows; no read).
                floor = int(self.ledger.known_size)
                pending = {
                    "evidence_hash": evh,
                    "election_id": eid,
                    "voter_alias": alias,
                    "ballot_hash": bh,
                    "method": auth.method,
                    "challenge": auth.challenge.hex() if auth.challenge is not None else None,
                    "created_at": now,
                    "status": "pending",
                    "ledger_index": floor,
                    "sealed": None,
                    **self._kept_evidence(auth, bh),
                }
                self._commit_pending(s, b, auth, kiosk, voter, pending, now)
            payload = {
                ELECTION_ID: eid,
                BASE_HASH: self.election.base_hash.hex(),
                "ballot": b.record,
                "ballot_hash": bh,
                "tracking_code": b.tracking_code,
                "voter_alias": alias,
                "roll_proof": proof,
                "channel": channel,
                "auth": auth.public_auth,
                "seq": seq,
            }
            if kiosk is not None:
                payload["kiosk"] = kiosk.record
            try:
                appended = self.election.append_entry(EventType.BALLOT_CAST, payload)
            except BaseException:
                self._drop_unless_appended(evh, bh, floor)  # nothing appended: the pending rows go
                raise
            index = int(appended.index)

            def record() -> None:  # prebuilt statements on the session's connection (no ORM objects)
                if channel == "internet" and self.election._shared:  # PostgreSQL: one statement
                    self._autocommit_one(
                        CAST_RECORDED_PG,
                        {
                            "eid": eid,
                            "alias": alias,
                            "seq": seq,
                            "index": index,
                            "synced": index + 1,
                            "evh": evh,
                            "bh": bh,
                            "tracking_code": b.tracking_code,
                            "created_at": now,
                        },
                    )
                    return
                with self._session() as s:
                    c = s.connection()
                    kiosk_index = index if channel == "kiosk" else None
                    voter = {"eid": eid, "alias": alias, "seq": seq, "index": index, "kiosk": kiosk_index}
                    # the voter's state read under the voter's lock says whether it has a row (an INSERT
                    # for a first ballot, no UPDATE that matches nothing); an UPDATE matching nothing inserts
                    if (
                        state is None
                        or c.execute(VOTER_RECORDED[kiosk_index is not None], voter).rowcount == 0
                    ):
                        c.execute(
                            VOTER_FIRST,
                            {
                                "election_id": eid,
                                "voter_alias": alias,
                                "seq": seq,
                                "kiosk_index": kiosk_index,
                                "last_index": index,
                            },
                        )
                    c.execute(EVIDENCE_FINAL, {"evh": evh, "index": index})
                    self.election.record_synced(s, index)
                    c.execute(
                        BALLOT_CAST,
                        {
                            "ballot_hash": bh,
                            "election_id": eid,
                            "kind": "cast",
                            "tracking_code": b.tracking_code,
                            "ledger_index": index,
                            "voter_alias": alias,
                            "channel": channel,
                            "seq": seq,
                            "created_at": now,
                        },
                    )
                    b.finalise_rows(s, eid, index)
                    if kiosk is not None:
                        record_kiosk_ballot(s, eid, index, bh, kiosk.record)
                    s.commit()

            # on a live connection: a database restart that killed a pooled connection loses no record
            once_more_if_disconnected(record)
        return self._receipt(
            "cast",
            bh,
            b.tracking_code,
            index,
            bytes(appended.entry_hash),
            channel=channel,
            seq=seq,
            appended=True,
        )

    def cast_oidc(self, ballot: Mapping[str, Any], *, state: str, code: str, live: LiveCapture) -> Receipt:
        """Cast ``ballot`` authenticated by a digital-ID login (nonce bound to its hash) and a face match."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._session() as s:
            self._check_unique(s, b)
        auth = self._auth_oidc(b, state, code, live)
        return self._commit_cast(b, auth, "internet")

    def cast_dapp(self, ballot: Mapping[str, Any], transaction: str) -> Receipt:
        """Cast ``ballot`` signed with the My Number card through the Digital Authentication App's signing
        transaction (``start_dapp``): a JPKI cast in every respect (``_intake_dapp``)."""
        self._require_voting()
        b = self._parse_ballot(ballot)
        with self._session() as s:
            self._check_unique(s, b)
        auth = self._auth_dapp(b, transaction)
        return self._commit_cast(b, auth, "internet")

    # ------------------------------------------------------------------------------------ spoiling

    def spoil(self, ballot: Mapping[str, Any], revealed: Mapping[str, Any]) -> Receipt:
        """Publish a challenged ballot with its opening (``ballot.spoiled``); it is never counted.

        Anonymous (a challenge must not identify the voter), so bounded: at most ``max_spoiled`` spoiled
        ballots per election (``spoil.cap_reached``), and the HTTP route rate-limits each client."""
        self._require_voting()
        with self._session() as s:
            self._check_spoil_cap(s)
        encrypted = self._decode_ballot(ballot)
        b = _Ballot.of(encrypted.to_dict(), encrypted.ballot_hash())
        b.check_shape()
        with self._session() as s:  # cheap, before the opening's re-encryptions are checked
            self._check_unique(s, b)
        with _rejecting("the opening"):
            r = RevealedBallot.from_dict(dict(revealed))
        with _rejecting("the opening"):
            verify_revealed(self.context(), encrypted, r)  # verifies the ballot itself first
        bh = b.hex
        with self.election.appending():
            with self._session() as s:
                self._require_voting(s)
                self._check_spoil_cap(s)
                self._check_unique(s, b)
            now = self.clock()
            payload = {
                ELECTION_ID: self.election_id,
                BASE_HASH: self.election.base_hash.hex(),
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
                b.insert_rows(s, self.election_id, index)
                self.election.record_synced(s, index)
                s.commit()
        return self._receipt("spoiled", bh, b.tracking_code, index, bytes(appended.entry_hash), appended=True)
