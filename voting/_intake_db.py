"""Private tables of ballot intake (never exported to the public record).

They live in the same SQLModel metadata (and therefore the same engine) as :mod:`voting._db`:

* :class:`IntakeChallenge` — one-time server challenges a JPKI signature must cover (replay defence).
* :class:`OidcPending` — a pending digital-ID authorization: PKCE verifier and nonce salt bound to one
  ballot hash (the verifier never leaves the server).
* :class:`DappTransaction` — a signing transaction at the Digital Authentication App (My Number card on the
  phone), bound to one ballot hash and one server challenge: the handle the booth holds, the app's
  transaction id and the ``DigestInfo`` submitted (of the JPKI message of exactly that ballot and
  challenge); one-time (``used_at``) and expiring.
* :class:`IntakeBallot` — every ballot hash the server accepted, cast or spoiled, so a hash is used once
  (a spoiled ballot can never be cast, a cast one never spoiled or replayed).
* :class:`BallotUniqueValue` — every value the uniqueness rules make unique (``ledger.record``'s
  ``ballot_unique_values``: ballot hash, ballot nonce, each selection's ciphertext pad) of every accepted
  ballot, cast or spoiled, keyed ``(election, value, kind)``: the database refuses a second ballot with a
  used nonce or pad whatever process records it. Written in the transaction that writes the ballot's
  :class:`IntakeBallot` row — a cast *reserves* them (``ledger_index`` -1) in the commit of its pending
  evidence, before its append, so that two voters racing the same value cannot both reach the ledger — and
  rebuilt from the ledger by reconciliation (an orphan's reservations are deleted with its evidence).
* :class:`VoterState` — per (election, voter alias) submission counter and kiosk flag. A voter's concurrent
  submissions are serialised by intake's locks and the ledger's single sequencer (see
  :mod:`voting.service._intake`); the unique keys of :class:`IntakeBallot` are the database's backstop.
* :class:`OidcSubjectBinding` — which voter alias a digital-ID account (``(iss, sub)``, as the per-election
  keyed hash ``voting.auth.subject_key``) votes as: one alias per account and one account per alias in an
  election (two unique constraints), first binding wins. Written with the pending evidence of the account's
  first ballot (``evidence_hash``), so it is never rebuilt from the public entry; reconciliation deletes a
  binding whose first evidence is gone (an orphan of a submission that was never appended).
* :class:`AuthEvidence` — the authentication evidence itself, keyed by its hash: JPKI the whole signing
  certificate (its subjectAltName holds name, birth date, address and sex), intermediates, signature and
  challenge; digital ID the whole ID token (its ``verified_claims`` hold name, birth date and address),
  nonce salt, issuer and the face-match answer. Only the hash is public. When the manifest names the
  observers' oversight key (required in production) the row holds the evidence only as a sealed box to
  that key (``sealed``; ``evidence`` empty): the server cannot read it back, and only the observers'
  ``tvote audit-evidence`` opens it (``voting._oversight``). Without an oversight key (development only)
  ``evidence`` is the plaintext. Never logged.
  It is written (``status="pending"``) and committed BEFORE the ``ballot.cast`` append, because it is the
  one piece of a cast that the public entry cannot rebuild; it becomes ``final`` in the commit after the
  append, or in start-up reconciliation if the entry is on the ledger. A pending row without a ledger entry
  is an orphan of a refused or crashed submission and is deleted by reconciliation.

And the statements a cast runs on these tables (``VOTER_AT_LOCK`` … ``BALLOT_CAST``), built once at import.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Index,
    PrimaryKeyConstraint,
    TextClause,
    UniqueConstraint,
    bindparam,
    insert,
    text,
    update,
)
from sqlmodel import Field, SQLModel, col, select

__all__ = [
    "BALLOT_CAST",
    "CAST_RECORDED_PG",
    "EVIDENCE_FINAL",
    "EVIDENCE_PENDING",
    "VOTER_AT_LOCK",
    "VOTER_FIRST",
    "VOTER_RECORDED",
    "AuthEvidence",
    "BallotUniqueValue",
    "DappTransaction",
    "IntakeBallot",
    "IntakeChallenge",
    "OidcPending",
    "OidcSubjectBinding",
    "VoterState",
    "jpki_pending_pg",
]


class IntakeChallenge(SQLModel, table=True):
    """A one-time 32-byte server challenge (hex) for a JPKI ballot signature."""

    __tablename__ = "intake_challenge"

    challenge: str = Field(primary_key=True, max_length=64)
    election_id: str = Field(index=True, max_length=128)
    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class DappTransaction(SQLModel, table=True):
    """A signing transaction at the Digital Authentication App, bound to one ballot hash and challenge."""

    __tablename__ = "intake_dapp_transaction"

    handle: str = Field(primary_key=True, max_length=64)
    election_id: str = Field(index=True, max_length=128)
    app_transaction_id: str = Field(unique=True, max_length=64)
    ballot_hash: str = Field(max_length=64)
    challenge: str = Field(unique=True, max_length=64)
    digest_info: str = Field(max_length=128)
    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class OidcPending(SQLModel, table=True):
    """A digital-ID authorization in flight (OIDC code flow + PKCE), bound to one ballot hash."""

    __tablename__ = "intake_oidc_pending"

    state: str = Field(primary_key=True, max_length=128)
    election_id: str = Field(index=True, max_length=128)
    ballot_hash: str = Field(max_length=64)
    code_verifier: str = Field(max_length=128)
    nonce_salt: str = Field(max_length=64)
    channel: str = Field(default="internet", max_length=16)
    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class OidcSubjectBinding(SQLModel, table=True):
    """A digital-ID account bound to the one voter alias it votes as in this election (first binding wins).

    ``subject_key`` is ``voting.auth.subject_key(roll_key, iss, sub)`` (hex): the account's ``sub`` is not
    stored here. Both directions are unique per election, so the database refuses a second alias for an
    account and a second account for an alias whatever process writes."""

    __tablename__ = "intake_oidc_binding"
    __table_args__ = (
        UniqueConstraint("election_id", "subject_key", name="uq_oidc_binding_subject"),
        UniqueConstraint("election_id", "voter_alias", name="uq_oidc_binding_alias"),
    )

    id: int | None = Field(default=None, primary_key=True)
    election_id: str = Field(max_length=128)
    subject_key: str = Field(max_length=64)
    voter_alias: str = Field(max_length=64)
    issuer: str = Field(max_length=512)
    #: the evidence of the first ballot cast under this binding (the binding lives and dies with it)
    evidence_hash: str = Field(index=True, max_length=64)
    created_at: dt.datetime


class IntakeBallot(SQLModel, table=True):
    """One accepted ballot (``kind`` "cast" or "spoiled") and the ledger entry that published it."""

    __tablename__ = "intake_ballot"
    __table_args__ = (
        UniqueConstraint("election_id", "voter_alias", "seq", name="uq_intake_voter_seq"),
        # the kiosk rule in the database too: at most one kiosk ballot per voter, whichever process records it
        Index(
            "uq_intake_voter_kiosk",
            "election_id",
            "voter_alias",
            unique=True,
            sqlite_where=text("channel = 'kiosk'"),
            postgresql_where=text("channel = 'kiosk'"),
        ),
        # counting the spoiled ballots of an election (the per-election cap) reads only those rows; it also
        # serves the queries by election alone (its first column), so ``election_id`` has no index of its own
        # (dropped by migration 0004: one index fewer written at every cast)
        Index("ix_intake_ballot_kind", "election_id", "kind"),
    )

    ballot_hash: str = Field(primary_key=True, max_length=64)
    election_id: str = Field(max_length=128)
    kind: str = Field(max_length=8)
    tracking_code: str = Field(index=True, max_length=128)
    ledger_index: int
    voter_alias: str | None = Field(default=None, max_length=64)
    channel: str | None = Field(default=None, max_length=16)
    seq: int | None = None
    created_at: dt.datetime


class BallotUniqueValue(SQLModel, table=True):
    """One value of an accepted ballot that no other ballot of the election may repeat (the primary key is
    the unique constraint): ``kind`` is ``ballot_hash``, ``ballot_nonce`` or ``pad`` (``ledger.record``'s
    ``UNIQUE_KINDS``), ``value`` its lowercase hex as published. The key is ordered ``(value, election_id,
    kind)`` so that intake's lookup, ``election_id = ? AND value IN (...)``, is an index lookup per value
    whatever the statistics: ordered ``(election_id, value, kind)`` (before migration 0004), PostgreSQL
    planned it, while the table had no statistics (the start of every election, until autovacuum's first
    ANALYZE), as a scan of the key's ``election_id`` prefix: every value of the election read at each cast."""

    __tablename__ = "intake_unique_value"
    #: a reservation (``ledger_index`` -1, written with a cast's pending evidence before its append) is
    #: found, finalised or deleted by its ballot hash (an index on it alone since migration 0004: no index
    #: starts with ``election_id``, which the planner without statistics would scan for the lookup)
    __table_args__ = (
        PrimaryKeyConstraint("value", "election_id", "kind", name="intake_unique_value_pkey"),
        Index("ix_intake_unique_value_ballot", "ballot_hash"),
    )

    election_id: str = Field(primary_key=True, max_length=128)
    value: str = Field(primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=16)
    #: the ballot that published it, and its ledger entry (-1: reserved by a cast not yet on the ledger,
    #: ``voting.service._intake``)
    ballot_hash: str = Field(max_length=64)
    ledger_index: int


class VoterState(SQLModel, table=True):
    """Per-voter submission state: last ``seq``, the kiosk ballot's entry (if any), the last cast's entry."""

    __tablename__ = "intake_voter_state"

    election_id: str = Field(primary_key=True, max_length=128)
    voter_alias: str = Field(primary_key=True, max_length=64)
    seq: int = 0
    kiosk_index: int | None = None
    last_index: int | None = None


class AuthEvidence(SQLModel, table=True):
    """Private authentication evidence, found by the ``evidence_hash`` published in ``ballot.cast``."""

    __tablename__ = "intake_auth_evidence"
    #: the pending rows of an election (reconciliation's lower bound and orphan clean-up) and of a voter; it
    #: also serves the queries by election alone (its first column), so ``election_id`` has no index of its
    #: own (dropped by migration 0004: written at every cast, and chosen without statistics for a voter's
    #: pending lookup, which then read every row of the election)
    __table_args__ = (Index("ix_intake_evidence_status", "election_id", "status"),)

    evidence_hash: str = Field(primary_key=True, max_length=64)
    election_id: str = Field(max_length=128)
    voter_alias: str = Field(index=True, max_length=64)
    ballot_hash: str = Field(max_length=64)
    method: str = Field(max_length=16)
    #: canonical JSON (RFC 8785) of the evidence object, only for an election without an oversight key
    #: (development); empty when the evidence is sealed
    evidence: str = ""
    #: hex ``SealedBox`` to the manifest's oversight key (``voting._oversight``): the server cannot open it
    sealed: str | None = None
    #: JPKI: the one-time server challenge (a random number, not personal data) reconciliation marks used
    challenge: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime
    #: pending (written before the ledger append) | final (its ``ballot.cast`` entry is on the ledger)
    status: str = Field(default="final", max_length=8)
    #: the ``ballot.cast`` entry that published ``evidence_hash``; while pending, the ledger's size before
    #: the cast's append (a lower bound of its entry's index, from which reconciliation searches it)
    ledger_index: int | None = None


# A cast's reads under the voter's lock, its pending evidence and the private-state commit after its append,
# as statements built once and bound by name at each execution: building a statement (or flushing an ORM
# object) costs SQLAlchemy more CPU than executing a compiled one, and every cast runs these. They run on the
# session's connection: no autoflush, and where they run the session holds no pending ORM change.
_VOTER = (col(VoterState.election_id) == bindparam("eid"), col(VoterState.voter_alias) == bindparam("alias"))
#: what step 6 reads of the voter under its lock, in ONE statement (scalar subqueries, one row): ``pending``,
#: a pending evidence row of this voter (an attempt that ended without its record; rarely any); ``used``,
#: whether this cast's evidence (``evh``) is stored already; the voter's ``seq`` and ``kiosk_index``
#: (``seq`` NULL: no state yet, the voter's first ballot)
VOTER_AT_LOCK = select(
    select(AuthEvidence.evidence_hash)
    .where(col(AuthEvidence.election_id) == bindparam("eid"))
    .where(col(AuthEvidence.status) == "pending")
    .where(col(AuthEvidence.voter_alias) == bindparam("alias"))
    .limit(1)
    .scalar_subquery()
    .label("pending"),
    select(AuthEvidence.evidence_hash)
    .where(col(AuthEvidence.evidence_hash) == bindparam("evh"))
    .scalar_subquery()
    .label("used"),
    select(VoterState.seq).where(*_VOTER).scalar_subquery().label("seq"),
    select(VoterState.kiosk_index).where(*_VOTER).scalar_subquery().label("kiosk_index"),
)
EVIDENCE_PENDING = insert(AuthEvidence)
#: [internet, kiosk]: the voter's state after the cast (the kiosk's also keeps its entry)
VOTER_RECORDED = (
    update(VoterState).where(*_VOTER).values(seq=bindparam("seq"), last_index=bindparam("index")),
    update(VoterState)
    .where(*_VOTER)
    .values(seq=bindparam("seq"), last_index=bindparam("index"), kiosk_index=bindparam("kiosk")),
)
#: the voter's first ballot: no state yet (read under the voter's lock, or the UPDATE matched no row)
VOTER_FIRST = insert(VoterState)
EVIDENCE_FINAL = (
    update(AuthEvidence)
    .where(col(AuthEvidence.evidence_hash) == bindparam("evh"))
    .values(status="final", ledger_index=bindparam("index"))
)
BALLOT_CAST = insert(IntakeBallot)
#: PostgreSQL: an internet cast's whole private-state commit after its append in ONE statement (data-modifying
#: common table expressions): the voter's state (inserted for a first ballot, else updated), the evidence
#: final, ``tv_election.ledger_synced``, the reserved unique values given their index, the ballot row. Run
#: in autocommit, a single statement is its own transaction (all of it or none): one round trip where the
#: five statements above, with the transaction's BEGIN and COMMIT, took seven. SQLite (no data-modifying
#: WITH) and a kiosk's cast (its kiosk row too) run the five.
CAST_RECORDED_PG = text(
    """WITH voter AS (
    INSERT INTO intake_voter_state (election_id, voter_alias, seq, kiosk_index, last_index)
    VALUES (:eid, :alias, :seq, NULL, :index)
    ON CONFLICT (election_id, voter_alias) DO UPDATE SET seq = EXCLUDED.seq, last_index = EXCLUDED.last_index
), evidence AS (
    UPDATE intake_auth_evidence SET status = 'final', ledger_index = :index WHERE evidence_hash = :evh
), synced AS (
    UPDATE tv_election SET ledger_synced = :synced WHERE election_id = :eid AND ledger_synced <= :index
), reserved AS (
    UPDATE intake_unique_value SET ledger_index = :index
    WHERE ballot_hash = :bh AND election_id = :eid AND ledger_index = -1
)
INSERT INTO intake_ballot
    (ballot_hash, election_id, kind, tracking_code, ledger_index, voter_alias, channel, seq, created_at)
VALUES (:bh, :eid, 'cast', :tracking_code, :index, :alias, 'internet', :seq, :created_at)"""
)

#: :func:`jpki_pending_pg`'s statements, per number of unique values (a manifest's ballots all have one)
_JPKI_PENDING_PG: dict[int, TextClause] = {}


def jpki_pending_pg(values: int) -> TextClause:
    """PostgreSQL: step 6's pending commit of a JPKI internet cast in ONE statement, in the order of the
    statements it replaces (data-modifying ``WITH``): the one-time challenge ``given`` marked used at
    ``now`` if it was unused (``RETURNING`` its election and expiry), then, only if it is this election's
    (``eid``) and unexpired, the ballot's ``values`` unique values reserved (``v{i}``, ``k{i}``; ballot hash
    ``bh``, index ``at``) and its evidence row inserted pending (:data:`EVIDENCE_PENDING`'s columns, bound
    by their names). The row it returns is the taken challenge's (none: unknown or used, and nothing was
    written); a value another ballot holds fails the whole statement on the primary key (IntegrityError)."""
    stmt = _JPKI_PENDING_PG.get(values)
    if stmt is None:
        rows = ", ".join(f"(:v{i}, :k{i})" for i in range(values))
        columns = (
            "evidence_hash, election_id, voter_alias, ballot_hash, method, challenge, created_at, status, "
            "ledger_index, sealed, evidence"
        )
        binds = ", ".join(f":{c.strip()}" for c in columns.split(","))
        stmt = text(
            f"""WITH taken AS (
    UPDATE intake_challenge SET used_at = :now WHERE challenge = :given AND used_at IS NULL
    RETURNING election_id, expires_at
), ok AS (
    SELECT 1 FROM taken WHERE election_id = :eid AND expires_at > :now
), reserved AS (
    INSERT INTO intake_unique_value (election_id, value, kind, ballot_hash, ledger_index)
    SELECT :eid, v.value, v.kind, :bh, :at FROM (VALUES {rows}) AS v (value, kind)
    WHERE EXISTS (SELECT 1 FROM ok)
), pending AS (
    INSERT INTO intake_auth_evidence ({columns}) SELECT {binds} WHERE EXISTS (SELECT 1 FROM ok)
)
SELECT election_id, expires_at FROM taken"""  # noqa: S608 - no input in it
        )
        _JPKI_PENDING_PG[values] = stmt
    return stmt
